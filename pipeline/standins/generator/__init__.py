"""Seeded, deterministic Cin7 Core data for the stand-ins, the benchmarks and the end-to-end tests.

Everything here is pure: no I/O, no clock (``now`` is an argument), no global random state. The same
``seed``, ``n_sales`` and ``now`` always give an identical :class:`Dataset`.

Amounts follow the shared conventions (``docs/conventions-for-helpers.md``) exactly: every amount is a
``Decimal``; line ``Total`` is ``round_half_up(Quantity * Price * (1 - Discount/100), 2)``; line ``Tax`` and
the invoice totals depend on the sale's ``TaxCalculation``. :func:`recompute_invoice_totals` is the one
implementation of those rules and is used for generation and for edits alike.

Deliberately awkward data, always present:

* customer names ``O'Brien & Sons``, ``Zoë's "Best" Café``, ``Ngā Tamariki Ltd``, ``Kauri Timber Co`` with
  trailing spaces (the consumer must trim), and ``Smith Trading`` held by two different customers;
* e-mails with an apostrophe (``o'brien@example.com``) and with mixed case;
* groups of several sales sharing the exact same ``Updated`` millisecond (tests the poll overlap);
* ~10% foreign-currency sales (NZD, USD) with Cin7's rate (AUD for one unit of the customer's currency),
  ~5% of sales with two invoices, ~3% DRAFT and ~3% VOIDED invoices.

Settlement (``scenarios.py``, on ordinary sales only, in AUD and foreign currency alike): part-paid invoices,
invoices paid by one or by 2-3 payments, fully credited ones, part-credited ones with the rest paid, paid
ones part-credited and refunded, and DRAFT and VOIDED credit notes that count for nothing. Credit is
allocated by one rule (``settlement.credit_allocations``); ``Dataset.expectations`` carry each invoice's
expected AmountPaid/AmountCredited/AmountDue, ``Dataset.credit_notes`` and ``Dataset.payments`` what Xero
must hold of credit notes, payments and refunds. ``add_payment``, ``remove_payment``, ``add_credit_note``,
``void_credit_note`` and ``add_refund`` change a sale afterwards, keeping it consistent.

Hostile cases (``hostile=True``), each on its own single-invoice AUTHORISED sale, roughly 1.5% of sales each
and at least one each when ``n_sales >= 10``:

* a line with TaxRule ``Zero Rated Imports`` (unknown to the mapping rules) -> ``dead_mapping``;
* a line with Account ``999`` (not in the Xero chart) -> ``dead_mapping``;
* a sale in ``JPY`` (not enabled in Xero; from a dedicated JPY customer) -> ``dead_xero``;
* an invoice dated 2019-05-10 (before Xero's period lock date 2020-06-30) -> ``locked`` (never sent);
* prices, line totals, tax and invoice totals to 4 dp, as Cin7 keeps them -> ``synced``, with one rounding
  line making Xero's 2-dp totals equal Cin7's to the cent;
* a line with TaxRule ``Tax on Sales``, 0 % in Cin7 (``ref/tax``) but OUTPUT (10 %) in the default rules
  -> ``dead_mapping``.

History (``history.generate_history``): the same sales spread over the last years, ~10 % of them orders never
invoiced, some invoices already typed into Xero by hand (``History.xero_invoices``, to seed the Xero stand-in
with) and each invoice's fate in a migration plan (``History.fates``).

Purchases (``purchases.generate_purchases``): suppliers (ABNs, several people, shared domains, USD/NZD, one
that is also a customer) and simple, advanced and service purchases with their bills, supplier payments and
credit notes; ``PurchaseSet`` carries the Xero bills, contacts and merges a sync must make, and
``with_purchases`` puts them in a ``Dataset`` for the Cin7 stand-in.
"""

from pipeline.standins.generator.dataset import Dataset, generate
from pipeline.standins.generator.edits import add_credit_note, add_payment, add_refund, remove_payment, void_credit_note
from pipeline.standins.generator.expectations import CreditNoteExpectation, InvoiceExpectation, PaymentExpectation
from pipeline.standins.generator.history import Fate, History, generate_history
from pipeline.standins.generator.purchase_expectations import (
    BillExpectation,
    ContactPersonExpectation,
    PurchaseCreditNoteExpectation,
    SupplierContactExpectation,
    SupplierCustomerMerge,
    SupplierPaymentExpectation,
)
from pipeline.standins.generator.purchases import PurchaseSet, generate_purchases, with_purchases
from pipeline.standins.generator.settlement import credit_allocations, invoice_balance
from pipeline.standins.generator.tables import LOCK_DATE, TAX_RULES, UNKNOWN_ACCOUNT, UNKNOWN_TAX_RULE
from pipeline.standins.generator.totals import edit_invoice, recompute_invoice_totals, sale_list_row, void_invoice
from pipeline.standins.generator.values import format_date, format_timestamp, parse_timestamp

__all__ = [
    "LOCK_DATE",
    "TAX_RULES",
    "UNKNOWN_ACCOUNT",
    "UNKNOWN_TAX_RULE",
    "BillExpectation",
    "ContactPersonExpectation",
    "CreditNoteExpectation",
    "Dataset",
    "Fate",
    "History",
    "InvoiceExpectation",
    "PaymentExpectation",
    "PurchaseCreditNoteExpectation",
    "PurchaseSet",
    "SupplierContactExpectation",
    "SupplierCustomerMerge",
    "SupplierPaymentExpectation",
    "add_credit_note",
    "add_payment",
    "add_refund",
    "credit_allocations",
    "edit_invoice",
    "format_date",
    "format_timestamp",
    "generate",
    "generate_history",
    "generate_purchases",
    "invoice_balance",
    "parse_timestamp",
    "recompute_invoice_totals",
    "remove_payment",
    "sale_list_row",
    "void_credit_note",
    "void_invoice",
    "with_purchases",
]

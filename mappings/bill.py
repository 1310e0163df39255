"""Cin7 purchase invoices -> Xero ACCPAY bills; purchase credit notes -> ACCPAYCREDIT credit notes.

The same rules as sales (`mappings.invoice`, `mappings.credit_note`): tax checked against both rates but
looked up in the rules' ``purchase_tax_types`` (Xero's purchase types are not its sales types), Cin7's
totals to the cent with one rounding line, the inverted currency rate. What differs: Xero takes no line
discount on bills, so it goes into the unit price; a line's account is the Cin7 line's, else the rules'
``default_expense_account`` (the supplier's AccountPayable is the payable control account, never a line's);
and the bill's InvoiceNumber is the supplier's own, which Xero does not keep unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .cin7purchases import Cin7Purchase, Cin7PurchaseCreditNote, Cin7PurchaseInvoice, Cin7Supplier
from .errors import MappingProblem
from .invoice import (
    base_currency_problems,
    credit_note_day,
    credit_note_number,
    document_currency,
    document_dates,
    document_lines,
    document_number,
    finish_document,
    line_amount_types_of,
    tax_inclusive_of,
)
from .lines import LineContext
from .reference import OrgReference
from .rules import MappingRules
from .util import clean_text
from .xero import LineAmountTypes, XeroBill, XeroContactRef, XeroCreditNote, XeroInvoiceStatus, XeroLineItem

__all__ = ["map_bill", "map_purchase_credit_note"]


@dataclass(frozen=True)
class _Header:
    """What a bill and a supplier credit note of one purchase share."""

    contact: XeroContactRef | None
    amount_types: LineAmountTypes | None
    currency: str | None
    currency_rate: Decimal | None
    line_items: list[XeroLineItem]


def _header(
    purchase: Cin7Purchase,
    source: Cin7PurchaseInvoice | Cin7PurchaseCreditNote,
    supplier: Cin7Supplier | None,
    document: str,
    rules: MappingRules,
    reference: OrgReference,
    problems: list[MappingProblem],
) -> _Header:
    """The contact, amount types, currency and lines of a bill or supplier credit note, problems appended."""
    supplier_id = clean_text(purchase.supplier_id)
    if supplier_id is None:
        problems.append(MappingProblem("SupplierID", None, f"{document}: the Cin7 purchase has no SupplierID"))
    amount_types = line_amount_types_of(purchase, problems)
    problems.extend(base_currency_problems(purchase, reference))
    if isinstance(source, Cin7PurchaseInvoice):
        rate_field, rate = "CurrencyConversionRate", source.currency_conversion_rate
    else:
        rate_field, rate = "CreditNoteConversionRate", source.credit_note_conversion_rate
    currency, currency_rate = document_currency(
        purchase, rate, own_field=rate_field, document=document, problems=problems
    )
    context = LineContext(
        document=document,
        default_tax_rule=clean_text(purchase.tax_rule) or (supplier.tax_rule if supplier is not None else None),
        fallback_account=rules.default_expense_account,
        rules=rules,
        reference=reference,
        tax_inclusive=tax_inclusive_of(amount_types),
        fold_discount=True,
        side="purchases",
    )
    line_items = document_lines(source, context, problems)
    return _Header(
        contact=XeroContactRef(contact_number=supplier_id) if supplier_id else None,
        amount_types=amount_types,
        currency=currency,
        currency_rate=currency_rate,
        line_items=line_items,
    )


def map_bill(
    purchase: Cin7Purchase,
    invoice: Cin7PurchaseInvoice,
    *,
    supplier: Cin7Supplier | None,
    rules: MappingRules,
    reference: OrgReference,
) -> XeroBill:
    """The Xero ACCPAY payload for one invoice of a Cin7 purchase, AUTHORISED so it can be paid.

    The contact is referenced by ContactNumber = Cin7 SupplierID (the pipeline swaps in the Xero ContactID).
    A missing due date comes from the purchase's Terms, else the supplier's PaymentTerm. Every problem
    found is raised together as one MappingError naming the purchase, the invoice number and the field.
    """
    problems: list[MappingProblem] = []
    label = purchase.label
    number = document_number(
        invoice.invoice_number,
        field="InvoiceNumber",
        noun="supplier invoice number",
        missing=f"an invoice of {label} has no InvoiceNumber (the supplier's invoice number)",
        problems=problems,
    )
    document = f"bill {number} of {label}" if number else f"a bill of {label}"
    day, due_day = document_dates(invoice, purchase, supplier, document, problems)
    header = _header(purchase, invoice, supplier, document, rules, reference, problems)
    payload = XeroBill(
        contact=header.contact,
        invoice_number=number,
        date=day,
        due_date=due_day,
        status=XeroInvoiceStatus.AUTHORISED,
        line_amount_types=header.amount_types,
        currency_code=header.currency,
        currency_rate=header.currency_rate,
        line_items=header.line_items,
    )
    return finish_document(payload, invoice, header.amount_types, rules, reference, document, problems)


def map_purchase_credit_note(
    purchase: Cin7Purchase,
    note: Cin7PurchaseCreditNote,
    *,
    supplier: Cin7Supplier | None,
    rules: MappingRules,
    reference: OrgReference,
) -> XeroCreditNote:
    """The Xero ACCPAYCREDIT payload for one credit note of a Cin7 purchase.

    AUTHORISED, so it can be allocated or refunded; its CreditNoteNumber is Cin7's credit note number, as
    Xero has no Reference on supplier credit notes. Problems are raised together as one MappingError.
    """
    problems: list[MappingProblem] = []
    label = purchase.label
    number = credit_note_number(note, purchase, problems)
    document = f"supplier credit note {number} of {label}" if number else f"a credit note of {label}"
    day = credit_note_day(note, document, problems)
    header = _header(purchase, note, supplier, document, rules, reference, problems)
    payload = XeroCreditNote(
        type="ACCPAYCREDIT",
        contact=header.contact,
        credit_note_number=number,
        date=day,
        status=XeroInvoiceStatus.AUTHORISED,
        line_amount_types=header.amount_types,
        currency_code=header.currency,
        currency_rate=header.currency_rate,
        line_items=header.line_items,
    )
    return finish_document(payload, note, header.amount_types, rules, reference, document, problems)

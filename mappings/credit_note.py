"""Cin7 sale credit notes -> Xero ACCRECCREDIT credit notes.

The same rules as invoices (tax checked against both rates, Cin7's totals to the cent with a rounding
line, the inverted currency rate), except that Xero takes no discount on a credit note's lines: the
discount goes into the unit price (`LineContext.fold_discount`).
"""

from __future__ import annotations

from .cin7core import Cin7CreditNote, Cin7Customer, Cin7Sale
from .currency import xero_currency_rate
from .errors import MappingProblem
from .invoice import (
    base_currency_problems,
    checked_day,
    document_number,
    finish_document,
    line_amount_types_of,
)
from .lines import LineContext, map_lines
from .reference import OrgReference
from .rounding import Cin7Totals
from .rules import MappingRules
from .util import clean_text
from .xero import LineAmountTypes, XeroContactRef, XeroCreditNote, XeroInvoiceStatus

__all__ = ["credit_note_void_payload", "map_credit_note"]


def map_credit_note(
    sale: Cin7Sale,
    note: Cin7CreditNote,
    *,
    customer: Cin7Customer | None,
    rules: MappingRules,
    reference: OrgReference,
) -> XeroCreditNote:
    """The Xero ACCRECCREDIT payload for one credit note of a Cin7 sale (always AUTHORISED: only an
    authorised credit note can be allocated or refunded).

    Every problem found is raised together as one MappingError naming the credit note and the field.
    """
    problems: list[MappingProblem] = []
    number = document_number(
        note.credit_note_number,
        field="CreditNoteNumber",
        noun="credit note number",
        missing=f"a credit note of sale {sale.id} has no number",
        problems=problems,
    )
    document = f"credit note {number}" if number else f"a credit note of sale {sale.id}"
    customer_id = clean_text(sale.customer_id)
    if customer_id is None:
        problems.append(MappingProblem("CustomerID", None, f"Cin7 sale {sale.id} has no CustomerID"))
    day = checked_day(note.credit_note_date, "CreditNoteDate", document, problems)
    if day is None:
        problems.append(MappingProblem("CreditNoteDate", None, f"{document} has no CreditNoteDate"))
    line_amount_types = line_amount_types_of(sale, problems)
    problems.extend(base_currency_problems(sale, reference))
    currency = sale.customer_currency or sale.base_currency
    own_rate = note.credit_note_conversion_rate
    currency_rate, rate_problem = xero_currency_rate(
        own_rate if own_rate is not None else sale.currency_rate,
        currency=currency,
        base_currency=sale.base_currency,
        document=document,
        field="CreditNoteConversionRate" if own_rate is not None else "CurrencyRate",
    )
    if rate_problem is not None:
        problems.append(rate_problem)
    context = LineContext(
        document=document,
        default_tax_rule=sale.tax_rule,
        fallback_account=(customer.revenue_account if customer is not None else None) or rules.default_revenue_account,
        rules=rules,
        reference=reference,
        tax_inclusive=None if line_amount_types is None else line_amount_types is LineAmountTypes.INCLUSIVE,
        fold_discount=True,
    )
    line_items = map_lines([*note.lines, *note.additional_charges], context, problems)
    if not line_items:
        problems.append(MappingProblem("Lines", None, f"{document} has no lines to send"))
    payload = XeroCreditNote(
        contact=XeroContactRef(contact_number=customer_id) if customer_id else None,
        credit_note_number=number,
        # What a bookkeeper looks for on a credit note: the invoice it credits.
        reference=clean_text(note.credit_note_invoice_number),
        date=day,
        status=XeroInvoiceStatus.AUTHORISED,
        line_amount_types=line_amount_types,
        currency_code=currency,
        currency_rate=currency_rate,
        line_items=line_items,
    )
    totals = Cin7Totals(subtotal=note.total_before_tax, tax=note.tax, total=note.total)
    return finish_document(payload, totals, line_amount_types, rules, reference, document, problems)


def credit_note_void_payload(credit_note_id: str, number: str, status: XeroInvoiceStatus) -> XeroCreditNote:
    """The payload that voids (or, for a draft, deletes) a credit note: its id, number and new status."""
    return XeroCreditNote(type=None, credit_note_id=credit_note_id, credit_note_number=number, status=status)

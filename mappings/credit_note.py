"""Cin7 sale credit notes -> Xero ACCRECCREDIT credit notes.

The same rules as invoices (tax checked against both rates, Cin7's totals to the cent with a rounding
line, the inverted currency rate), except that Xero takes no discount on a credit note's lines: the
discount goes into the unit price (`LineContext.fold_discount`).
"""

from __future__ import annotations

from .cin7core import Cin7CreditNote, Cin7Customer, Cin7Sale
from .errors import MappingProblem
from .invoice import (
    base_currency_problems,
    credit_note_day,
    credit_note_number,
    customer_contact,
    document_currency,
    document_lines,
    finish_document,
    line_amount_types_of,
    sales_line_context,
)
from .reference import OrgReference
from .rules import MappingRules
from .util import clean_text
from .xero import XeroCreditNote, XeroInvoiceStatus

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
    number = credit_note_number(note, sale, problems)
    document = f"credit note {number}" if number else f"a credit note of sale {sale.id}"
    contact = customer_contact(sale, problems)
    day = credit_note_day(note, document, problems)
    line_amount_types = line_amount_types_of(sale, problems)
    problems.extend(base_currency_problems(sale, reference))
    currency, currency_rate = document_currency(
        sale,
        note.credit_note_conversion_rate,
        own_field="CreditNoteConversionRate",
        document=document,
        problems=problems,
    )
    context = sales_line_context(
        sale, customer, document, line_amount_types, rules, reference, fold_discount=True, problems=problems
    )
    line_items = document_lines(note, context, problems)
    payload = XeroCreditNote(
        contact=contact,
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
    return finish_document(payload, note, line_amount_types, rules, reference, document, problems)


def credit_note_void_payload(credit_note_id: str, number: str, status: XeroInvoiceStatus) -> XeroCreditNote:
    """The payload that voids (or, for a draft, deletes) a credit note: its id, number and new status."""
    return XeroCreditNote(type=None, credit_note_id=credit_note_id, credit_note_number=number, status=status)

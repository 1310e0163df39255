"""Cin7 sale invoices -> Xero ACCREC invoices, and what to do with each one.

Lines go at Xero's precision (`mappings.lines`), their tax checked against the Cin7 rule's rate and the
Xero tax type's; when Xero's rounding of them leaves the totals a few cents from Cin7's, one rounding line
makes them equal to the cent (`mappings.rounding`). A larger difference is a MappingError naming it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar, assert_never

from .cin7core import Cin7CreditNote, Cin7Customer, Cin7Invoice, Cin7InvoiceStatus, Cin7Sale
from .cin7purchases import Cin7Purchase, Cin7Supplier
from .currency import document_currency_rate
from .errors import MappingError, MappingProblem
from .lines import DESCRIPTION_MAX, LineContext, map_lines
from .reference import OrgReference
from .rounding import Cin7Totals, rounding_line
from .rules import MappingRules
from .terms import due_date_from_terms
from .util import clean_text
from .xero import (
    LineAmountTypes,
    XeroBill,
    XeroContactRef,
    XeroCreditNote,
    XeroInvoice,
    XeroInvoiceStatus,
    XeroLineItem,
    XeroLineTracking,
    xero_totals,
)

__all__ = [
    "DESCRIPTION_MAX",
    "InvoiceAction",
    "base_currency_problems",
    "checked_day",
    "credit_note_day",
    "credit_note_number",
    "customer_contact",
    "decide_invoice_action",
    "document_currency",
    "document_dates",
    "document_lines",
    "document_number",
    "finish_document",
    "line_amount_types_of",
    "map_invoice",
    "sales_line_context",
    "tax_inclusive_of",
    "void_payload",
    "with_rounding",
]

_Doc = TypeVar("_Doc", XeroInvoice, XeroBill, XeroCreditNote)

INVOICE_NUMBER_MAX = 255
# Xero's documents are dated within these years; a date outside them is a typing error in Cin7.
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2098, 12, 31)


class InvoiceAction(StrEnum):
    """What the pipeline should do in Xero for one Cin7 invoice."""

    CREATE = "CREATE"
    UPDATE = "UPDATE"
    VOID = "VOID"
    DELETE = "DELETE"
    SKIP = "SKIP"
    CONFLICT = "CONFLICT"
    NOTHING = "NOTHING"


def _has_payments(xero_status: XeroInvoiceStatus | None, xero_amount_paid: Decimal | None) -> bool:
    return xero_status is XeroInvoiceStatus.PAID or (xero_amount_paid is not None and xero_amount_paid > 0)


def _void_action(xero_status: XeroInvoiceStatus | None, xero_amount_paid: Decimal | None) -> InvoiceAction:
    if _has_payments(xero_status, xero_amount_paid):
        return InvoiceAction.CONFLICT
    match xero_status:
        case None:
            # Synced but Xero's status unknown: deleting and voiding are not interchangeable, ask a human.
            return InvoiceAction.CONFLICT
        case XeroInvoiceStatus.DRAFT | XeroInvoiceStatus.SUBMITTED:
            return InvoiceAction.DELETE
        case XeroInvoiceStatus.AUTHORISED:
            return InvoiceAction.VOID
        case XeroInvoiceStatus.PAID:
            return InvoiceAction.CONFLICT
        case XeroInvoiceStatus.VOIDED | XeroInvoiceStatus.DELETED:
            return InvoiceAction.NOTHING
        case _:
            assert_never(xero_status)


def _update_action(xero_status: XeroInvoiceStatus | None, xero_amount_paid: Decimal | None) -> InvoiceAction:
    if _has_payments(xero_status, xero_amount_paid):
        return InvoiceAction.CONFLICT
    match xero_status:
        case XeroInvoiceStatus.VOIDED | XeroInvoiceStatus.DELETED | XeroInvoiceStatus.PAID:
            return InvoiceAction.CONFLICT
        case XeroInvoiceStatus.DRAFT | XeroInvoiceStatus.SUBMITTED | XeroInvoiceStatus.AUTHORISED | None:
            return InvoiceAction.UPDATE
        case _:
            assert_never(xero_status)


def decide_invoice_action(
    cin7_status: Cin7InvoiceStatus | str | None,
    *,
    synced: bool,
    xero_status: XeroInvoiceStatus | None,
    xero_amount_paid: Decimal | None,
    content_changed: bool,
) -> InvoiceAction:
    """The action for one Cin7 invoice given what we already put in Xero.

    - DRAFT / NOT AVAILABLE (and a missing status or one Cin7 may add later): SKIP, drafts are never synced.
    - VOIDED: never synced -> SKIP; Xero DRAFT/SUBMITTED -> DELETE; AUTHORISED with nothing paid -> VOID;
      PAID or any amount paid -> CONFLICT; already VOIDED/DELETED -> NOTHING; Xero status unknown -> CONFLICT.
    - AUTHORISED / PAID: not synced -> CREATE; synced and unchanged -> NOTHING; synced and changed -> UPDATE,
      unless Xero has payments or is PAID/VOIDED/DELETED -> CONFLICT.
    """
    status = Cin7InvoiceStatus.parse(cin7_status)
    if status is None:
        return InvoiceAction.SKIP
    match status:
        case Cin7InvoiceStatus.DRAFT | Cin7InvoiceStatus.NOT_AVAILABLE:
            return InvoiceAction.SKIP
        case Cin7InvoiceStatus.VOIDED:
            if not synced:
                return InvoiceAction.SKIP
            return _void_action(xero_status, xero_amount_paid)
        case Cin7InvoiceStatus.AUTHORISED | Cin7InvoiceStatus.PAID:
            if not synced:
                return InvoiceAction.CREATE
            if not content_changed:
                return InvoiceAction.NOTHING
            return _update_action(xero_status, xero_amount_paid)
        case _:
            assert_never(status)


def recheck_invoice_action(
    action: InvoiceAction, xero_status: XeroInvoiceStatus | None, xero_amount_paid: Decimal | None
) -> InvoiceAction:
    """The planned update or void checked again against the invoice as Xero holds it now.

    The writer reads Xero's current state just before it writes: a payment made in Xero since the
    mapping turns the write into a CONFLICT, an invoice already voided there into NOTHING, and a void
    of a draft into a DELETE, by the same rules as `decide_invoice_action`.
    """
    if action in (InvoiceAction.VOID, InvoiceAction.DELETE):
        return _void_action(xero_status, xero_amount_paid)
    if action is InvoiceAction.UPDATE:
        return _update_action(xero_status, xero_amount_paid)
    return action


def void_payload(invoice_id: str, invoice_number: str, action: InvoiceAction) -> XeroInvoice:
    """The payload that voids (VOID) or deletes (DELETE) an invoice: only InvoiceID, InvoiceNumber, Status."""
    match action:
        case InvoiceAction.VOID:
            status = XeroInvoiceStatus.VOIDED
        case InvoiceAction.DELETE:
            status = XeroInvoiceStatus.DELETED
        case (
            InvoiceAction.CREATE
            | InvoiceAction.UPDATE
            | InvoiceAction.SKIP
            | InvoiceAction.CONFLICT
            | InvoiceAction.NOTHING
        ):
            raise ValueError(f"void_payload needs VOID or DELETE, not {action}")
        case _:
            assert_never(action)
    return XeroInvoice(type=None, invoice_id=invoice_id, invoice_number=invoice_number, status=status)


# --- map_invoice ---------------------------------------------------------------------------------------


def map_invoice(
    sale: Cin7Sale,
    invoice: Cin7Invoice,
    *,
    customer: Cin7Customer | None,
    rules: MappingRules,
    reference: OrgReference,
) -> XeroInvoice:
    """The Xero ACCREC payload for one invoice of a Cin7 sale.

    The contact is referenced by ContactNumber = Cin7 CustomerID (the pipeline swaps in the Xero ContactID).
    Every problem found (unknown tax rule or account, a tax rate that differs between Cin7 and Xero, a
    suspicious currency rate, totals that differ by more than rounding, ...) is collected and raised
    together as one MappingError.
    """
    problems: list[MappingProblem] = []
    invoice_number = _invoice_number(invoice, problems)
    document = f"invoice {invoice_number}" if invoice_number else f"an invoice of sale {sale.id}"
    contact = customer_contact(sale, problems)
    line_amount_types = line_amount_types_of(sale, problems)
    invoice_day, due_day = document_dates(invoice, sale, customer, document, problems)
    problems.extend(base_currency_problems(sale, reference))
    currency, currency_rate = document_currency(
        sale, invoice.currency_conversion_rate, own_field="CurrencyConversionRate", document=document, problems=problems
    )
    context = sales_line_context(
        sale, customer, document, line_amount_types, rules, reference, fold_discount=False, problems=problems
    )
    line_items = document_lines(invoice, context, problems)
    payload = XeroInvoice(
        contact=contact,
        invoice_number=invoice_number,
        reference=clean_text(sale.customer_reference)
        or (clean_text(sale.order.sale_order_number) if sale.order is not None else None),
        date=invoice_day,
        due_date=due_day,
        status=XeroInvoiceStatus(rules.invoice_status),
        line_amount_types=line_amount_types,
        currency_code=currency,
        currency_rate=currency_rate,
        line_items=line_items,
    )
    return finish_document(payload, invoice, line_amount_types, rules, reference, document, problems)


def finish_document(
    payload: _Doc,
    source: Cin7Invoice | Cin7CreditNote,
    amount_types: LineAmountTypes | None,
    rules: MappingRules,
    reference: OrgReference,
    document: str,
    problems: list[MappingProblem],
) -> _Doc:
    """The payload with the rounding line to `source`'s Cin7 totals, or every problem found raised as one MappingError.

    Rounding is only worked out for a document that is otherwise sound: on a broken one the gap it
    would report is noise next to the real problem.
    """
    if amount_types is not None and not problems:
        cin7 = Cin7Totals(subtotal=source.total_before_tax, tax=source.tax, total=source.total)
        payload = with_rounding(payload, cin7, amount_types, rules, reference, document, problems)
    if problems:
        raise MappingError.from_problems(problems)
    return payload


def _owner(document: Cin7Sale | Cin7Purchase) -> str:
    return document.label if isinstance(document, Cin7Purchase) else f"sale {document.id}"


def base_currency_problems(sale: Cin7Sale | Cin7Purchase, reference: OrgReference) -> list[MappingProblem]:
    """Cin7's base currency must be the Xero organisation's, or every amount converts wrongly."""
    if reference.base_currency and sale.base_currency and sale.base_currency != reference.base_currency:
        return [
            MappingProblem(
                "BaseCurrency",
                sale.base_currency,
                f"{_owner(sale)}: Cin7's base currency {sale.base_currency} is not the Xero organisation's "
                f"{reference.base_currency}; they must be the same, or every amount converts wrongly",
            )
        ]
    return []


def document_number(
    raw: str | None, *, field: str, noun: str, missing: str, problems: list[MappingProblem]
) -> str | None:
    """A document's number, trimmed; a problem when it is blank or longer than Xero's 255.

    A long number is cut after being reported, so the other checks can still name the document.
    """
    number = clean_text(raw)
    if number is None:
        problems.append(MappingProblem(field, None, missing))
    elif len(number) > INVOICE_NUMBER_MAX:
        problems.append(
            MappingProblem(
                field,
                number,
                f"{noun} {number!r} is {len(number)} characters; Xero allows {INVOICE_NUMBER_MAX}",
            )
        )
        return number[:INVOICE_NUMBER_MAX]
    return number


def _invoice_number(invoice: Cin7Invoice, problems: list[MappingProblem]) -> str | None:
    return document_number(
        invoice.invoice_number,
        field="InvoiceNumber",
        noun="invoice number",
        missing="the Cin7 invoice has no InvoiceNumber",
        problems=problems,
    )


def credit_note_number(
    note: Cin7CreditNote, owner: Cin7Sale | Cin7Purchase, problems: list[MappingProblem]
) -> str | None:
    """A credit note's CreditNoteNumber, checked as `document_number` checks it, for a sale's or a purchase's."""
    return document_number(
        note.credit_note_number,
        field="CreditNoteNumber",
        noun="credit note number",
        missing=f"a credit note of {_owner(owner)} has no number",
        problems=problems,
    )


def credit_note_day(note: Cin7CreditNote, document: str, problems: list[MappingProblem]) -> date | None:
    """A credit note's Date: its CreditNoteDate, checked; a problem when it has none (Xero requires one)."""
    day = checked_day(note.credit_note_date, "CreditNoteDate", document, problems)
    if day is None:
        problems.append(MappingProblem("CreditNoteDate", None, f"{document} has no CreditNoteDate"))
    return day


def customer_contact(sale: Cin7Sale, problems: list[MappingProblem]) -> XeroContactRef | None:
    """The contact of a sale's document, by ContactNumber = Cin7 CustomerID; a problem when the sale has none."""
    customer_id = clean_text(sale.customer_id)
    if customer_id is None:
        problems.append(MappingProblem("CustomerID", None, f"Cin7 sale {sale.id} has no CustomerID"))
        return None
    return XeroContactRef(contact_number=customer_id)


def document_currency(
    owner: Cin7Sale | Cin7Purchase,
    own_rate: Decimal | None,
    *,
    own_field: str,
    document: str,
    problems: list[MappingProblem],
) -> tuple[str | None, Decimal | None]:
    """A document's CurrencyCode and Xero CurrencyRate (from its own rate, else its sale's or purchase's).

    The currency is the customer's (or supplier's), else the base currency; a rate problem is appended.
    """
    foreign = owner.supplier_currency if isinstance(owner, Cin7Purchase) else owner.customer_currency
    currency = foreign or owner.base_currency
    rate, problem = document_currency_rate(
        own_rate,
        owner.currency_rate,
        own_field=own_field,
        currency=currency,
        base_currency=owner.base_currency,
        document=document,
    )
    if problem is not None:
        problems.append(problem)
    return currency, rate


def tax_inclusive_of(amount_types: LineAmountTypes | None) -> bool | None:
    """`LineContext.tax_inclusive` for a document's amount types (None when they are unknown)."""
    return None if amount_types is None else amount_types is LineAmountTypes.INCLUSIVE


def sales_line_context(
    sale: Cin7Sale,
    customer: Cin7Customer | None,
    document: str,
    amount_types: LineAmountTypes | None,
    rules: MappingRules,
    reference: OrgReference,
    *,
    fold_discount: bool,
    problems: list[MappingProblem],
) -> LineContext:
    """How the lines of a sale's invoice or credit note are mapped (a problem found is appended).

    A line without a tax rule takes the sale's; one without an account the customer's revenue account,
    else the rules' ``default_revenue_account``.
    """
    return LineContext(
        document=document,
        default_tax_rule=sale.tax_rule,
        fallback_account=(customer.revenue_account if customer is not None else None) or rules.default_revenue_account,
        rules=rules,
        reference=reference,
        tax_inclusive=tax_inclusive_of(amount_types),
        fold_discount=fold_discount,
        tracking=sales_rep_tracking(sale, rules, document, problems),
    )


#: Xero's longest tracking option name.
TRACKING_OPTION_MAX = 50


def sales_rep_tracking(
    sale: Cin7Sale, rules: MappingRules, document: str, problems: list[MappingProblem]
) -> tuple[XeroLineTracking, ...]:
    """The sale's SalesRepresentative as an option of the rules' tracking category, when one is named."""
    category = rules.sales_rep_tracking_category
    rep = clean_text(sale.sales_representative)
    if category is None or rep is None:
        return ()
    if len(rep) > TRACKING_OPTION_MAX:
        problems.append(
            MappingProblem(
                "SalesRepresentative",
                rep,
                f"the sales representative of {document} is {len(rep)} characters; a Xero tracking option "
                f"holds at most {TRACKING_OPTION_MAX}: shorten it in Cin7",
            )
        )
        return ()
    return (XeroLineTracking(name=category, option=rep),)


def document_lines(
    source: Cin7Invoice | Cin7CreditNote, context: LineContext, problems: list[MappingProblem]
) -> list[XeroLineItem]:
    """The Xero lines of a Cin7 document's product lines and additional charges; a problem when none is left."""
    line_items = map_lines([*source.lines, *source.additional_charges], context, problems)
    if not line_items:
        problems.append(MappingProblem("Lines", None, f"{context.document} has no lines to send"))
    return line_items


def line_amount_types_of(sale: Cin7Sale | Cin7Purchase, problems: list[MappingProblem]) -> LineAmountTypes | None:
    """Exclusive or Inclusive from Cin7's TaxCalculation; anything else is a problem, never a default."""
    match sale.tax_calculation:
        case "INCLUSIVE":
            return LineAmountTypes.INCLUSIVE
        case "EXCLUSIVE":
            return LineAmountTypes.EXCLUSIVE
        case other:
            problems.append(
                MappingProblem(
                    "TaxCalculation",
                    other,
                    f"unknown Cin7 TaxCalculation {other!r} on {_owner(sale)}: expected Inclusive or Exclusive",
                )
            )
            return None


def checked_day(moment: datetime | None, field: str, document: str, problems: list[MappingProblem]) -> date | None:
    """The day of a Cin7 timestamp; a problem when it is outside the years Xero dates documents in."""
    day = moment.date() if moment is not None else None
    if day is not None and not MIN_DATE <= day <= MAX_DATE:
        problems.append(
            MappingProblem(
                field,
                day.isoformat(),
                f"{document}: {field} {day.isoformat()} is outside {MIN_DATE.year}-{MAX_DATE.year}",
            )
        )
    return day


def document_dates(
    invoice: Cin7Invoice,
    owner: Cin7Sale | Cin7Purchase,
    contact: Cin7Customer | Cin7Supplier | None,
    document: str,
    problems: list[MappingProblem],
) -> tuple[date | None, date | None]:
    """An invoice's or bill's Date and DueDate, each checked.

    A missing due date comes from the payment terms (the sale's or purchase's, else its contact's
    PaymentTerm), since Xero would otherwise leave it blank.
    """
    invoice_day = checked_day(invoice.invoice_date, "InvoiceDate", document, problems)
    due_day = checked_day(invoice.invoice_due_date, "InvoiceDueDate", document, problems)
    if invoice_day is None:
        problems.append(MappingProblem("InvoiceDate", None, f"{document} has no InvoiceDate"))
    elif due_day is None:
        terms = clean_text(owner.terms) or (contact.payment_term if contact is not None else None)
        try:
            due_day = due_date_from_terms(invoice_day, terms)
        except MappingError as exc:
            problems.append(MappingProblem("Terms", exc.value, f"{exc.message} ({document})"))
    return invoice_day, due_day


def with_rounding(
    payload: _Doc,
    cin7: Cin7Totals,
    amount_types: LineAmountTypes,
    rules: MappingRules,
    reference: OrgReference,
    document: str,
    problems: list[MappingProblem],
) -> _Doc:
    """The payload with the rounding line that makes Xero's totals Cin7's, if one is needed."""
    lines: list[XeroLineItem] = list(payload.line_items or [])
    extra, found = rounding_line(
        xero_totals(payload),
        cin7,
        lines,
        amount_types=amount_types,
        rules=rules,
        reference=reference,
        document=document,
    )
    problems.extend(found)
    if extra is None:
        return payload
    return payload.model_copy(update={"line_items": [*lines, extra]})

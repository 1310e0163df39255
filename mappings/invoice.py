"""Cin7 sale invoices -> Xero ACCREC invoices, and what to do with each one.

The mapping is exact or it fails: every line's LineAmount and TaxAmount are Cin7's own, and the totals Xero
will compute are checked against Cin7's header totals to the cent. A difference is a MappingError naming
both values; it is never absorbed by a rounding line.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import assert_never

from .cin7core import Cin7AdditionalCharge, Cin7Customer, Cin7Invoice, Cin7InvoiceStatus, Cin7Line, Cin7Sale
from .errors import MappingError, MappingProblem
from .rules import MappingRules
from .terms import due_date_from_terms
from .util import CENT, clean_text, decimal_to_str
from .xero import (
    LineAmountTypes,
    XeroContactRef,
    XeroInvoice,
    XeroInvoiceStatus,
    XeroLineItem,
    XeroTaxType,
    expected_line_amount,
    xero_totals,
)

__all__ = [
    "DESCRIPTION_MAX",
    "InvoiceAction",
    "decide_invoice_action",
    "map_invoice",
    "void_payload",
]

DESCRIPTION_MAX = 4000
INVOICE_NUMBER_MAX = 255
_NO_DESCRIPTION = "(no description)"
_UNIT_DP = Decimal("0.0001")


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


def _fmt(value: Decimal) -> str:
    """Amounts in messages: at least cents, so "14.00" reads as money, but never hide extra places."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(CENT)
    return decimal_to_str(value)


def _cents(value: Decimal) -> Decimal:
    """Money as sent: exactly two places when that loses nothing, else unchanged (and reported)."""
    quantized = value.quantize(CENT)
    return quantized if quantized == value else value


def _line_description(rules: MappingRules, line: Cin7Line | Cin7AdditionalCharge) -> str:
    if isinstance(line, Cin7Line):
        text = rules.describe(sku=line.sku, name=line.name)
        comment = (line.comment or "").strip()
        if comment:
            text = f"{text}\n{comment}" if text else comment
    else:
        text = (line.description or "").strip()
    # Xero rejects an empty Description; its limit is 4000 and a cut description harms nobody.
    return (text or _NO_DESCRIPTION)[:DESCRIPTION_MAX]


def _line_label(number: int, line: Cin7Line | Cin7AdditionalCharge) -> str:
    if isinstance(line, Cin7Line):
        ident = (line.sku or "").strip() or (line.name or "").strip()
        return f"line {number} (SKU {ident})" if ident else f"line {number}"
    desc = (line.description or "").strip()
    return f"line {number} (charge {desc})" if desc else f"line {number} (additional charge)"


def _map_line(
    number: int,
    line: Cin7Line | Cin7AdditionalCharge,
    *,
    sale: Cin7Sale,
    customer: Cin7Customer | None,
    rules: MappingRules,
    valid_accounts: frozenset[str] | None,
    problems: list[MappingProblem],
) -> XeroLineItem:
    label = _line_label(number, line)
    where = f" on {label}"
    field = f"Lines[{number}]"

    tax_type: XeroTaxType | None = None
    try:
        tax_type = rules.tax_type_for(clean_text(line.tax_rule) or clean_text(sale.tax_rule) or "", where=where)
    except MappingError as exc:
        problems.append(MappingProblem(f"{field}.TaxRule", exc.value, exc.message))

    account_code: str | None = None
    fallback = (customer.revenue_account if customer is not None else None) or rules.default_revenue_account
    try:
        account_code = rules.account_for(line.account, fallback=fallback, valid_accounts=valid_accounts, where=where)
    except MappingError as exc:
        problems.append(MappingProblem(f"{field}.Account", exc.value, exc.message))

    if line.price != line.price.quantize(_UNIT_DP):
        problems.append(
            MappingProblem(
                f"{field}.Price",
                _fmt(line.price),
                f"price {_fmt(line.price)}{where} has more than 4 decimal places; Xero keeps at most 4",
            )
        )
    if not Decimal(0) <= line.discount <= Decimal(100):
        problems.append(
            MappingProblem(
                f"{field}.Discount",
                _fmt(line.discount),
                f"discount {_fmt(line.discount)}%{where} is not a percentage between 0 and 100",
            )
        )

    if line.tax != line.tax.quantize(CENT):
        problems.append(
            MappingProblem(
                f"{field}.Tax",
                _fmt(line.tax),
                f"Cin7 line tax {_fmt(line.tax)}{where} is not a whole number of cents; Xero would round it",
            )
        )

    discount_rate = line.discount if line.discount != 0 else None
    expected = expected_line_amount(line.quantity, line.price, discount_rate)
    if expected != line.total:
        problems.append(
            MappingProblem(
                f"{field}.Total",
                _fmt(line.total),
                f"Cin7 line total {_fmt(line.total)}{where} differs from Xero's line amount {_fmt(expected)} "
                f"(= {_fmt(line.quantity)} x {_fmt(line.price)}"
                + (f" less {_fmt(line.discount)}%" if discount_rate is not None else "")
                + ", rounded to the cent); fix the line in Cin7",
            )
        )

    return XeroLineItem(
        description=_line_description(rules, line),
        quantity=line.quantity,
        unit_amount=line.price,
        discount_rate=discount_rate,
        account_code=account_code,
        tax_type=tax_type,
        tax_amount=_cents(line.tax),
        line_amount=_cents(line.total),
    )


def map_invoice(
    sale: Cin7Sale,
    invoice: Cin7Invoice,
    *,
    customer: Cin7Customer | None,
    rules: MappingRules,
    valid_accounts: frozenset[str] | None,
) -> XeroInvoice:
    """The Xero ACCREC payload for one invoice of a Cin7 sale.

    The contact is referenced by ContactNumber = Cin7 CustomerID (the pipeline swaps in the Xero ContactID).
    Every problem found (unknown tax rule, unknown account, unknown terms, a line or header total that Xero
    would compute differently, ...) is collected and raised together as one MappingError.
    """
    problems: list[MappingProblem] = []

    invoice_number = clean_text(invoice.invoice_number)
    if invoice_number is None:
        problems.append(MappingProblem("InvoiceNumber", None, "the Cin7 invoice has no InvoiceNumber"))
    elif len(invoice_number) > INVOICE_NUMBER_MAX:
        problems.append(
            MappingProblem(
                "InvoiceNumber",
                invoice_number,
                f"invoice number {invoice_number!r} is {len(invoice_number)} characters; "
                f"Xero allows {INVOICE_NUMBER_MAX}",
            )
        )

    customer_id = clean_text(sale.customer_id)
    contact: XeroContactRef | None = None
    if customer_id is None:
        problems.append(MappingProblem("CustomerID", None, f"Cin7 sale {sale.id} has no CustomerID"))
    else:
        contact = XeroContactRef(contact_number=customer_id)

    reference = clean_text(sale.customer_reference) or (
        clean_text(sale.order.sale_order_number) if sale.order is not None else None
    )

    line_amount_types: LineAmountTypes | None = None
    match sale.tax_calculation:
        case "INCLUSIVE":
            line_amount_types = LineAmountTypes.INCLUSIVE
        case "EXCLUSIVE":
            line_amount_types = LineAmountTypes.EXCLUSIVE
        case other:
            problems.append(
                MappingProblem(
                    "TaxCalculation",
                    other,
                    f"unknown Cin7 TaxCalculation {other!r} on sale {sale.id}: expected Inclusive or Exclusive",
                )
            )

    invoice_day = invoice.invoice_date.date() if invoice.invoice_date is not None else None
    due_day = invoice.invoice_due_date.date() if invoice.invoice_due_date is not None else None
    if invoice_day is None:
        problems.append(MappingProblem("InvoiceDate", None, f"invoice {invoice_number} has no InvoiceDate"))
    elif due_day is None:
        terms = clean_text(sale.terms) or (customer.payment_term if customer is not None else None)
        try:
            due_day = due_date_from_terms(invoice_day, terms)
        except MappingError as exc:
            problems.append(MappingProblem("Terms", exc.value, f"{exc.message} (invoice {invoice_number})"))

    currency = sale.customer_currency or sale.base_currency
    currency_rate: Decimal | None = None
    if currency is not None and sale.base_currency is not None and currency != sale.base_currency:
        rate = invoice.currency_conversion_rate or sale.currency_rate
        if rate is not None and rate < 0:
            problems.append(
                MappingProblem("CurrencyRate", _fmt(rate), f"currency rate {_fmt(rate)} on sale {sale.id} is negative")
            )
        elif rate:
            currency_rate = rate

    sources: list[Cin7Line | Cin7AdditionalCharge] = [*invoice.lines, *invoice.additional_charges]
    line_items: list[XeroLineItem] = []
    for number, line in enumerate(sources, start=1):
        if line.quantity == 0 and line.total == 0:
            continue
        line_items.append(
            _map_line(
                number,
                line,
                sale=sale,
                customer=customer,
                rules=rules,
                valid_accounts=valid_accounts,
                problems=problems,
            )
        )
    if not line_items:
        problems.append(MappingProblem("Lines", None, f"invoice {invoice_number} has no lines to send"))

    payload = XeroInvoice(
        contact=contact,
        invoice_number=invoice_number[:INVOICE_NUMBER_MAX] if invoice_number else None,
        reference=reference,
        date=invoice_day,
        due_date=due_day,
        status=XeroInvoiceStatus(rules.invoice_status),
        line_amount_types=line_amount_types,
        currency_code=currency,
        currency_rate=currency_rate,
        line_items=line_items,
    )

    if line_amount_types is not None:
        totals = xero_totals(payload)
        for name, xero_value, cin7_value in (
            ("SubTotal", totals.subtotal, invoice.total_before_tax),
            ("TotalTax", totals.total_tax, invoice.tax),
            ("Total", totals.total, invoice.total),
        ):
            if xero_value != cin7_value:
                problems.append(
                    MappingProblem(
                        name,
                        _fmt(cin7_value),
                        f"invoice {invoice_number}: Xero would show {name} {_fmt(xero_value)} but Cin7 says "
                        f"{_fmt(cin7_value)}; the invoice is not sent rather than adjusted",
                    )
                )

    if problems:
        raise MappingError.from_problems(problems)
    return payload

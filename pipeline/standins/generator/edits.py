"""Edits that settle a generated sale after the fact: payments, credit notes and refunds.

Each helper returns a changed copy of the sale (the input is left alone, as ``edit_invoice`` does), with
``LastModifiedOn`` set to ``now``, every invoice's ``Paid``/``Status`` and the sale statuses re-derived,
and, for the helpers that create something, the created item too. Money and credit are dated ``now``.
They refuse (``ValueError``) what Cin7 would refuse or what would break the allocation rule's invariants:
paying more than is due, refunding more than the unused credit, voiding a credit note that was refunded.

IDs are seeded from the sale, the document and ``now``, so the same calls give the same result.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pipeline.standins.generator.documents import make_credit_note, payment_line, scaled_lines
from pipeline.standins.generator.settlement import (
    LIVE_INVOICE_STATUSES,
    amount,
    document_day,
    invoice_balance,
    invoice_places,
    unused_credit,
)
from pipeline.standins.generator.totals import derive_statuses, find_invoice
from pipeline.standins.generator.values import ZERO, format_timestamp, round_cents, to_decimal


@dataclass(frozen=True, slots=True)
class _MoneyKeys:
    """Where a document keeps what money moves against it: its date, its rate and the list of the moves."""

    date: str
    rate: str
    lines: str


_INVOICE_MONEY = _MoneyKeys(date="InvoiceDate", rate="CurrencyConversionRate", lines="Payments")
_CREDIT_NOTE_MONEY = _MoneyKeys(date="CreditNoteDate", rate="CreditNoteConversionRate", lines="Refunds")


def add_payment(
    sale: dict[str, Any], task_id: str, value: Decimal, *, now: datetime, reference: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pay ``value`` (customer currency, 2 dp, at most what is due) on invoice ``task_id``.

    Returns ``(changed sale, the new payment line)``; the invoice becomes PAID once nothing is due.
    """
    changed = copy.deepcopy(sale)
    invoice = _live_invoice(changed, task_id)
    value = _money(value)
    _, _, due = invoice_balance(changed, invoice)
    if value > due:
        raise ValueError(f"payment {value} exceeds the {due} due on {invoice['InvoiceNumber']}")
    return _pay(changed, invoice, value, _INVOICE_MONEY, now=now, reference=reference)


def remove_payment(sale: dict[str, Any], payment_id: str, *, now: datetime) -> dict[str, Any]:
    """Delete the invoice payment ``payment_id`` (as Cin7's ``DELETE sale/payment``); return the changed sale."""
    changed = copy.deepcopy(sale)
    wanted = payment_id.lower()
    for invoice in changed["Invoices"]:
        kept = [p for p in invoice["Payments"] if str(p["ID"]).lower() != wanted]
        if len(kept) != len(invoice["Payments"]):
            invoice["Payments"] = kept
            return _finish(changed, now)
    raise KeyError(f"sale {sale.get('ID')} has no payment {payment_id}")


def add_credit_note(
    sale: dict[str, Any],
    task_id: str,
    *,
    now: datetime,
    fraction: Decimal | None = None,
    lines: Sequence[int] | None = None,
    authorised: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Credit invoice ``task_id``: AUTHORISED (or DRAFT with ``authorised=False``), dated ``now``.

    By default it credits the whole invoice (every line and additional charge). ``lines`` (indexes into the
    invoice's ``Lines``) credits only those product lines, without the charges; ``fraction`` (0 < f <= 1)
    scales the quantities of whatever is credited. Returns ``(changed sale, the new credit note)``.
    """
    changed = copy.deepcopy(sale)
    invoice = _live_invoice(changed, task_id)
    if lines is None:
        chosen, charges = invoice["Lines"], invoice.get("AdditionalCharges") or []
    else:
        if not lines or any(not 0 <= i < len(invoice["Lines"]) for i in lines):
            raise ValueError(f"line indexes {list(lines)} do not pick lines of {invoice['InvoiceNumber']}")
        chosen, charges = [invoice["Lines"][i] for i in lines], []
    if fraction is not None:
        chosen, charges = scaled_lines(chosen, to_decimal(fraction)), scaled_lines(charges, to_decimal(fraction))
    rng = _rng(changed, invoice["TaskID"], now, len(changed["CreditNotes"]))
    credit_note = make_credit_note(
        rng,
        changed,
        invoice,
        lines=chosen,
        charges=charges,
        status="AUTHORISED" if authorised else "DRAFT",
        day=_day_on_or_after(now, invoice["InvoiceDate"]),
        places=invoice_places(invoice),
    )
    if to_decimal(credit_note["Total"]) <= 0:
        raise ValueError("the credit note would total nothing")
    changed["CreditNotes"].append(credit_note)
    return _finish(changed, now), copy.deepcopy(credit_note)


def void_credit_note(sale: dict[str, Any], credit_note_task_id: str, *, now: datetime) -> dict[str, Any]:
    """VOID credit note ``credit_note_task_id`` (its credit stops counting); return the changed sale.

    Refuses one with refunds: the money paid back would no longer match any credit.
    """
    changed = copy.deepcopy(sale)
    credit_note = _credit_note(changed, credit_note_task_id)
    if credit_note.get("Refunds"):
        raise ValueError(f"credit note {credit_note['CreditNoteNumber']} has refunds; it cannot be voided")
    credit_note["Status"] = "VOIDED"
    return _finish(changed, now)


def add_refund(
    sale: dict[str, Any], credit_note_task_id: str, value: Decimal, *, now: datetime, reference: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pay back ``value`` of an AUTHORISED credit note's unused credit; return ``(changed sale, the refund)``."""
    changed = copy.deepcopy(sale)
    credit_note = _credit_note(changed, credit_note_task_id)
    if str(credit_note["Status"]).upper() != "AUTHORISED":
        raise ValueError(f"credit note {credit_note['CreditNoteNumber']} is {credit_note['Status']}, not AUTHORISED")
    value = _money(value)
    unused = unused_credit(changed, credit_note)
    if value > unused:
        # Refunding credit already applied to the invoice would silently re-open the invoice.
        raise ValueError(f"refund {value} exceeds the unused credit {unused} of {credit_note['CreditNoteNumber']}")
    return _pay(changed, credit_note, value, _CREDIT_NOTE_MONEY, now=now, reference=reference)


def _pay(
    sale: dict[str, Any],
    document: dict[str, Any],
    value: Decimal,
    keys: _MoneyKeys,
    *,
    now: datetime,
    reference: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add a payment line of ``value`` to ``document`` of ``sale``: ``(finished sale, a copy of the line)``."""
    day = _day_on_or_after(now, document[keys.date])
    # Seeded by how many lines the document has already, so that a second payment gets an ID of its own.
    rng = _rng(sale, document["TaskID"], now, len(document[keys.lines]))
    line = payment_line(rng, value, day, document[keys.rate], latest=now, reference=reference)
    document[keys.lines].append(line)
    return _finish(sale, now), copy.deepcopy(line)


def _live_invoice(sale: dict[str, Any], task_id: str) -> dict[str, Any]:
    invoice = find_invoice(sale, task_id)
    if str(invoice["Status"]).upper() not in LIVE_INVOICE_STATUSES:
        raise ValueError(f"invoice {invoice['InvoiceNumber']} is {invoice['Status']}: nothing can settle it")
    invoice.setdefault("Payments", [])
    sale.setdefault("CreditNotes", [])
    return invoice


def _credit_note(sale: dict[str, Any], task_id: str) -> dict[str, Any]:
    wanted = task_id.lower()
    for credit_note in sale.get("CreditNotes") or []:
        if str(credit_note["TaskID"]).lower() == wanted:
            credit_note.setdefault("Refunds", [])
            return credit_note  # type: ignore[no-any-return]
    raise KeyError(f"sale {sale.get('ID')} has no credit note with TaskID {task_id}")


def _money(value: Decimal) -> Decimal:
    value = to_decimal(value)
    if value <= ZERO or value != round_cents(value):
        raise ValueError(f"amount must be positive with at most 2 dp, not {value}")
    return amount(value)


def _day_on_or_after(now: datetime, document_date: str) -> date:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # Cin7's document dates are UTC days here, as LastModifiedOn is UTC.
    day = now.astimezone(UTC).date()
    if day < document_day(document_date):
        raise ValueError(f"now ({day}) is before the document date {document_date[:10]}")
    return day


def _rng(sale: dict[str, Any], task_id: str, now: datetime, count: int) -> random.Random:
    return random.Random(f"{sale['ID']}|{task_id}|{format_timestamp(now)}|{count}")


def _finish(sale: dict[str, Any], now: datetime) -> dict[str, Any]:
    # Every live invoice's status is decided afresh by its settlement (removing the last payment of a PAID
    # invoice makes it AUTHORISED again).
    for invoice in sale["Invoices"]:
        if str(invoice["Status"]).upper() in LIVE_INVOICE_STATUSES:
            invoice["Status"] = "AUTHORISED"
    derive_statuses(sale)
    sale["LastModifiedOn"] = format_timestamp(now)
    return sale

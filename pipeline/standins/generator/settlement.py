"""How a generated invoice is settled: its payments, its credit notes' allocations, and the statuses they drive.

:func:`credit_allocations` is THE allocation rule that the expectations use (and that the pipeline implements
on its own): for each invoice, its AUTHORISED credit notes ordered by (``CreditNoteDate``,
``CreditNoteNumber``), each allocated ``max(0, min(cn.Total - refunds, invoice.Total - payments - earlier
allocations))``. DRAFT and VOIDED credit notes never count.

Pure functions of the sale JSON: ``totals.derive_statuses`` calls :func:`refresh_settlement`, and the
builders of payments and credit notes live in ``documents.py``.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pipeline.standins.generator.values import ZERO, round_cents, to_decimal

#: Invoice statuses whose money counts (a DRAFT or VOIDED invoice is settled by nothing).
LIVE_INVOICE_STATUSES = ("AUTHORISED", "PAID")
# A credit note's number mirrors its invoice's digits (CR-00042 credits INV-00042); a second, third, ...
# credit note of the same invoice adds this step once more, so numbers stay unique across a dataset of
# fewer than 50 000 invoices without any counter shared between sales.
_CREDIT_NUMBER_STEP = 50_000


def amount(value: Any) -> Decimal:
    """A document amount as Xero will hold it: ``Decimal`` to the cent."""
    return round_cents(to_decimal(value))


def document_day(value: str) -> date:
    """The date of a Cin7 document date (``yyyy-MM-ddT00:00:00``)."""
    return date.fromisoformat(str(value)[:10])


def paid_total(invoice: dict[str, Any]) -> Decimal:
    """The sum of an invoice's ``Payments[].Amount``."""
    return sum((amount(p["Amount"]) for p in invoice.get("Payments") or []), ZERO)


def refunded_total(credit_note: dict[str, Any]) -> Decimal:
    """The sum of a credit note's ``Refunds[].Amount``."""
    return sum((amount(r["Amount"]) for r in credit_note.get("Refunds") or []), ZERO)


def credit_notes_for(sale: dict[str, Any], invoice_number: str) -> list[dict[str, Any]]:
    """Every credit note of ``sale`` (any status) that names ``invoice_number``, in the sale's order."""
    return [cn for cn in sale.get("CreditNotes") or [] if cn.get("CreditNoteInvoiceNumber") == invoice_number]


def credit_allocations(
    invoice: dict[str, Any], credit_notes: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], Decimal]]:
    """The allocation rule: each AUTHORISED credit note of ``invoice`` with the amount applied to it, in order.

    ``credit_notes`` may hold credit notes of other invoices and of any status; only the invoice's AUTHORISED
    ones are returned. Amounts are to the cent, as Xero holds them.
    """
    number = invoice["InvoiceNumber"]
    authorised = [
        cn
        for cn in credit_notes
        if cn.get("CreditNoteInvoiceNumber") == number and str(cn.get("Status", "")).upper() == "AUTHORISED"
    ]
    authorised.sort(key=lambda cn: (str(cn["CreditNoteDate"])[:10], str(cn["CreditNoteNumber"])))
    open_amount = amount(invoice["Total"]) - paid_total(invoice)
    allocations: list[tuple[dict[str, Any], Decimal]] = []
    for cn in authorised:
        allocated = max(ZERO, min(amount(cn["Total"]) - refunded_total(cn), open_amount))
        open_amount -= allocated
        allocations.append((cn, allocated))
    return allocations


def invoice_balance(sale: dict[str, Any], invoice: dict[str, Any]) -> tuple[Decimal, Decimal, Decimal]:
    """(paid, credited, due) of one invoice of ``sale``: Xero's AmountPaid, AmountCredited, AmountDue."""
    paid = paid_total(invoice) if invoice.get("Payments") else ZERO
    credited = ZERO
    # Credit is only applied to a live invoice (one that Xero holds as AUTHORISED or PAID).
    if sale.get("CreditNotes") and str(invoice["Status"]).upper() in LIVE_INVOICE_STATUSES:
        credited = sum((a for _, a in credit_allocations(invoice, sale.get("CreditNotes") or [])), ZERO)
    return paid, credited, amount(invoice["Total"]) - paid - credited


def unused_credit(sale: dict[str, Any], credit_note: dict[str, Any]) -> Decimal:
    """What is left of an AUTHORISED credit note once allocated and refunded (zero for any other status)."""
    if str(credit_note.get("Status", "")).upper() != "AUTHORISED":
        return ZERO
    invoice = next((i for i in sale["Invoices"] if i["InvoiceNumber"] == credit_note["CreditNoteInvoiceNumber"]), None)
    allocated = ZERO
    if invoice is not None and str(invoice["Status"]).upper() in LIVE_INVOICE_STATUSES:
        allocations = credit_allocations(invoice, sale["CreditNotes"])
        allocated = next((a for cn, a in allocations if cn is credit_note), ZERO)
    return amount(credit_note["Total"]) - allocated - refunded_total(credit_note)


def refresh_settlement(sale: dict[str, Any]) -> None:
    """Set every live invoice's ``Paid`` and ``Status`` from its payments and credit, in place.

    A live invoice is PAID once nothing is due and something (money or credit) settled it, AUTHORISED
    otherwise: so a fully credited invoice is PAID with ``Paid`` 0, as in Xero. Sale statuses are derived by
    ``derive_statuses`` (which calls this first).
    """
    has_credit = bool(sale.get("CreditNotes"))
    for invoice in sale["Invoices"]:
        live = str(invoice["Status"]).upper() in LIVE_INVOICE_STATUSES
        if not has_credit and not invoice.get("Payments"):
            # Nothing settles it (the common case, kept cheap for the 5 000-sale benchmark). Its Status is
            # left as given, so a hand-made PAID invoice without payment lines stays PAID.
            invoice["Paid"] = ZERO
            continue
        paid, credited, due = invoice_balance(sale, invoice)
        invoice["Paid"] = paid
        if live:
            settled = due <= 0 and (paid > 0 or credited > 0)
            invoice["Status"] = "PAID" if settled else "AUTHORISED"


def credit_note_number(sale: dict[str, Any], invoice_number: str) -> str:
    """The next credit note number for ``invoice_number``: ``CR-<its digits>``, then 50 000 higher each time."""
    digits = int("".join(ch for ch in invoice_number if ch.isdigit()) or "0")
    existing = {cn.get("CreditNoteNumber") for cn in sale.get("CreditNotes") or []}
    step = 0
    while (number := f"CR-{digits + step * _CREDIT_NUMBER_STEP:05d}") in existing:
        step += 1
    return number


def invoice_places(invoice: dict[str, Any]) -> int:
    """4 for an invoice kept to 4 dp (some line amount is not whole cents), else 2."""
    parts = [*(invoice.get("Lines") or []), *(invoice.get("AdditionalCharges") or [])]
    values = [to_decimal(line[key]) for line in parts for key in ("Total", "Tax")]
    return 4 if any(v != round_cents(v) for v in values) else 2


def day_between(rng: random.Random, start: date, end: date) -> date:
    """A day in ``[start, end]`` (``start`` when the range is empty)."""
    span = (end - start).days
    return start + timedelta(days=rng.randint(0, span)) if span > 0 else start

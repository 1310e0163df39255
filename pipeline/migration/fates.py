"""Each historical document's fate, decided from Cin7's sale, Xero's documents and the ledger. Pure.

The same decision serves the test run (the plan's rows) and the cutover (which documents it adopts
and which are conflicts), so that what the plan said is what the run does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from mappings import (
    Cin7CreditNote,
    Cin7Customer,
    Cin7Invoice,
    Cin7InvoiceStatus,
    Cin7Payment,
    Cin7Sale,
    Cin7Totals,
    MappingError,
    MappingRules,
    OrgReference,
    XeroCreditNote,
    XeroInvoice,
    credit_allocations,
    map_credit_note,
    map_invoice,
    normalise_name,
    totals_in_xero,
)
from pipeline.migration.history import in_window, number_key
from pipeline.migration.plan_rows import Fate, PlanRow
from pipeline.reconcile.window import Window
from pipeline.xero.sdk import parse_xero_date

CENT = Decimal("0.01")
LIVE_CIN7 = (Cin7InvoiceStatus.AUTHORISED, Cin7InvoiceStatus.PAID)


@dataclass(frozen=True)
class Decided:
    """One document's fate with what the cutover needs to act on it."""

    row: PlanRow
    #: The mapped payload (for an adoption: the hash the ledger records as what Xero holds).
    payload: dict[str, Any] | None = None
    #: The status of the Xero document it adopts or conflicts with (AUTHORISED, PAID).
    xero_status: str | None = None


def _money(value: object) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def _differences(cin7: Cin7Totals, xero: Mapping[str, Any]) -> list[str]:
    want = totals_in_xero(cin7)
    pairs = (
        ("SubTotal", want.subtotal, xero.get("SubTotal")),
        ("TotalTax", want.total_tax, xero.get("TotalTax")),
        ("Total", want.total, xero.get("Total")),
    )
    return [
        f"{name} {_money(theirs)} in Xero, {ours} in Cin7" for name, ours, theirs in pairs if _money(theirs) != ours
    ]


def _same_contact(sale: Cin7Sale, xero: Mapping[str, Any], linked: str | None) -> bool:
    """Xero's document is on this customer's contact: linked, numbered with its id, or of its name."""
    contact = xero.get("Contact") or {}
    if linked is not None:
        return str(contact.get("ContactID") or "").lower() == linked.lower()
    number = str(contact.get("ContactNumber") or "").lower()
    if number:
        return number == (sale.customer_id or "").lower()
    return normalise_name(str(contact.get("Name") or "")) == normalise_name(sale.customer or "")


@dataclass(frozen=True)
class Context:
    """What every decision of one plan reads."""

    window: Window
    reference: OrgReference
    rules: MappingRules
    customers: Mapping[str, Cin7Customer]
    contact_links: Mapping[str, str]
    #: Documents the ledger already has in Xero, by (kind, task id).
    synced: frozenset[tuple[str, str]]
    xero_invoices: Mapping[str, dict[str, Any]]
    xero_credit_notes: Mapping[str, dict[str, Any]]


def _row(
    sale: Cin7Sale, kind: str, task_id: str, number: str, day: date | None, total: Decimal | None
) -> Callable[..., PlanRow]:
    def make(fate: Fate, reason: str = "", xero_id: str | None = None) -> PlanRow:
        return PlanRow(
            kind=kind,
            sale_id=sale.id,
            task_id=task_id,
            number=number,
            date=day,
            customer=(sale.customer or "").strip(),
            currency=sale.customer_currency or sale.base_currency,
            total=total,
            fate=fate,
            reason=reason,
            xero_id=xero_id,
        )

    return make


def decide_sale(sale: Cin7Sale, ctx: Context) -> list[Decided]:
    """The fate of every invoice and credit note of the sale dated in the window, and of what is
    applied to them (payments, refunds): they share their document's fate unless locked themselves.
    """
    decided: list[Decided] = []
    customer = ctx.customers.get((sale.customer_id or "").lower())
    for invoice in sale.invoices:
        mapper = partial(map_invoice, sale, invoice, customer=customer, rules=ctx.rules, reference=ctx.reference)
        parent = _decide_document(
            sale, "invoice", invoice, invoice.invoice_number, invoice.invoice_date, mapper, ctx.xero_invoices, ctx
        )
        if parent is not None:
            decided.append(parent)
            decided.extend(_decide_applied(sale, "payment", invoice.payments, parent.row, ctx))
    for note in sale.credit_notes:
        note_mapper = partial(map_credit_note, sale, note, customer=customer, rules=ctx.rules, reference=ctx.reference)
        parent = _decide_document(
            sale,
            "credit_note",
            note,
            note.credit_note_number,
            note.credit_note_date,
            note_mapper,
            ctx.xero_credit_notes,
            ctx,
        )
        if parent is not None:
            decided.append(parent)
            decided.append(Decided(_allocation_fate(sale, note.task_id or "", parent.row, decided, ctx)))
            decided.extend(_decide_applied(sale, "refund", note.refunds, parent.row, ctx))
    return decided


def _decide_applied(
    sale: Cin7Sale, kind: str, applied: Sequence[Cin7Payment], parent: PlanRow, ctx: Context
) -> list[Decided]:
    """Payments of an invoice, refunds of a credit note: each dated on its own, on its document's number."""
    decided = []
    for item in applied:
        paid_on = item.date_paid.date() if item.date_paid is not None else None
        make = _row(sale, kind, item.id or "", parent.number, paid_on, item.amount)
        decided.append(Decided(_applied_fate(parent, make, paid_on, ctx, (kind, item.id or ""))))
    return decided


def _decide_document(
    sale: Cin7Sale,
    kind: str,
    document: Cin7Invoice | Cin7CreditNote,
    number: str | None,
    dated: datetime | None,
    mapper: Callable[[], XeroInvoice | XeroCreditNote],
    in_xero: Mapping[str, dict[str, Any]],
    ctx: Context,
) -> Decided | None:
    """The fate of an invoice or credit note dated in the window; None for one outside it."""
    day = dated.date() if dated is not None else None
    if not document.task_id or not in_window(day, ctx.window):
        return None
    make = _row(sale, kind, document.task_id, (number or "").strip(), day, document.total)
    totals = Cin7Totals(subtotal=document.total_before_tax, tax=document.tax, total=document.total)
    key = (kind, document.task_id)
    status = document.status
    parsed = Cin7InvoiceStatus.parse(status)
    if parsed not in LIVE_CIN7:
        return Decided(make(Fate.SKIPPED, f"Cin7 status {status}"))
    if key in ctx.synced:
        return Decided(make(Fate.SYNCED, "the ledger already has it in Xero"))
    existing = in_xero.get(number_key(make(Fate.CREATE).number))
    payload: dict[str, Any] | None = None
    try:
        payload = mapper().to_json()
    except MappingError as exc:
        if existing is None:
            return Decided(make(Fate.BLOCKED, "; ".join(p.message for p in exc.problems)))
    if existing is not None:
        xero_id = str(existing.get("InvoiceID") or existing.get("CreditNoteID") or "")
        linked = ctx.contact_links.get((sale.customer_id or "").lower())
        differences = _differences(totals, existing)
        if not _same_contact(sale, existing, linked):
            name = (existing.get("Contact") or {}).get("Name")
            differences.append(f"on Xero contact {name!r}, not {(sale.customer or '').strip()!r}")
        status = str(existing.get("Status") or "AUTHORISED").upper()
        if differences or payload is None:
            reason = "; ".join(differences) or "Cin7's side does not map"
            return Decided(make(Fate.CONFLICT, reason, xero_id), None, status)
        return Decided(
            make(Fate.ADOPT, "Xero has it with the same number, contact and totals", xero_id), payload, status
        )
    if ctx.reference.locked(day):
        return Decided(make(Fate.LOCKED, f"dated on or before Xero's lock date {ctx.reference.lock_date}"))
    return Decided(make(Fate.CREATE), payload)


def _allocation_fate(sale: Cin7Sale, task_id: str, note: PlanRow, decided: list[Decided], ctx: Context) -> PlanRow:
    """A credit note's allocation to its invoice: made when both are in Xero and Cin7 leaves it owing."""
    allocation = credit_allocations(sale).get(task_id)
    amount = allocation.amount if allocation is not None else None
    make = _row(sale, "allocation", task_id, note.number, note.date, amount)
    if ("allocation", task_id) in ctx.synced:
        return make(Fate.SYNCED, "the ledger already has it in Xero")
    if allocation is None or allocation.amount <= 0:
        return make(Fate.SKIPPED, "nothing left to allocate (the invoice is paid, or the credit refunded)")
    invoice = next(
        (d.row for d in decided if d.row.kind == "invoice" and d.row.task_id == allocation.invoice.task_id), None
    )
    for parent in (note, invoice):
        if parent is not None and parent.fate not in (Fate.CREATE, Fate.ADOPT, Fate.SYNCED):
            return make(parent.fate, f"waits for {parent.kind.replace('_', ' ')} {parent.number} ({parent.fate})")
    return make(Fate.CREATE)


def _applied_fate(
    parent: PlanRow, make: Callable[..., PlanRow], day: date | None, ctx: Context, key: tuple[str, str]
) -> PlanRow:
    """A payment or refund follows its document: created with it, held with it, or locked on its own."""
    if key in ctx.synced:
        return make(Fate.SYNCED, "the ledger already has it in Xero")
    match parent.fate:
        case Fate.CREATE | Fate.ADOPT | Fate.SYNCED:
            if ctx.reference.locked(day):
                return make(Fate.LOCKED, f"paid on or before Xero's lock date {ctx.reference.lock_date}")
            return make(Fate.CREATE)
        case Fate.SKIPPED:
            return make(Fate.SKIPPED, f"its {parent.kind.replace('_', ' ')} is skipped")
        case _:
            return make(parent.fate, f"waits for {parent.kind.replace('_', ' ')} {parent.number} ({parent.fate})")


def xero_date(data: Mapping[str, Any]) -> date | None:
    """A Xero document's date."""
    return parse_xero_date(data.get("DateString") or data.get("Date"))

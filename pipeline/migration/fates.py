"""Each historical document's fate, decided from Cin7's sale, Xero's documents and the ledger. Pure.

The same decision serves the test run (the plan's rows) and the cutover (which documents it adopts
and which are conflicts), so that what the plan said is what the run does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    Cin7Purchase,
    Cin7Sale,
    Cin7Supplier,
    Cin7Totals,
    CreditAllocation,
    MappingError,
    MappingRules,
    OrgReference,
    XeroBill,
    XeroCreditNote,
    XeroInvoice,
    credit_allocations,
    map_bill,
    map_credit_note,
    map_invoice,
    map_purchase_credit_note,
    normalise_name,
    totals_in_xero,
)
from pipeline.kinds.bill import bill_task_id, supplier_payments
from pipeline.kinds.supplier_credit import credit_task_id, supplier_credit_notes
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


@dataclass(frozen=True)
class Side:
    """The parent a plan's rows belong to (a sale, or a purchase) and the kinds its documents take."""

    parent_id: str
    party_id: str | None
    party_name: str
    currency: str | None
    invoice: str
    payment: str
    credit_note: str
    refund: str
    allocation: str


def _sale_side(sale: Cin7Sale) -> Side:
    return Side(
        sale.id,
        sale.customer_id,
        (sale.customer or "").strip(),
        sale.customer_currency or sale.base_currency,
        "invoice",
        "payment",
        "credit_note",
        "refund",
        "allocation",
    )


def _purchase_side(purchase: Cin7Purchase) -> Side:
    return Side(
        purchase.id,
        purchase.supplier_id,
        (purchase.supplier or "").strip(),
        purchase.supplier_currency or purchase.base_currency,
        "bill",
        "bill_payment",
        "supplier_credit_note",
        "supplier_refund",
        "supplier_allocation",
    )


def _same_contact(side: Side, xero: Mapping[str, Any], linked: str | None) -> bool:
    """Xero's document is on this party's contact: linked, numbered with its id, or of its name."""
    contact = xero.get("Contact") or {}
    if linked is not None:
        return str(contact.get("ContactID") or "").lower() == linked.lower()
    number = str(contact.get("ContactNumber") or "").lower()
    if number:
        return number == (side.party_id or "").lower()
    return normalise_name(str(contact.get("Name") or "")) == normalise_name(side.party_name)


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
    suppliers: Mapping[str, Cin7Supplier] = field(default_factory=dict)
    #: Xero's bills and supplier credit notes by number: several suppliers may share one.
    xero_bills: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    xero_supplier_credit_notes: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)


def _row(
    side: Side, kind: str, task_id: str, number: str, day: date | None, total: Decimal | None
) -> Callable[..., PlanRow]:
    def make(fate: Fate, reason: str = "", xero_id: str | None = None) -> PlanRow:
        return PlanRow(
            kind=kind,
            sale_id=side.parent_id,
            task_id=task_id,
            number=number,
            date=day,
            customer=side.party_name,
            currency=side.currency,
            total=total,
            fate=fate,
            reason=reason,
            xero_id=xero_id,
        )

    return make


#: Finds Xero's document of this number for the side, if Xero has one that would stand in its way.
Lookup = Callable[[Side, str], dict[str, Any] | None]


def _unique(in_xero: Mapping[str, dict[str, Any]]) -> Lookup:
    """Sale documents: Xero keeps their numbers unique, so any document of the number is the one."""
    return lambda _side, number: in_xero.get(number_key(number))


def _on_party(in_xero: Mapping[str, list[dict[str, Any]]], links: Mapping[str, str]) -> Lookup:
    """Bills and supplier credit notes: only one of the number on the supplier's own contact is theirs;
    another supplier's bill of the same number is simply another bill.
    """

    def find(side: Side, number: str) -> dict[str, Any] | None:
        linked = links.get((side.party_id or "").lower())
        found = in_xero.get(number_key(number), [])
        return next((data for data in found if _same_contact(side, data, linked)), None)

    return find


def decide_sale(sale: Cin7Sale, ctx: Context) -> list[Decided]:
    """The fate of every invoice and credit note of the sale dated in the window, and of what is
    applied to them (payments, refunds): they share their document's fate unless locked themselves.
    """
    side = _sale_side(sale)
    customer = ctx.customers.get((sale.customer_id or "").lower())
    decided: list[Decided] = []
    for invoice in sale.invoices:
        mapper = partial(map_invoice, sale, invoice, customer=customer, rules=ctx.rules, reference=ctx.reference)
        found = _unique(ctx.xero_invoices)
        document = _Document(side.invoice, invoice.task_id or "", invoice, invoice.invoice_number, invoice.invoice_date)
        parent = _decide_document(side, document, mapper, found, ctx)
        if parent is not None:
            decided.append(parent)
            decided.extend(_decide_applied(side, side.payment, invoice.payments, parent.row, ctx))
    for note in sale.credit_notes:
        note_mapper = partial(map_credit_note, sale, note, customer=customer, rules=ctx.rules, reference=ctx.reference)
        document = _Document(side.credit_note, note.task_id or "", note, note.credit_note_number, note.credit_note_date)
        parent = _decide_document(side, document, note_mapper, _unique(ctx.xero_credit_notes), ctx)
        if parent is not None:
            decided.append(parent)
            allocation = credit_allocations(sale).get(note.task_id or "")
            invoice_key = (allocation.invoice.task_id or "") if allocation is not None else ""
            decided.append(Decided(_allocation_fate(side, parent.row, allocation, invoice_key, decided, ctx)))
            decided.extend(_decide_applied(side, side.refund, note.refunds, parent.row, ctx))
    return decided


def decide_purchase(purchase: Cin7Purchase, ctx: Context) -> list[Decided]:
    """`decide_sale` for a purchase: its bills, their supplier payments, its credit notes, their refunds
    and allocations. A bill is adopted only from the supplier's own contact (Xero lets bill numbers repeat).
    """
    side = _purchase_side(purchase)
    supplier = ctx.suppliers.get((purchase.supplier_id or "").lower())
    bills = _on_party(ctx.xero_bills, ctx.contact_links)
    notes = _on_party(ctx.xero_supplier_credit_notes, ctx.contact_links)
    allocations = credit_allocations(purchase)
    decided: list[Decided] = []
    for invoice in purchase.invoices:
        mapper = partial(map_bill, purchase, invoice, supplier=supplier, rules=ctx.rules, reference=ctx.reference)
        task_id = bill_task_id(purchase, invoice)
        document = _Document(side.invoice, task_id, invoice, invoice.invoice_number, invoice.invoice_date)
        parent = _decide_document(side, document, mapper, bills, ctx)
        if parent is not None:
            decided.append(parent)
            decided.extend(_decide_applied(side, side.payment, supplier_payments(invoice), parent.row, ctx))
    for note in supplier_credit_notes(purchase):
        note_mapper = partial(
            map_purchase_credit_note, purchase, note, supplier=supplier, rules=ctx.rules, reference=ctx.reference
        )
        task_id = credit_task_id(purchase, note)
        document = _Document(side.credit_note, task_id, note, note.credit_note_number, note.credit_note_date)
        parent = _decide_document(side, document, note_mapper, notes, ctx)
        if parent is not None:
            decided.append(parent)
            allocation = allocations.get(note.task_id or "")
            bill_key = bill_task_id(purchase, allocation.invoice) if allocation is not None else ""
            decided.append(Decided(_allocation_fate(side, parent.row, allocation, bill_key, decided, ctx)))
            decided.extend(_decide_applied(side, side.refund, note.refunds, parent.row, ctx))
    return decided


def _decide_applied(
    side: Side, kind: str, applied: Sequence[Cin7Payment], parent: PlanRow, ctx: Context
) -> list[Decided]:
    """Payments of an invoice, refunds of a credit note: each dated on its own, on its document's number."""
    decided = []
    for item in applied:
        task_id = item.id or ""  # a Guid: already lower case, as the ledger keys it
        paid_on = item.date_paid.date() if item.date_paid is not None else None
        make = _row(side, kind, task_id, parent.number, paid_on, item.amount)
        decided.append(Decided(_applied_fate(parent, make, paid_on, ctx, (kind, task_id))))
    return decided


@dataclass(frozen=True)
class _Document:
    """An invoice, bill or credit note with its ledger kind and key, number and date."""

    kind: str
    task_id: str
    document: Cin7Invoice | Cin7CreditNote
    number: str | None
    dated: datetime | None


def _decide_document(
    side: Side,
    given: _Document,
    mapper: Callable[[], XeroInvoice | XeroBill | XeroCreditNote],
    lookup: Lookup,
    ctx: Context,
) -> Decided | None:
    """The fate of an invoice or credit note dated in the window; None for one outside it."""
    day = given.dated.date() if given.dated is not None else None
    document = given.document
    if not given.task_id or not in_window(day, ctx.window):
        return None
    make = _row(side, given.kind, given.task_id, (given.number or "").strip(), day, document.total)
    totals = Cin7Totals(subtotal=document.total_before_tax, tax=document.tax, total=document.total)
    status = document.status
    if Cin7InvoiceStatus.parse(status) not in LIVE_CIN7:
        return Decided(make(Fate.SKIPPED, f"Cin7 status {status}"))
    if (given.kind, given.task_id) in ctx.synced:
        return Decided(make(Fate.SYNCED, "the ledger already has it in Xero"))
    existing = lookup(side, (given.number or "").strip())
    payload: dict[str, Any] | None = None
    try:
        payload = mapper().to_json()
    except MappingError as exc:
        if existing is None:
            return Decided(make(Fate.BLOCKED, "; ".join(p.message for p in exc.problems)))
    if existing is not None:
        xero_id = str(existing.get("InvoiceID") or existing.get("CreditNoteID") or "")
        linked = ctx.contact_links.get((side.party_id or "").lower())
        differences = _differences(totals, existing)
        if not _same_contact(side, existing, linked):
            name = (existing.get("Contact") or {}).get("Name")
            differences.append(f"on Xero contact {name!r}, not {side.party_name!r}")
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


def _allocation_fate(
    side: Side,
    note: PlanRow,
    allocation: CreditAllocation | None,
    document_key: str,
    decided: list[Decided],
    ctx: Context,
) -> PlanRow:
    """A credit note's allocation to its invoice (or bill, `document_key`): made when both are in Xero
    and Cin7 leaves it owing.
    """
    amount = allocation.amount if allocation is not None else None
    make = _row(side, side.allocation, note.task_id, note.number, note.date, amount)
    if (side.allocation, note.task_id) in ctx.synced:
        return make(Fate.SYNCED, "the ledger already has it in Xero")
    if allocation is None or allocation.amount <= 0:
        return make(Fate.SKIPPED, "nothing left to allocate (the invoice is paid, or the credit refunded)")
    invoice = next(
        (d.row for d in decided if d.row.kind == side.invoice and d.row.task_id.lower() == document_key.lower()), None
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

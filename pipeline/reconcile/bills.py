"""Reconciliation of supplier bills: every Cin7 purchase invoice in the window against Xero's ACCPAY bills.

Bills are compared like invoices (totals, status, date, contact, what is paid, credited and due), but
paired differently: Xero keeps bill numbers unique per nothing, so a bill is matched by the ledger's
link, else by its number on its supplier's contact, never by the number alone. Two live Xero bills
that could both be one Cin7 bill are reported as a duplicate. A Xero bill no Cin7 bill accounts for is
not reported: numbers are the suppliers', and bills typed in Xero by hand are normal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from mappings import Cin7Purchase, credit_allocations, round_half_up
from pipeline.context import TenantContext
from pipeline.errors import SyncError
from pipeline.kinds.bill import bill_task_id, supplier_payments
from pipeline.kinds.supplier_credit import credit_task_id, supplier_credit_notes
from pipeline.ledger.models import ParentKind, SaleRecord, SaleState
from pipeline.reconcile.compare import CIN7_CREDIT_NOTES_COMPARED, _compare_pair, _known, in_window, missing_in_xero
from pipeline.reconcile.gather import read_xero_credit_notes, read_xero_window
from pipeline.reconcile.rows import (
    BILL,
    CIN7_COMPARED,
    CIN7_LIVE,
    DOCUMENT_NOUNS,
    SUPPLIER_CREDIT_NOTE,
    ZERO,
    Cin7InvoiceRow,
    Finding,
    Kind,
    LedgerView,
    XeroInvoiceRow,
    cin7_row,
    normalise_number,
    xero_invoice_row,
)
from pipeline.reconcile.window import Window
from pipeline.source.cin7core.reading import list_purchase_rows, parse_purchase

# A purchase is listed by when it last changed, which is never before its invoice.
LISTING_MARGIN = timedelta(days=1)


def cin7_bill_rows(purchase: Cin7Purchase) -> list[Cin7InvoiceRow]:
    """Every invoice of a purchase (any status, any date) as rows, with what Xero must show as paid and
    credited (its supplier payments; its credit notes' allocations by the sales rule).
    """
    credited: dict[str, Decimal] = {}
    for allocation in credit_allocations(purchase).values():
        key = bill_task_id(purchase, allocation.invoice)
        credited[key] = credited.get(key, ZERO) + allocation.amount
    return [
        cin7_row(
            purchase,
            invoice,
            kind=BILL,
            number=invoice.invoice_number,
            dated=invoice.invoice_date,
            paid=sum((round_half_up(p.amount) for p in supplier_payments(invoice)), ZERO),
            credited=credited.get(bill_task_id(purchase, invoice), ZERO),
            task_id=bill_task_id(purchase, invoice),
        )
        for invoice in purchase.invoices
    ]


def cin7_supplier_credit_rows(purchase: Cin7Purchase) -> list[Cin7InvoiceRow]:
    """Every credit note of a purchase (any status, any date) as rows: the supplier's refunds as paid, its
    allocation to its bill as credited.
    """
    allocations = credit_allocations(purchase)
    rows = []
    for note in supplier_credit_notes(purchase):
        allocation = allocations.get(note.task_id or "")
        rows.append(
            cin7_row(
                purchase,
                note,
                kind=SUPPLIER_CREDIT_NOTE,
                number=note.credit_note_number,
                dated=note.credit_note_date,
                paid=sum((round_half_up(r.amount) for r in note.refunds), ZERO),
                credited=allocation.amount if allocation is not None else ZERO,
                task_id=credit_task_id(purchase, note),
            )
        )
    return rows


def read_xero_supplier_credit_notes(
    ctx: TenantContext, window: Window, *, yield_seconds: float
) -> list[XeroInvoiceRow]:
    """Every ACCPAYCREDIT credit note dated in the window, as rows."""
    return read_xero_credit_notes(ctx, window, yield_seconds=yield_seconds, document_type="ACCPAYCREDIT")


def xero_bill_row(data: dict[str, Any]) -> XeroInvoiceRow:
    """A row from Xero's ACCPAY JSON."""
    return dataclasses.replace(xero_invoice_row(data), document=BILL)


def read_xero_bills(ctx: TenantContext, window: Window, *, yield_seconds: float) -> list[XeroInvoiceRow]:
    """Every ACCPAY bill dated in the window, a page of 1000 at a time."""
    return read_xero_window(ctx, window, yield_seconds=yield_seconds, document_type="ACCPAY", row=xero_bill_row)


@dataclass
class PurchasesRead:
    """What one pass over Cin7's purchases found."""

    rows: list[Cin7InvoiceRow] = field(default_factory=list)
    credit_rows: list[Cin7InvoiceRow] = field(default_factory=list)
    purchases_read: set[str] = field(default_factory=set)
    listed: int = 0
    fetched: int = 0
    from_snapshot: int = 0
    errors: list[str] = field(default_factory=list)


def read_cin7_purchases(ctx: TenantContext, window: Window) -> PurchasesRead:
    """Every purchase changed since the window began, its detail from the ledger when current, else Cin7."""
    result = PurchasesRead()
    since = datetime.combine(window.start, datetime.min.time(), tzinfo=UTC) - LISTING_MARGIN
    for page in ctx.cin7.iter_purchase_pages(since):
        listed = {row.id: row for row in list_purchase_rows(page, result.errors)}
        result.listed += len(listed)
        with ctx.sessions() as session:
            records = {
                r.sale_id: r
                for r in session.scalars(
                    select(SaleRecord).where(
                        SaleRecord.tenant_id == ctx.tenant_pk,
                        SaleRecord.kind == ParentKind.PURCHASE.value,
                        SaleRecord.sale_id.in_(list(listed)),
                    )
                )
            }
        for purchase_id, row in listed.items():
            record = records.get(purchase_id)
            detail: dict[str, Any]
            # The ledger's snapshot is current when the sync fetched it after Cin7's last change.
            current = (
                record is not None
                and record.snapshot is not None
                and record.state == SaleState.FETCHED
                and row.last_updated_date is not None
                and record.listed_updated == row.last_updated_date
            )
            if record is not None and record.snapshot is not None and current:
                detail, result.from_snapshot = dict(record.snapshot), result.from_snapshot + 1
            else:
                try:
                    detail = ctx.cin7.get_purchase(purchase_id, bulk=True)
                except SyncError as error:
                    result.errors.append(f"Cin7 purchase {purchase_id} could not be read: {error.message}")
                    continue
                result.fetched += 1
            purchase = parse_purchase(detail, row, result.errors)
            if purchase is None:
                continue
            result.purchases_read.add(purchase.id)
            result.rows.extend(cin7_bill_rows(purchase))
            result.credit_rows.extend(cin7_supplier_credit_rows(purchase))
    return result


def compare_bills(
    cin7: Sequence[Cin7InvoiceRow], xero: Sequence[XeroInvoiceRow], ledger: LedgerView, window: Window
) -> list[Finding]:
    """Every discrepancy between Cin7's bills (or, given credit note rows, supplier credit notes) dated in
    the window and Xero's ACCPAY bills (ACCPAYCREDIT credit notes).
    """
    findings: list[Finding] = []
    by_id = {row.invoice_id: row for row in xero}
    for document in cin7:
        statuses = CIN7_CREDIT_NOTES_COMPARED if document.document == SUPPLIER_CREDIT_NOTE else CIN7_COMPARED
        if document.status in statuses and in_window(document.date, window.start, window.end):
            findings.extend(_compare_one(document, xero, by_id, ledger))
    return findings


def _compare_one(
    document: Cin7InvoiceRow, xero: Sequence[XeroInvoiceRow], by_id: dict[str, XeroInvoiceRow], ledger: LedgerView
) -> list[Finding]:
    noun = DOCUMENT_NOUNS[document.document]
    doc = ledger.documents.get((document.sale_id, document.task_id))
    contact = ledger.contact_links.get((document.customer_id or "").lower())
    on_contact = [
        row
        for row in xero
        if row.live
        and contact is not None
        and row.contact_id == contact
        and normalise_number(row.number) == normalise_number(document.number)
    ]
    linked = by_id.get(doc.xero_id) if doc is not None and doc.xero_id else None
    candidates = {row.invoice_id: row for row in [*on_contact, *([linked] if linked else [])]}
    known = _known(doc, document.sale_id, ledger)
    findings: list[Finding] = []
    if len(candidates) > 1:
        findings.append(
            Finding(
                Kind.DUPLICATE,
                f"{len(candidates)} Xero {noun}s on supplier {document.customer}'s contact carry Cin7 {noun} "
                f"{document.number}",
                cin7=document,
                xero=tuple(sorted(candidates.values(), key=lambda r: r.invoice_id)),
                doc_id=doc.doc_id if doc else None,
            )
        )
    primary = linked or next(iter(sorted(candidates.values(), key=lambda r: r.invoice_id)), None)
    if primary is not None:
        findings.extend(_compare_pair(document, primary, doc, known, ledger, noun))
    elif document.status in CIN7_LIVE:
        findings.append(missing_in_xero(document, doc, known, noun, f" of {document.customer}"))
    return findings

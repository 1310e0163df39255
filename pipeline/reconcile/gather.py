"""Gathering both sides: Xero's invoices and credit notes in pages (yielding to sync writes), Cin7's sales,
the ledger's view.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from pipeline.context import TenantContext
from pipeline.errors import SyncError
from pipeline.ledger.models import (
    ContactLink,
    DeadLetter,
    SaleRecord,
    SaleState,
    SyncDocument,
    Tenant,
    utcnow,
)
from pipeline.reconcile.rows import (
    CREDIT_NOTE,
    INVOICE,
    SUPPLIER_CREDIT_NOTE,
    Cin7InvoiceRow,
    LedgerDoc,
    LedgerView,
    XeroInvoiceRow,
    cin7_credit_note_rows,
    cin7_invoice_rows,
    normalise_number,
    xero_credit_note_row,
    xero_invoice_row,
)
from pipeline.reconcile.window import Window
from pipeline.source.cin7core.reading import list_rows, parse_sale
from pipeline.writer.claim import ready_count

XERO_PAGE_SIZE = 1000
# GET /CreditNotes pages are Xero's fixed 100.
XERO_CREDIT_NOTE_PAGE_SIZE = 100
# An invoice can be dated after the sale was last touched (a forward-dated invoice): the saleList pass
# starts this much before the window so that such sales are still read.
FORWARD_DATED_MARGIN = timedelta(days=31)


# Ledger IN (...) lists are chunked below PostgreSQL's comfortable parameter counts.
_IN_CHUNK = 500


def _chunks(values: Sequence[str], size: int = _IN_CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _writer_busy(ctx: TenantContext) -> bool:

    if ready_count(ctx) > 0:
        return True
    with ctx.sessions() as session:
        tenant = session.get(Tenant, ctx.tenant_pk)
        until = tenant.write_lease_until if tenant is not None else None
    return until is not None and until > utcnow()


def yield_to_writers(ctx: TenantContext, max_wait: float, *, interval: float = 0.5) -> float:
    """Wait (at most `max_wait` seconds) while the sync has writes queued or a writer holds the lease.

    Reconciliation reads share Xero's per-tenant minute with the writer; a report can be late, an
    invoice should not be. Returns the seconds waited.
    """
    started = time.monotonic()
    while time.monotonic() - started < max_wait and _writer_busy(ctx):
        time.sleep(interval)
    return time.monotonic() - started


def iter_xero_invoices(
    ctx: TenantContext,
    window: Window,
    document_type: str = "ACCREC",
    *,
    yield_seconds: float = 0.0,
    on_page: Callable[[], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Xero's invoices of `document_type` (ACCREC, or ACCPAY bills) dated in the window, a page of 1000
    at a time, each page after yielding to the writers for up to `yield_seconds`.
    """
    where = window.xero_where(document_type)
    page = 1
    while True:
        yield_to_writers(ctx, yield_seconds)
        batch = ctx.xero.get_invoices(where=where, page=page)
        if on_page is not None:
            on_page()
        yield from (data for data in batch if str(data.get("Type", document_type)).upper() == document_type)
        if len(batch) < XERO_PAGE_SIZE:
            return
        page += 1


def iter_xero_credit_notes(
    ctx: TenantContext,
    window: Window,
    document_type: str = "ACCRECCREDIT",
    *,
    yield_seconds: float = 0.0,
    on_page: Callable[[], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Xero's credit notes of `document_type` (ACCRECCREDIT, or ACCPAYCREDIT: a supplier's may carry the
    number of one of ours) dated in the window, a page of 100 at a time.
    """
    where = window.xero_where(document_type)
    page = 1
    while True:
        yield_to_writers(ctx, yield_seconds)
        batch = ctx.xero.get_credit_notes_page(where, page)
        if on_page is not None:
            on_page()
        yield from (data for data in batch if str(data.get("Type", document_type)).upper() == document_type)
        if len(batch) < XERO_CREDIT_NOTE_PAGE_SIZE:
            return
        page += 1


def _our_credit_note(data: dict[str, Any]) -> bool:
    """An ACCRECCREDIT: a supplier's ACCPAYCREDIT may carry the same number and is not ours."""
    return str(data.get("Type", "ACCRECCREDIT")).upper() == "ACCRECCREDIT"


def read_xero_window(
    ctx: TenantContext,
    window: Window,
    *,
    yield_seconds: float,
    document_type: str = "ACCREC",
    row: Callable[[dict[str, Any]], XeroInvoiceRow] = xero_invoice_row,
) -> list[XeroInvoiceRow]:
    """Every ACCREC invoice (or, by `document_type`, ACCPAY bill) dated in the window, as rows."""
    return [row(data) for data in iter_xero_invoices(ctx, window, document_type, yield_seconds=yield_seconds)]


def read_xero_credit_notes(
    ctx: TenantContext, window: Window, *, yield_seconds: float, document_type: str = "ACCRECCREDIT"
) -> list[XeroInvoiceRow]:
    """Every ACCRECCREDIT (or, by `document_type`, ACCPAYCREDIT) credit note dated in the window, as rows."""
    document = SUPPLIER_CREDIT_NOTE if document_type == "ACCPAYCREDIT" else CREDIT_NOTE
    return [
        xero_credit_note_row(data, document=document)
        for data in iter_xero_credit_notes(ctx, window, document_type, yield_seconds=yield_seconds)
    ]


@dataclass
class Cin7Read:
    """What one pass over Cin7 produced (invoice rows and credit note rows)."""

    rows: list[Cin7InvoiceRow] = field(default_factory=list)
    credit_rows: list[Cin7InvoiceRow] = field(default_factory=list)
    sales_read: set[str] = field(default_factory=set)
    listed: int = 0
    fetched: int = 0
    from_snapshot: int = 0
    errors: list[str] = field(default_factory=list)


def read_cin7_window(ctx: TenantContext, window: Window) -> Cin7Read:
    """Every invoice of every sale updated since shortly before the window.

    One saleList pass; a sale's detail comes from the ledger's snapshot when the listed `Updated` is
    the one the ledger last fetched, and from `sale?ID=` otherwise. Nothing is written to the ledger:
    the sync's own poll decides what to re-fetch.
    """
    result = Cin7Read()
    since = datetime.combine(window.start, datetime.min.time(), tzinfo=UTC) - FORWARD_DATED_MARGIN
    for page in ctx.cin7.iter_sale_pages(since):
        listed = list_rows(page, result.errors)
        result.listed += len(listed)
        with ctx.sessions() as session:
            records = {
                record.sale_id: record
                for record in session.scalars(
                    select(SaleRecord).where(
                        SaleRecord.tenant_id == ctx.tenant_pk, SaleRecord.sale_id.in_(list(listed))
                    )
                )
            }
        for sale_id, row in listed.items():
            record = records.get(sale_id)
            detail: dict[str, Any] | None = None
            if (
                record is not None
                and record.snapshot is not None
                and record.state == SaleState.FETCHED
                and row.updated is not None
                and record.listed_updated == row.updated
            ):
                detail = dict(record.snapshot)
                result.from_snapshot += 1
            else:
                try:
                    detail = ctx.cin7.get_sale(sale_id, bulk=True)
                except SyncError as error:
                    result.errors.append(f"Cin7 sale {sale_id} ({row.order_number}) could not be read: {error.message}")
                    continue
                result.fetched += 1
            sale = parse_sale(detail, row, result.errors)
            if sale is None:
                continue
            result.sales_read.add(sale.id)
            result.rows.extend(cin7_invoice_rows(sale))
            result.credit_rows.extend(cin7_credit_note_rows(sale))
    return result


def load_ledger_view(
    ctx: TenantContext,
    sale_ids: Collection[str],
    xero_ids: Collection[str],
    numbers: Collection[str],
    customer_ids: Collection[str] = (),
    *,
    kind: str = INVOICE,
) -> LedgerView:
    """Ledger documents of one kind ("invoice" or "credit_note") of these sales, or linked to these Xero
    documents, or with these numbers; open dead letters; and the contact links of these customers (and
    of the documents' customers). Credit note rows have the invoice's key shape (sale id, TaskID).
    """
    view = LedgerView()
    docs: dict[int, SyncDocument] = {}
    with ctx.sessions() as session:
        base = select(SyncDocument).where(SyncDocument.tenant_id == ctx.tenant_pk, SyncDocument.kind == kind)
        for chunk in _chunks(sorted(sale_ids)):
            docs.update({d.id: d for d in session.scalars(base.where(SyncDocument.sale_id.in_(chunk)))})
        for chunk in _chunks(sorted(xero_ids)):
            docs.update({d.id: d for d in session.scalars(base.where(SyncDocument.xero_id.in_(chunk)))})
        for chunk in _chunks(sorted(numbers)):
            docs.update({d.id: d for d in session.scalars(base.where(SyncDocument.document_number.in_(chunk)))})
        letters: dict[int, int] = {}
        dead_sales: dict[str, int] = {}
        for letter in session.scalars(
            select(DeadLetter).where(DeadLetter.tenant_id == ctx.tenant_pk, DeadLetter.resolved_at.is_(None))
        ):
            if letter.document_id is not None:
                letters[letter.document_id] = letter.id
            elif letter.sale_id:
                dead_sales[letter.sale_id.lower()] = letter.id
        customers = {c.lower() for c in customer_ids} | {d.customer_id.lower() for d in docs.values() if d.customer_id}
        for chunk in _chunks(sorted(customers)):
            for link in session.scalars(
                select(ContactLink).where(
                    ContactLink.tenant_id == ctx.tenant_pk, ContactLink.cin7_customer_id.in_(chunk)
                )
            ):
                view.contact_links[link.cin7_customer_id.lower()] = link.xero_contact_id.lower()
    for doc in docs.values():
        view.documents[(doc.sale_id.lower(), doc.task_id.lower())] = LedgerDoc(
            doc_id=doc.id,
            sale_id=doc.sale_id.lower(),
            task_id=doc.task_id.lower(),
            number=doc.document_number,
            state=str(doc.state),
            xero_id=doc.xero_id.lower() if doc.xero_id else None,
            dead_letter_id=letters.get(doc.id),
        )
    view.dead_sales = dead_sales
    return view


def lookup_outside(
    ctx: TenantContext,
    cin7: Sequence[Cin7InvoiceRow],
    xero: Sequence[XeroInvoiceRow],
    ledger: LedgerView,
    *,
    yield_seconds: float,
    document: str = INVOICE,
) -> list[XeroInvoiceRow]:
    """Xero invoices (or credit notes) outside the window for Cin7 ones the window's read did not find."""
    seen_numbers = {normalise_number(row.number) for row in xero if row.number}
    seen_ids = {row.invoice_id for row in xero}
    numbers: list[str] = []
    ids: list[str] = []
    for invoice in cin7:
        doc = ledger.documents.get((invoice.sale_id, invoice.task_id))
        if doc is not None and doc.xero_id and doc.xero_id not in seen_ids:
            ids.append(doc.xero_id)
        if invoice.number and normalise_number(invoice.number) not in seen_numbers:
            numbers.append(invoice.number)
    found: dict[str, XeroInvoiceRow] = {}
    for values, key in ((sorted(set(numbers)), "numbers"), (sorted(set(ids)), "ids")):
        for chunk in _chunks(values, 40):
            yield_to_writers(ctx, yield_seconds)
            if document == CREDIT_NOTE:
                notes = (
                    ctx.xero.get_credit_notes(numbers=chunk)
                    if key == "numbers"
                    else ctx.xero.get_credit_notes(ids=chunk)
                )
                rows = [xero_credit_note_row(data) for data in notes if _our_credit_note(data)]
            else:
                invoices = (
                    ctx.xero.get_invoices(numbers=chunk) if key == "numbers" else ctx.xero.get_invoices(ids=chunk)
                )
                rows = [
                    xero_invoice_row(data) for data in invoices if str(data.get("Type", "ACCREC")).upper() == "ACCREC"
                ]
            for row in rows:
                found[row.invoice_id] = row
    return [row for row in found.values() if row.invoice_id not in seen_ids]

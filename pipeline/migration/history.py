"""Reading a window of history from both sides: Cin7's invoiced sales (details kept), Xero's documents.

Cin7 Core has no bulk detail call, so each invoiced sale costs one `sale?ID=` at Cin7's limit. Only
sales whose saleList row shows an invoice dated in the window (or credit) are read, and each detail is
kept on the sale's ledger row: a second plan, or the cutover, reads it again only if the sale changed.
No document rows are created here, so the live sync never sees a planned sale as work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mappings import Cin7Sale, Cin7SaleListRow
from pipeline.context import TenantContext
from pipeline.errors import SyncError
from pipeline.ledger.models import SaleRecord, SaleState, utcnow
from pipeline.reconcile.window import Window
from pipeline.source.cin7core.client import Cin7Client
from pipeline.source.cin7core.reading import list_rows, parse_sale

log = logging.getLogger(__name__)

# A sale invoiced in the window was changed at or after its invoice was raised; an invoice dated ahead
# of the day it was raised (Cin7 allows it) is caught by reading this much earlier.
LIST_MARGIN = timedelta(days=31)
# saleList's CombinedInvoiceStatus of a sale that has nothing for Xero.
NOT_INVOICED = frozenset({"", "NOT INVOICED", "NOT AVAILABLE", "DRAFT", "VOIDED"})
XERO_PAGE = 100


@dataclass
class CinRead:
    """What one pass over Cin7's history counted (the sales themselves are streamed, not held)."""

    sales: int = 0
    list_calls: int = 0
    detail_calls: int = 0
    from_ledger: int = 0
    listed: int = 0
    skipped_without_invoice: int = 0
    #: Rows with an invoice dated in the window that is a draft or void: in the plan, never read.
    skipped_rows: list[Cin7SaleListRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _invoiced_in(row: Cin7SaleListRow, window: Window) -> bool:
    """The row shows an invoice (or credit) dated in the window: worth a detail call."""
    status = str(row.combined_invoice_status or "").upper()
    day = row.invoice_date.date() if row.invoice_date is not None else None
    return status not in NOT_INVOICED and day is not None and window.start <= day < window.end


def iter_cin7_history(ctx: TenantContext, window: Window, read: CinRead) -> Iterator[tuple[Cin7Sale, dict[str, Any]]]:
    """Every sale invoiced in the window with its detail (from the ledger when unchanged, else from
    Cin7), one page at a time: memory stays flat however long the history; `read` counts as it goes.
    """
    since = datetime.combine(window.start, datetime.min.time(), tzinfo=UTC) - LIST_MARGIN
    for page in _pages(ctx, since, read):
        wanted: dict[str, Cin7SaleListRow] = {}
        for row in list_rows(page, read.errors).values():
            read.listed += 1
            if _invoiced_in(row, window):
                wanted[row.sale_id] = row
            else:
                read.skipped_without_invoice += 1
                day = row.invoice_date.date() if row.invoice_date is not None else None
                if row.invoice_number and day is not None and window.start <= day < window.end:
                    read.skipped_rows.append(row)
        with ctx.sessions() as session:
            kept = _kept_details(session, ctx.tenant_pk, wanted)
        for sale_id, row in wanted.items():
            detail = kept.get(sale_id)
            if detail is None:
                detail = _fetch(ctx, sale_id, row, read)
                if detail is None:
                    continue
            else:
                read.from_ledger += 1
            sale = parse_sale(detail, row, read.errors)
            if sale is None:
                continue
            read.sales += 1
            yield sale, detail


def _pages(ctx: TenantContext, since: datetime, read: CinRead) -> Iterator[list[dict[str, Any]]]:
    for page in ctx.cin7.iter_sale_pages(since):
        read.list_calls += 1
        yield page


def _kept_details(session: Session, tenant_pk: int, rows: dict[str, Cin7SaleListRow]) -> dict[str, dict[str, Any]]:
    """Details the ledger holds for these sales as saleList lists them now (unchanged since read)."""
    if not rows:
        return {}
    kept: dict[str, dict[str, Any]] = {}
    for record in session.scalars(
        select(SaleRecord).where(SaleRecord.tenant_id == tenant_pk, SaleRecord.sale_id.in_(list(rows)))
    ):
        row = rows[record.sale_id]
        fresh = record.listed_updated is not None and row.updated is not None and record.listed_updated >= row.updated
        if record.snapshot is not None and fresh:
            kept[record.sale_id] = dict(record.snapshot)
    return kept


def _fetch(ctx: TenantContext, sale_id: str, row: Cin7SaleListRow, read: CinRead) -> dict[str, Any] | None:
    """One sale's detail from Cin7, kept on its ledger row (without making it work for the live sync)."""
    try:
        detail = ctx.cin7.get_sale(sale_id)
    except SyncError as error:
        read.errors.append(f"Cin7 sale {sale_id} ({row.order_number}) could not be read: {error.message}")
        return None
    read.detail_calls += 1
    now = utcnow()
    with ctx.sessions() as session, session.begin():
        record = session.scalar(
            select(SaleRecord).where(SaleRecord.tenant_id == ctx.tenant_pk, SaleRecord.sale_id == sale_id)
        )
        if record is None:
            record = SaleRecord(
                tenant_id=ctx.tenant_pk,
                sale_id=sale_id,
                order_number=row.order_number,
                source=Cin7Client.name,
                state=SaleState.FETCHED.value,
                discovered_at=now,
            )
            session.add(record)
        record.snapshot = detail
        record.listed_updated = row.updated
        record.fetched_at = now
    return detail


@dataclass
class XeroRead:
    """Xero's ACCREC invoices and ACCRECCREDIT credit notes dated in the window, by number."""

    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    credit_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: int = 0


def number_key(number: str | None) -> str:
    """Numbers compare as Xero's uniqueness check does: trimmed, case-insensitive."""
    return (number or "").strip().casefold()


# What a fate is decided on; a Xero organisation may hold many thousands of documents in a window.
_KEPT = ("InvoiceID", "CreditNoteID", "Status", "SubTotal", "TotalTax", "Total", "Type")


def slim(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of a Xero document that the fate reads (its contact's id, number and name)."""
    contact = data.get("Contact") or {}
    kept = {key: data[key] for key in _KEPT if key in data}
    kept["Contact"] = {key: contact[key] for key in ("ContactID", "ContactNumber", "Name") if key in contact}
    return kept


def read_xero_history(ctx: TenantContext, window: Window) -> XeroRead:
    """Every invoice and credit note Xero has dated in the window (voided and deleted ones left out)."""
    read = XeroRead()
    page = 1
    while True:
        batch = ctx.xero.get_invoices(where=window.xero_where("ACCREC"), page=page)
        read.calls += 1
        for data in batch:
            if str(data.get("Status") or "").upper() not in ("VOIDED", "DELETED"):
                read.invoices.setdefault(number_key(data.get("InvoiceNumber")), slim(data))
        if len(batch) < 1000:
            break
        page += 1
    page = 1
    while True:
        notes = ctx.xero.get_credit_notes_page(window.xero_where("ACCRECCREDIT"), page)
        read.calls += 1
        for data in notes:
            if str(data.get("Status") or "").upper() not in ("VOIDED", "DELETED"):
                read.credit_notes.setdefault(number_key(data.get("CreditNoteNumber")), slim(data))
        if len(notes) < XERO_PAGE:
            break
        page += 1
    return read


def in_window(day: date | None, window: Window) -> bool:
    """A document date inside the window."""
    return day is not None and window.start <= day < window.end

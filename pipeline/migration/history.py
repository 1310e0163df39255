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

from mappings import Cin7Purchase, Cin7PurchaseListRow, Cin7Sale, Cin7SaleListRow
from pipeline.context import TenantContext
from pipeline.discovery.purchases import unstorable_fields
from pipeline.errors import SyncError
from pipeline.ledger.models import ParentKind, SaleRecord, SaleState, utcnow
from pipeline.reconcile.gather import iter_xero_credit_notes, iter_xero_invoices
from pipeline.reconcile.window import Window
from pipeline.source.cin7core.client import Cin7Client
from pipeline.source.cin7core.reading import list_purchase_rows, list_rows, parse_purchase, parse_sale

log = logging.getLogger(__name__)

# A sale invoiced in the window was changed at or after its invoice was raised; an invoice dated ahead
# of the day it was raised (Cin7 allows it) is caught by reading this much earlier.
LIST_MARGIN = timedelta(days=31)
# saleList's CombinedInvoiceStatus of a sale that has nothing for Xero.
NOT_INVOICED = frozenset({"", "NOT INVOICED", "NOT AVAILABLE", "DRAFT", "VOIDED"})
# purchaseList's Type of a purchase that may hold several bills, the later ones dated after the first.
ADVANCED_PURCHASE = "ADVANCED PURCHASE"


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
    #: The same for purchases: a bill dated in the window, nothing of the purchase for Xero.
    skipped_purchases: list[Cin7PurchaseListRow] = field(default_factory=list)
    purchases: int = 0
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
            kept = _kept_details(session, ctx.tenant_pk, ParentKind.SALE, {k: r.updated for k, r in wanted.items()})
        for sale_id, row in wanted.items():
            detail = kept.get(sale_id)
            if detail is None:
                detail = _fetch_sale(ctx, sale_id, row, read)
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


def _kept_details(
    session: Session, tenant_pk: int, kind: ParentKind, listed: dict[str, datetime | None]
) -> dict[str, dict[str, Any]]:
    """Details the ledger holds for these parents as the listing shows them now (unchanged since read)."""
    if not listed:
        return {}
    kept: dict[str, dict[str, Any]] = {}
    for record in session.scalars(
        select(SaleRecord).where(
            SaleRecord.tenant_id == tenant_pk, SaleRecord.kind == kind.value, SaleRecord.sale_id.in_(list(listed))
        )
    ):
        updated = listed[record.sale_id]
        fresh = record.listed_updated is not None and updated is not None and record.listed_updated >= updated
        if record.snapshot is not None and fresh:
            kept[record.sale_id] = dict(record.snapshot)
    return kept


def _fetch_sale(ctx: TenantContext, sale_id: str, row: Cin7SaleListRow, read: CinRead) -> dict[str, Any] | None:
    """One sale's detail from Cin7, kept on its ledger row (without making it work for the live sync)."""
    try:
        detail = ctx.cin7.get_sale(sale_id, bulk=True)
    except SyncError as error:
        read.errors.append(f"Cin7 sale {sale_id} ({row.order_number}) could not be read: {error.message}")
        return None
    read.detail_calls += 1
    _keep_detail(ctx, ParentKind.SALE, sale_id, row.order_number, row.updated, detail)
    return detail


def _keep_detail(
    ctx: TenantContext,
    kind: ParentKind,
    parent_id: str,
    order_number: str | None,
    listed_updated: datetime | None,
    detail: dict[str, Any],
) -> None:
    """Keep a parent's detail on its ledger row, made if new (no document rows: no work for the live sync)."""
    now = utcnow()
    with ctx.sessions() as session, session.begin():
        record = session.scalar(
            select(SaleRecord).where(SaleRecord.tenant_id == ctx.tenant_pk, SaleRecord.sale_id == parent_id)
        )
        if record is None:
            record = SaleRecord(
                tenant_id=ctx.tenant_pk,
                sale_id=parent_id,
                kind=kind.value,
                order_number=order_number,
                source=Cin7Client.name,
                state=SaleState.FETCHED.value,
                discovered_at=now,
            )
            session.add(record)
        record.snapshot = detail
        record.listed_updated = listed_updated
        record.fetched_at = now


def _purchase_worth_reading(row: Cin7PurchaseListRow, window: Window) -> bool:
    """The listing shows a live bill that may be dated in the window: worth a detail call.

    The listing's invoice fields describe the first bill only, so an advanced purchase whose first bill
    is dated before the window ends is read (its later bills may fall in the window).
    """
    status = str(row.combined_invoice_status or "").upper()
    if str(row.status or "").upper() == "VOIDED" or status.startswith("NOT ") or status in NOT_INVOICED:
        return False
    day = row.invoice_date.date() if row.invoice_date is not None else None
    if str(row.type or "").upper() == ADVANCED_PURCHASE:
        return day is None or day < window.end
    return day is not None and window.start <= day < window.end


def iter_cin7_purchase_history(
    ctx: TenantContext, window: Window, read: CinRead
) -> Iterator[tuple[Cin7Purchase, dict[str, Any]]]:
    """Every purchase with a live bill that may be dated in the window, with its detail (from the ledger
    when unchanged, else `advanced-purchase?ID=`), a page at a time, as `iter_cin7_history` reads sales.
    """
    since = datetime.combine(window.start, datetime.min.time(), tzinfo=UTC) - LIST_MARGIN
    for page in ctx.cin7.iter_purchase_pages(since):
        read.list_calls += 1
        wanted: dict[str, Cin7PurchaseListRow] = {}
        for row in list_purchase_rows(page, read.errors):
            read.listed += 1
            if _purchase_worth_reading(row, window):
                wanted[row.id] = row
                continue
            read.skipped_without_invoice += 1
            day = row.invoice_date.date() if row.invoice_date is not None else None
            if (row.invoice_number or "").strip() and in_window(day, window):
                read.skipped_purchases.append(row)
        with ctx.sessions() as session:
            kept = _kept_details(
                session, ctx.tenant_pk, ParentKind.PURCHASE, {k: r.last_updated_date for k, r in wanted.items()}
            )
        for purchase_id, row in wanted.items():
            detail = kept.get(purchase_id)
            if detail is None:
                detail = _fetch_purchase(ctx, row, read)
                if detail is None:
                    continue
            else:
                read.from_ledger += 1
            purchase = parse_purchase(detail, row, read.errors)
            if purchase is None:
                continue
            refused = unstorable_fields(purchase)
            if refused:
                read.errors.append(f"Cin7 {purchase.label} cannot be recorded: {'; '.join(refused)}")
                continue
            read.purchases += 1
            yield purchase, detail


def _fetch_purchase(ctx: TenantContext, row: Cin7PurchaseListRow, read: CinRead) -> dict[str, Any] | None:
    try:
        detail = ctx.cin7.get_purchase(row.id, bulk=True)
    except SyncError as error:
        read.errors.append(f"Cin7 purchase {row.id} ({row.order_number}) could not be read: {error.message}")
        return None
    read.detail_calls += 1
    _keep_detail(ctx, ParentKind.PURCHASE, row.id, row.order_number, row.last_updated_date, detail)
    return detail


@dataclass
class XeroRead:
    """Xero's ACCREC invoices and ACCRECCREDIT credit notes dated in the window, by number."""

    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    credit_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ACCPAY bills and ACCPAYCREDIT notes: Xero lets two suppliers' documents share a number.
    bills: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    supplier_credit_notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
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


def read_xero_history(ctx: TenantContext, window: Window, *, purchases: bool = False) -> XeroRead:
    """Every invoice and credit note Xero has dated in the window (voided and deleted ones left out);
    with `purchases`, its bills and supplier credit notes too.
    """
    read = XeroRead()

    def counted() -> None:
        read.calls += 1

    for data in _live(iter_xero_invoices(ctx, window, "ACCREC", on_page=counted)):
        read.invoices.setdefault(number_key(data.get("InvoiceNumber")), slim(data))
    for data in _live(iter_xero_credit_notes(ctx, window, "ACCRECCREDIT", on_page=counted)):
        read.credit_notes.setdefault(number_key(data.get("CreditNoteNumber")), slim(data))
    if purchases:
        for data in _live(iter_xero_invoices(ctx, window, "ACCPAY", on_page=counted)):
            read.bills.setdefault(number_key(data.get("InvoiceNumber")), []).append(slim(data))
        for data in _live(iter_xero_credit_notes(ctx, window, "ACCPAYCREDIT", on_page=counted)):
            read.supplier_credit_notes.setdefault(number_key(data.get("CreditNoteNumber")), []).append(slim(data))
    return read


def _live(documents: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (d for d in documents if str(d.get("Status") or "").upper() not in ("VOIDED", "DELETED"))


def in_window(day: date | None, window: Window) -> bool:
    """A document date inside the window."""
    return day is not None and window.start <= day < window.end

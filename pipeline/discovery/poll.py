"""Discovery: poll Cin7 for changed sales and customers, and record them in the ledger before any fetch.

The ledger is written and committed before anything is enqueued; a message lost after the commit is
found again by the sweep (pipeline.recovery.sweep), never by trusting the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mappings import (
    Cin7CustomerChange,
    Cin7PurchaseListRow,
    Cin7SaleChange,
    Cin7SupplierChange,
    abn_key,
    parse_cin7_datetime,
)
from pipeline import app
from pipeline.app import TaskName
from pipeline.context import TenantContext, shared_redis
from pipeline.discovery.rows import RejectedRow, parse_rows
from pipeline.errors import ErrorClass, SyncError
from pipeline.ledger.models import (
    CustomerRecord,
    ParentKind,
    PartyKind,
    PollCursor,
    SaleRecord,
    SaleState,
    utcnow,
)
from pipeline.ledger.ops import insert_ignore
from pipeline.operations.alerts import note_problem
from pipeline.policy import Next, decide_for
from pipeline.recovery.deadletters import record_row_dead_letter, resolve_row_dead_letters

log = logging.getLogger(__name__)

SALES_STREAM = "sales"
CUSTOMERS_STREAM = "customers"
PURCHASES_STREAM = "purchases"
SUPPLIERS_STREAM = "suppliers"
# Ledger columns that list rows fill: longer text would fail the insert, for the whole page.
SALE_TEXT_LIMITS = {"SaleID": 64, "OrderNumber": 64}
PURCHASE_TEXT_LIMITS = {"ID": 64, "OrderNumber": 64}
CUSTOMER_TEXT_LIMITS = {"ID": 64}
# Clocks differ a little; a row stamped this far past ours is in the future.
FUTURE_SKEW = timedelta(minutes=5)


def _cursor(session: Session, tenant_pk: int, stream: str) -> PollCursor:
    insert_ignore(
        session,
        PollCursor,
        [{"tenant_id": tenant_pk, "stream": stream, "updated_at": utcnow()}],
        ["tenant_id", "stream"],
    )
    cursor = session.scalar(
        select(PollCursor).where(PollCursor.tenant_id == tenant_pk, PollCursor.stream == stream).with_for_update()
    )
    assert cursor is not None
    return cursor


@dataclass
class PollResult:
    """What one poll saw and did."""

    listed: int = 0
    changed_sale_ids: list[str] = field(default_factory=list)
    customers: int = 0
    watermark: datetime | None = None
    #: Rows that could not be read, each now a dead letter.
    rejected: int = 0


def poll_customers(ctx: TenantContext) -> int:
    """Refresh customer snapshots changed since the last read, a page of up to 1000 at a time.

    Each row is read on its own: one that has no ID or an unreadable LastModifiedOn becomes a dead
    letter and the others are stored, so one bad customer never stops sales from being polled.
    """
    return _poll_parties(ctx, PartyKind.CUSTOMER, CUSTOMERS_STREAM, ctx.cin7.iter_customer_pages, Cin7CustomerChange)


def poll_suppliers(ctx: TenantContext) -> int:
    """Refresh supplier snapshots changed since the last read, as customers are."""
    return _poll_parties(ctx, PartyKind.SUPPLIER, SUPPLIERS_STREAM, ctx.cin7.iter_supplier_pages, Cin7SupplierChange)


def _poll_parties(
    ctx: TenantContext,
    kind: PartyKind,
    stream: str,
    pages: Callable[[datetime | None], Iterable[list[dict[str, Any]]]],
    model: type[Cin7CustomerChange] | type[Cin7SupplierChange],
) -> int:
    with ctx.sessions() as session, session.begin():
        cursor = _cursor(session, ctx.tenant_pk, stream)
        since = (
            cursor.watermark - timedelta(seconds=ctx.settings.cin7_poll_overlap_seconds) if cursor.watermark else None
        )
    seen = 0
    newest = since
    for page in pages(since):
        changes, rejected = parse_rows(
            page, model, id_field="ID", number_field="Name", text_limits=CUSTOMER_TEXT_LIMITS
        )
        readable = {change.id for change in changes}
        good = [row for row in page if isinstance(row, dict) and str(row.get("ID") or "").lower() in readable]
        with ctx.sessions() as session, session.begin():
            store_customers(session, ctx.tenant_pk, good, kind=kind)
            resolve_row_dead_letters(session, ctx.tenant_pk, kind.value, sorted(readable))
            _reject(session, ctx, kind.value, rejected)
        seen += len(good)
        for change in changes:
            if change.last_modified_on is not None and (newest is None or change.last_modified_on > newest):
                newest = change.last_modified_on
    with ctx.sessions() as session, session.begin():
        cursor = _cursor(session, ctx.tenant_pk, stream)
        newest = _capped(ctx, newest)
        if newest is not None and (cursor.watermark is None or newest > cursor.watermark):
            cursor.watermark = newest
        cursor.last_polled_at = utcnow()
    return seen


def _capped(ctx: TenantContext, newest: datetime | None) -> datetime | None:
    """The watermark never passes now minus the overlap: a row stamped in the future must not blind
    every later poll to what changes before that date.
    """
    if newest is None:
        return None
    return min(newest, utcnow() - timedelta(seconds=ctx.settings.cin7_poll_overlap_seconds))


def _reject(session: Session, ctx: TenantContext, kind: str, rejected: Sequence[RejectedRow]) -> None:
    for row in rejected:
        record_row_dead_letter(
            session,
            ctx.tenant_pk,
            kind=kind,
            record_id=row.record_id.lower() if row.record_id else None,
            number=row.number,
            reasons=row.reasons,
            row=row.raw,
        )


def store_customers(
    session: Session, tenant_pk: int, rows: Iterable[dict[str, Any]], *, kind: PartyKind = PartyKind.CUSTOMER
) -> None:
    """Upsert customer (or supplier) snapshots by (tenant, Cin7 id)."""
    by_id = {str(row["ID"]).lower(): row for row in rows if row.get("ID")}
    if not by_id:
        return
    existing = {
        record.customer_id: record
        for record in session.scalars(
            select(CustomerRecord).where(
                CustomerRecord.tenant_id == tenant_pk, CustomerRecord.customer_id.in_(list(by_id))
            )
        )
    }
    fresh = []
    for customer_id, row in by_id.items():
        modified = parse_cin7_datetime(row.get("LastModifiedOn"))
        record = existing.get(customer_id)
        if record is None:
            fresh.append(
                {
                    "tenant_id": tenant_pk,
                    "customer_id": customer_id,
                    "kind": kind.value,
                    "snapshot": row,
                    "tax_key": abn_key(row.get("TaxNumber")),
                    "last_modified_on": modified,
                    "fetched_at": utcnow(),
                }
            )
        else:
            record.snapshot = row
            record.tax_key = abn_key(row.get("TaxNumber"))
            record.last_modified_on = modified
            record.fetched_at = utcnow()
    insert_ignore(session, CustomerRecord, fresh, ["tenant_id", "customer_id"])


def first_poll_since(ctx: TenantContext) -> datetime:
    """Where the first poll reads from: SYNC_START_DATE when set (the cutover), else the lookback."""
    start = ctx.settings.sync_start_date
    if start is not None:
        return datetime.combine(start, time.min, tzinfo=UTC)
    return utcnow() - timedelta(days=ctx.settings.cin7_initial_lookback_days)


@dataclass(frozen=True)
class Listed:
    """A listing row of a parent document (saleList, purchaseList) as discovery records it."""

    parent_id: str
    number: str | None
    #: When Cin7 last changed it (saleList `Updated`, purchaseList `LastUpdatedDate`): the watermark.
    updated: datetime | None


@dataclass(frozen=True)
class _Stream:
    """How one kind of parent document is listed and fetched."""

    kind: ParentKind
    name: str
    noun: str
    fetch: TaskName


_SALES = _Stream(ParentKind.SALE, SALES_STREAM, "sale", TaskName.FETCH_SALE)
_PURCHASES = _Stream(ParentKind.PURCHASE, PURCHASES_STREAM, "purchase", TaskName.FETCH_PURCHASE)


def _sale_rows(page: list[dict[str, Any]]) -> tuple[list[Listed], list[RejectedRow]]:
    rows, rejected = parse_rows(
        page, Cin7SaleChange, id_field="SaleID", number_field="OrderNumber", text_limits=SALE_TEXT_LIMITS
    )
    return [Listed(row.sale_id, row.order_number, row.updated) for row in rows], rejected


def _purchase_rows(page: list[dict[str, Any]]) -> tuple[list[Listed], list[RejectedRow]]:
    rows, rejected = parse_rows(
        page, Cin7PurchaseListRow, id_field="ID", number_field="OrderNumber", text_limits=PURCHASE_TEXT_LIMITS
    )
    return [Listed(row.id, row.order_number, row.last_updated_date) for row in rows], rejected


def poll_sales(ctx: TenantContext) -> PollResult:
    """Read saleList since the watermark (minus an overlap) and record every changed sale.

    Each page is committed before its sales are enqueued, and the watermark moves only after every
    page is stored: a poll that dies halfway re-reads from the old watermark next time, and rows it
    already recorded are recognised by their unchanged `Updated`.
    """
    return _poll_parents(ctx, _SALES, ctx.cin7.iter_sale_pages, _sale_rows)


def poll_purchases(ctx: TenantContext) -> PollResult:
    """Read purchaseList since its own watermark (`LastUpdatedDate`) and record every changed purchase."""
    return _poll_parents(ctx, _PURCHASES, ctx.cin7.iter_purchase_pages, _purchase_rows)


def _send_fetches(ctx: TenantContext, stream: _Stream, changed: Sequence[str]) -> None:
    """One fetch message per changed parent, or, for sales with Redis to count each group's deliveries,
    one fetch_sales message per CIN7_FETCH_GROUP_SIZE of them (mapping.stage.fetch_and_map_group).
    """
    size = ctx.settings.cin7_fetch_group_size
    if stream.kind is not ParentKind.SALE or size <= 1 or len(changed) <= 1 or shared_redis(ctx.settings) is None:
        for parent_id in changed:
            app.send(stream.fetch, ctx.tenant_key, parent_id)
        return
    for start in range(0, len(changed), size):
        group = list(changed[start : start + size])
        if len(group) == 1:
            app.send(stream.fetch, ctx.tenant_key, group[0])
        else:
            app.send(TaskName.FETCH_SALES, ctx.tenant_key, group)


def _poll_parents(
    ctx: TenantContext,
    stream: _Stream,
    pages: Callable[[datetime | None], Iterable[list[dict[str, Any]]]],
    parse: Callable[[list[dict[str, Any]]], tuple[list[Listed], list[RejectedRow]]],
) -> PollResult:
    result = PollResult()
    with ctx.sessions() as session, session.begin():
        cursor = _cursor(session, ctx.tenant_pk, stream.name)
        if cursor.watermark is None:
            since = first_poll_since(ctx)
        else:
            # Rows sharing the watermark's timestamp may still be committing in Cin7 as we read.
            since = cursor.watermark - timedelta(seconds=ctx.settings.cin7_poll_overlap_seconds)
    newest: datetime | None = None
    for page in pages(since):
        rows, rejected = parse(page)
        result.listed += len(page)
        with ctx.sessions() as session, session.begin():
            changed = record_listed(session, ctx.tenant_pk, rows, kind=stream.kind)
            _reject(session, ctx, stream.noun, rejected)
            resolve_row_dead_letters(session, ctx.tenant_pk, stream.noun, [row.parent_id for row in rows])
            new = set(changed)
            _note_future_rows(session, ctx, stream.noun, [row for row in rows if row.parent_id in new])
        for row in rows:
            if row.updated is not None and (newest is None or row.updated > newest):
                newest = row.updated
        _send_fetches(ctx, stream, changed)
        result.changed_sale_ids.extend(changed)
        result.rejected += len(rejected)
        if changed:
            with ctx.sessions() as session, session.begin():
                mark_sales_enqueued(session, ctx.tenant_pk, changed)
    with ctx.sessions() as session, session.begin():
        cursor = _cursor(session, ctx.tenant_pk, stream.name)
        if cursor.covers_from is None:
            cursor.covers_from = since
        newest = _capped(ctx, newest)
        if newest is not None and (cursor.watermark is None or newest > cursor.watermark):
            cursor.watermark = newest
        cursor.last_polled_at = utcnow()
        result.watermark = cursor.watermark
    return result


def _note_future_rows(session: Session, ctx: TenantContext, noun: str, rows: Sequence[Listed]) -> None:
    """A document stamped after now is still fetched; the operator hears of it once (the first time it is new)."""
    now = utcnow()
    for row in rows:
        if row.updated is not None and row.updated > now + FUTURE_SKEW:
            log.warning("Cin7 %s %s is stamped %s, in the future", noun, row.number or row.parent_id, row.updated)
            note_problem(
                session,
                ctx.tenant_pk,
                ErrorClass.MAPPING,
                f"Cin7 {noun} {row.number or row.parent_id} was last changed {row.updated.isoformat()}, in the "
                "future: it is synced, and the poll watermark stays at the present",
            )


def record_listed(
    session: Session, tenant_pk: int, rows: Sequence[Listed], *, kind: ParentKind = ParentKind.SALE
) -> list[str]:
    """Insert new sales (or purchases) and flag changed ones; return the ids whose detail must be read."""
    by_id = {row.parent_id: row for row in rows if row.parent_id}
    if not by_id:
        return []
    insert_ignore(
        session,
        SaleRecord,
        [
            {
                "tenant_id": tenant_pk,
                "sale_id": parent_id,
                "kind": kind.value,
                "order_number": row.number,
                "state": SaleState.DISCOVERED.value,
                "discovered_at": utcnow(),
                "updated_at": utcnow(),
                "attempts": 0,
                "source": "cin7core",
            }
            for parent_id, row in by_id.items()
        ],
        ["tenant_id", "sale_id"],
    )
    changed: list[str] = []
    for record in session.scalars(
        select(SaleRecord)
        .where(SaleRecord.tenant_id == tenant_pk, SaleRecord.sale_id.in_(list(by_id)))
        .with_for_update()
    ):
        row = by_id[record.sale_id]
        if record.listed_updated is not None and row.updated is not None and row.updated <= record.listed_updated:
            continue
        if record.listed_updated is not None and row.updated is None:
            continue
        record.listed_updated = row.updated
        record.order_number = row.number
        record.state = SaleState.DISCOVERED
        record.attempts = 0
        record.next_attempt_at = None
        changed.append(record.sale_id)
    return changed


def mark_sales_enqueued(session: Session, tenant_pk: int, sale_ids: Sequence[str]) -> None:
    """Stamp when the fetch message went out, so the sweep can tell a lost one."""
    for record in session.scalars(
        select(SaleRecord).where(SaleRecord.tenant_id == tenant_pk, SaleRecord.sale_id.in_(list(sale_ids)))
    ):
        record.enqueued_at = utcnow()


def poll_changes(ctx: TenantContext) -> dict[str, Any]:
    """What a poll message does: customers first (sales map with them), then sales, one fetch each; with
    SYNC_PURCHASES, suppliers and then purchases the same way.
    """
    customers = poll_customers(ctx)
    result = poll_sales(ctx)
    summary: dict[str, Any] = {
        "customers": customers,
        "listed": result.listed,
        "changed": len(result.changed_sale_ids),
        "rejected": result.rejected,
    }
    if ctx.settings.sync_purchases:
        # Suppliers first, as customers before sales: a bill maps with its supplier's snapshot.
        summary["suppliers"] = poll_suppliers(ctx)
        purchases = poll_purchases(ctx)
        summary["purchases"] = {"listed": purchases.listed, "changed": len(purchases.changed_sale_ids)}
        summary["rejected"] += purchases.rejected
    return summary


def poll_message(ctx: TenantContext, *, retries: int) -> tuple[dict[str, Any], float | None]:
    """A poll, or when Cin7 failed the countdown after which to try again (None: give up until the next).

    Pages already stored stay stored (the watermark did not move), so a retried poll re-reads only
    from where the last complete one ended. Without this, a poll sent by `cin7xero sync --once` and
    failing on a Cin7 500 would wait for beat, which may not be running.
    """
    try:
        return poll_changes(ctx), None
    except SyncError as error:
        decision = decide_for(error, retries + 1, ctx.settings, pauses_tenant=False)
        log.warning("poll failed (%s): %s", error.error_class, error.message)
        if decision.next is Next.COUNTDOWN:
            return {"state": "retry", "error": error.message}, decision.delay
        return {"state": "failed", "error": error.message}, None

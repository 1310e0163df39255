"""Discovery: poll Cin7 for changed sales and customers, and record them in the ledger before any fetch.

The ledger is written and committed before anything is enqueued; a message lost after the commit is
found again by the sweep (pipeline.recovery.sweep), never by trusting the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mappings import Cin7CustomerChange, Cin7SaleChange, parse_cin7_datetime
from pipeline import app
from pipeline.app import TaskName
from pipeline.context import TenantContext
from pipeline.discovery.rows import RejectedRow, parse_rows
from pipeline.errors import ErrorClass, SyncError
from pipeline.ledger.models import (
    CustomerRecord,
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
# Ledger columns that list rows fill: longer text would fail the insert, for the whole page.
SALE_TEXT_LIMITS = {"SaleID": 64, "OrderNumber": 64}
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
    with ctx.sessions() as session, session.begin():
        cursor = _cursor(session, ctx.tenant_pk, CUSTOMERS_STREAM)
        since = (
            cursor.watermark - timedelta(seconds=ctx.settings.cin7_poll_overlap_seconds) if cursor.watermark else None
        )
    seen = 0
    newest = since
    for page in ctx.cin7.iter_customer_pages(since):
        changes, rejected = parse_rows(
            page, Cin7CustomerChange, id_field="ID", number_field="Name", text_limits=CUSTOMER_TEXT_LIMITS
        )
        readable = {change.id for change in changes}
        good = [row for row in page if isinstance(row, dict) and str(row.get("ID") or "").lower() in readable]
        with ctx.sessions() as session, session.begin():
            store_customers(session, ctx.tenant_pk, good)
            resolve_row_dead_letters(session, ctx.tenant_pk, "customer", sorted(readable))
            _reject(session, ctx, "customer", rejected)
        seen += len(good)
        for change in changes:
            if change.last_modified_on is not None and (newest is None or change.last_modified_on > newest):
                newest = change.last_modified_on
    with ctx.sessions() as session, session.begin():
        cursor = _cursor(session, ctx.tenant_pk, CUSTOMERS_STREAM)
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


def store_customers(session: Session, tenant_pk: int, rows: Iterable[dict[str, Any]]) -> None:
    """Upsert customer snapshots by (tenant, customer id)."""
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
                    "snapshot": row,
                    "last_modified_on": modified,
                    "fetched_at": utcnow(),
                }
            )
        else:
            record.snapshot = row
            record.last_modified_on = modified
            record.fetched_at = utcnow()
    insert_ignore(session, CustomerRecord, fresh, ["tenant_id", "customer_id"])


def first_poll_since(ctx: TenantContext) -> datetime:
    """Where the first poll reads from: SYNC_START_DATE when set (the cutover), else the lookback."""
    start = ctx.settings.sync_start_date
    if start is not None:
        return datetime.combine(start, time.min, tzinfo=UTC)
    return utcnow() - timedelta(days=ctx.settings.cin7_initial_lookback_days)


def poll_sales(ctx: TenantContext) -> PollResult:
    """Read saleList since the watermark (minus an overlap) and record every changed sale.

    Each page is committed before its sales are enqueued, and the watermark moves only after every
    page is stored: a poll that dies halfway re-reads from the old watermark next time, and rows it
    already recorded are recognised by their unchanged `Updated`.
    """
    result = PollResult()
    with ctx.sessions() as session, session.begin():
        cursor = _cursor(session, ctx.tenant_pk, SALES_STREAM)
        if cursor.watermark is None:
            since = first_poll_since(ctx)
        else:
            # Rows sharing the watermark's timestamp may still be committing in Cin7 as we read.
            since = cursor.watermark - timedelta(seconds=ctx.settings.cin7_poll_overlap_seconds)
    newest: datetime | None = None
    for page in ctx.cin7.iter_sale_pages(since):
        rows, rejected = parse_rows(
            page, Cin7SaleChange, id_field="SaleID", number_field="OrderNumber", text_limits=SALE_TEXT_LIMITS
        )
        result.listed += len(page)
        with ctx.sessions() as session, session.begin():
            changed = record_listed_sales(session, ctx.tenant_pk, rows)
            _reject(session, ctx, "sale", rejected)
            resolve_row_dead_letters(session, ctx.tenant_pk, "sale", [row.sale_id for row in rows])
            new = set(changed)
            _note_future_rows(session, ctx, [row for row in rows if row.sale_id in new])
        for row in rows:
            if row.updated is not None and (newest is None or row.updated > newest):
                newest = row.updated
        for sale_id in changed:
            app.send(TaskName.FETCH_SALE, ctx.tenant_key, sale_id)
        result.changed_sale_ids.extend(changed)
        result.rejected += len(rejected)
        if changed:
            with ctx.sessions() as session, session.begin():
                mark_sales_enqueued(session, ctx.tenant_pk, changed)
    with ctx.sessions() as session, session.begin():
        cursor = _cursor(session, ctx.tenant_pk, SALES_STREAM)
        if cursor.covers_from is None:
            cursor.covers_from = since
        newest = _capped(ctx, newest)
        if newest is not None and (cursor.watermark is None or newest > cursor.watermark):
            cursor.watermark = newest
        cursor.last_polled_at = utcnow()
        result.watermark = cursor.watermark
    return result


def _note_future_rows(session: Session, ctx: TenantContext, rows: Sequence[Cin7SaleChange]) -> None:
    """A sale stamped after now is still fetched; the operator hears of it once (the first time it is new)."""
    now = utcnow()
    for row in rows:
        if row.updated is not None and row.updated > now + FUTURE_SKEW:
            log.warning("Cin7 sale %s is stamped %s, in the future", row.order_number or row.sale_id, row.updated)
            note_problem(
                session,
                ctx.tenant_pk,
                ErrorClass.MAPPING,
                f"Cin7 sale {row.order_number or row.sale_id} was last changed {row.updated.isoformat()}, in the "
                "future: it is synced, and the poll watermark stays at the present",
            )


def record_listed_sales(session: Session, tenant_pk: int, rows: Sequence[Cin7SaleChange]) -> list[str]:
    """Insert new sales and flag changed ones; return the ids whose detail must be read."""
    by_id = {row.sale_id: row for row in rows if row.sale_id}
    if not by_id:
        return []
    insert_ignore(
        session,
        SaleRecord,
        [
            {
                "tenant_id": tenant_pk,
                "sale_id": sale_id,
                "order_number": row.order_number,
                "state": SaleState.DISCOVERED.value,
                "discovered_at": utcnow(),
                "updated_at": utcnow(),
                "attempts": 0,
                "source": "cin7core",
            }
            for sale_id, row in by_id.items()
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
        record.order_number = row.order_number
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
    """What a poll message does: customers first (sales map with them), then sales, one fetch each."""
    customers = poll_customers(ctx)
    result = poll_sales(ctx)
    return {
        "customers": customers,
        "listed": result.listed,
        "changed": len(result.changed_sale_ids),
        "rejected": result.rejected,
    }


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

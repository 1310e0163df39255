"""When a batch goes: full at once, a part batch after a short wait and the tenant's even share of Xero's minute."""

from __future__ import annotations

import logging
import time

import redis
from sqlalchemy import func, select

from pipeline.context import TenantContext, shared_redis
from pipeline.ledger.models import (
    DocumentState,
    SyncDocument,
    utcnow,
)
from pipeline.writer.claim import ready_count

log = logging.getLogger(__name__)

GATHER_POLL_SECONDS = 0.05
# A migration's history has no latency to keep: while more of it is still being mapped and no live
# document waits, a part batch of it waits this much longer to fill (a call per 50, not per handful).
MIGRATION_BATCH_WAIT_SECONDS = 5.0


def _migration_still_filling(ctx: TenantContext) -> bool:
    """Only migrated documents are ready, and more of the migration is still being mapped."""
    with ctx.sessions() as session:

        def any_in(state: DocumentState, *, migrated: bool) -> bool:
            migration = SyncDocument.migration_id.is_not(None) if migrated else SyncDocument.migration_id.is_(None)
            found = session.scalar(
                select(SyncDocument.id)
                .where(SyncDocument.tenant_id == ctx.tenant_pk, SyncDocument.state == state, migration)
                .limit(1)
            )
            return found is not None

        return not any_in(DocumentState.READY, migrated=False) and any_in(DocumentState.PENDING, migrated=True)


def _ready_backlog(ctx: TenantContext) -> tuple[int, float]:
    """(documents waiting for a writer, seconds the longest-waiting of them has waited), in one query."""
    with ctx.sessions() as session:
        count, oldest = session.execute(
            select(func.count(), func.min(SyncDocument.enqueued_at)).where(
                SyncDocument.tenant_id == ctx.tenant_pk, SyncDocument.state == DocumentState.READY
            )
        ).one()
    age = 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
    return int(count or 0), age


# When a batch was last sent per tenant, for processes without Redis (the demo); with Redis the time
# is shared, since the writer lease moves between processes from one write message to the next.
_last_flush: dict[tuple[str, int], float] = {}


def _last_flush_key(ctx: TenantContext) -> str:
    return f"cin7xero:last-flush:{ctx.tenant_key}"


def _last_flush_at(ctx: TenantContext) -> float:
    """Wall-clock time of the tenant's last batch (0 when unknown)."""
    client = shared_redis(ctx.settings)
    if client is not None:
        try:
            value = client.get(_last_flush_key(ctx))
            return float(value) if value else 0.0
        except (redis.RedisError, ValueError):
            pass
    return _last_flush.get((ctx.settings.database_url, ctx.tenant_pk), 0.0)


def gather(ctx: TenantContext, batch_size: int) -> None:
    """Flush when a batch is full; a part batch once its oldest row has waited XERO_BATCH_WAIT_SECONDS
    and the tenant's even share of Xero's minute (window / calls: 1 s) has passed since the last one.

    The Xero call slot is taken first: while the shared minute is spent, rows keep becoming ready and
    the batch claimed afterwards carries them all. The even pacing keeps a steady trickle from
    spending a call per handful of invoices, which would leave nothing of the minute (or of Xero's
    5000-call day) for a burst; a full batch never waits for it.
    """
    wait = ctx.settings.xero_batch_wait_seconds
    if ready_count(ctx) == 0:
        return
    ctx.xero.reserve_slot()
    interval = ctx.settings.xero_rate_window_seconds / ctx.settings.xero_calls_per_window
    pace_until = _last_flush_at(ctx) + interval
    deadline = max(time.time() + wait, pace_until)
    if _ready_backlog(ctx)[0] < batch_size and _migration_still_filling(ctx):
        wait = max(wait, MIGRATION_BATCH_WAIT_SECONDS)
        deadline = max(deadline, time.time() + MIGRATION_BATCH_WAIT_SECONDS)
    while time.time() < deadline:
        waiting, age = _ready_backlog(ctx)
        if waiting >= batch_size or (age >= wait and time.time() >= pace_until):
            break
        time.sleep(GATHER_POLL_SECONDS)


def mark_flushed(ctx: TenantContext) -> None:
    """Note that a batch went now, for the tenant's even pacing."""
    now = time.time()
    _last_flush[(ctx.settings.database_url, ctx.tenant_pk)] = now
    client = shared_redis(ctx.settings)
    if client is not None:
        try:
            client.set(_last_flush_key(ctx), repr(now), ex=3600)
        except redis.RedisError:
            log.debug("could not share the last flush time; pacing is per process until Redis is back")

"""The sweep: the ledger heals what the broker lost.

Nothing depends on Redis holding a message. Every row that should be moving but has not moved for
too long (its message lost with a restarted broker, its worker killed) is sent again; rows whose
retry time has come are released. Re-sending is always safe: every task checks the row's state first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update

from pipeline.context import TenantContext
from pipeline.deadletters import record_dead_letter
from pipeline.documents import paused_for
from pipeline.errors import ErrorClass
from pipeline.ledger.models import DocumentState, SaleRecord, SaleState, SyncDocument, utcnow

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """Which rows the sweep sent again."""

    sales: list[str]
    to_map: list[int]
    to_write: list[int]
    reclaimed: int
    dead: int
    # Rows whose retry time came: they are ready again but their enqueued_at is recent, so the
    # stale-row query below would not send them; a write must.
    released: int = 0


def release_due_retries(ctx: TenantContext) -> int:
    """Documents whose retry time has come go back to `ready`."""
    with ctx.sessions() as session, session.begin():
        result = session.execute(
            update(SyncDocument)
            .where(
                SyncDocument.tenant_id == ctx.tenant_pk,
                SyncDocument.state == DocumentState.RETRY,
                SyncDocument.next_attempt_at <= utcnow(),
            )
            .values(state=DocumentState.READY, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


# Xero forgets a refresh token unused for 60 days; warn with ten days to spare.
REFRESH_TOKEN_WARN_AGE = timedelta(days=50)
# ...but not on every sweep: once an hour per process is plenty for a problem measured in days.
_REFRESH_WARNING_EVERY = 3600.0
_last_refresh_warning: dict[int, float] = {}


def warn_if_refresh_token_ageing(ctx: TenantContext) -> timedelta | None:
    """Log a warning when the stored refresh token is close to expiring from disuse; return its age."""
    age = ctx.xero_tokens.refresh_token_age()
    if age is None or age < REFRESH_TOKEN_WARN_AGE:
        return age
    now = time.monotonic()
    last = _last_refresh_warning.get(ctx.tenant_pk)
    if last is None or now - last >= _REFRESH_WARNING_EVERY:
        _last_refresh_warning[ctx.tenant_pk] = now
        log.warning(
            "tenant %s: the Xero refresh token was issued %d days ago and expires after 60 days unused; "
            "let the sync write once (or run `cin7xero xero connect`) before then",
            ctx.tenant_key,
            age.days,
        )
    return age


def sweep(ctx: TenantContext) -> SweepResult:
    """Find stuck or due rows and say what to enqueue (the caller sends after this commits)."""
    now = utcnow()
    stale = now - timedelta(seconds=ctx.settings.stuck_after_seconds)
    released = release_due_retries(ctx)
    warn_if_refresh_token_ageing(ctx)
    # While the tenant is parked, ready rows stay untouched (and stale), so the first sweep after the
    # pause sends them; sending writers now would only wake them to find the pause.
    paused = paused_for(ctx) is not None
    result = SweepResult(sales=[], to_map=[], to_write=[], reclaimed=0, dead=0, released=released)
    with ctx.sessions() as session, session.begin():
        for sale in session.scalars(
            select(SaleRecord)
            .where(
                SaleRecord.tenant_id == ctx.tenant_pk,
                or_(
                    (SaleRecord.state == SaleState.DISCOVERED)
                    & (or_(SaleRecord.enqueued_at.is_(None), SaleRecord.enqueued_at < stale)),
                    (SaleRecord.state == SaleState.RETRY) & (SaleRecord.next_attempt_at <= now),
                ),
            )
            .with_for_update(skip_locked=True)
        ):
            sale.state = SaleState.DISCOVERED
            sale.enqueued_at = now
            result.sales.append(sale.sale_id)
        for doc in session.scalars(
            select(SyncDocument)
            .where(
                SyncDocument.tenant_id == ctx.tenant_pk,
                or_(
                    (SyncDocument.state.in_([DocumentState.PENDING, DocumentState.READY]))
                    & (or_(SyncDocument.enqueued_at.is_(None), SyncDocument.enqueued_at < stale)),
                    (SyncDocument.state == DocumentState.WRITING) & (SyncDocument.claimed_at < stale),
                ),
            )
            .with_for_update(skip_locked=True)
        ):
            if doc.state == DocumentState.WRITING:
                # Its writer died mid-call: the outcome in Xero is unknown, so look before writing again.
                doc.attempts += 1
                doc.write_uncertain = True
                doc.claim_token = None
                result.reclaimed += 1
                if doc.attempts >= ctx.settings.max_attempts:
                    record_dead_letter(
                        session,
                        doc,
                        stage="write",
                        error_class=ErrorClass.POISON,
                        messages=[f"no writer finished this document in {doc.attempts} attempts"],
                        payload=doc.payload,
                    )
                    result.dead += 1
                    continue
                doc.state = DocumentState.READY
            if paused and doc.state == DocumentState.READY:
                continue
            doc.enqueued_at = now
            (result.to_map if doc.state == DocumentState.PENDING else result.to_write).append(doc.id)
    if result.sales or result.to_map or result.to_write:
        log.info(
            "sweep: %d sales, %d to map, %d to write (%d reclaimed from dead writers)",
            len(result.sales),
            len(result.to_map),
            len(result.to_write),
            result.reclaimed,
        )
    return result

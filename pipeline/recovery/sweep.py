"""The sweep: the ledger heals what the broker lost.

Nothing depends on Redis holding a message. Every row that should be moving but has not moved for
too long (its message lost with a restarted broker, its worker killed) is sent again; rows whose
retry time has come are released. Re-sending is always safe: every task checks the row's state first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from redis.typing import EncodableT, FieldT
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, aliased

from pipeline import app
from pipeline.app import FETCH_TASKS, QueueName, TaskName, queue_backlog
from pipeline.contacts.push import push_backlog
from pipeline.context import (
    USAGE_BASE_PREFIX,
    TenantContext,
    add_usage,
    ledger_usage,
    parse_usage_hash,
    shared_redis,
    usage_applied,
    usage_keys,
)
from pipeline.errors import ErrorClass
from pipeline.ledger.models import DocumentState, SaleRecord, SaleState, SyncDocument, Tenant, utcnow
from pipeline.operations.pauses import paused_for
from pipeline.recovery.deadletters import mirror_dead_letter_queue, record_dead_letter
from pipeline.webhooks.inbox import delete_expired_events, resend_unsent_events
from pipeline.writer.claim import release_due_retries

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """Which rows the sweep sent again."""

    #: (parent id, parent kind) of each sale or purchase to read again.
    sales: list[tuple[str, str]]
    to_map: list[int]
    to_write: list[int]
    reclaimed: int
    dead: int
    # Rows whose retry time came: they are ready again but their enqueued_at is recent, so the
    # stale-row query below would not send them; a write must.
    released: int = 0
    # Contact details or numbers Xero still lacks (e.g. a customer edited in Cin7 with no new
    # invoice): only a writer sends them, so the sweep wakes one.
    contacts_to_push: int = 0


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


def fold_api_usage(ctx: TenantContext) -> int:
    """Move the API call counts workers keep in Redis into ApiUsage; return the calls moved.

    One fold at a time per tenant (the tenant row is locked for it). The live hash is first detached
    with RENAME, so that workers counting meanwhile start a new one. Before the commit, the folding
    hash is stamped with the ledger values its counts are added to: a fold that died at any point is
    finished by the next one without losing or doubling a call, whether or not its commit happened.
    A Redis that restarts without persistence loses what was not folded yet (one sweep interval at
    most): these counts are a report for operators, and nothing in the sync decides by them.
    """
    client = shared_redis(ctx.settings)
    if client is None:
        return 0
    keys = usage_keys(ctx.tenant_key)
    moved = 0
    # A leftover folding hash (a fold that died) first, then the live one.
    detached = False
    while not detached:
        with ctx.sessions() as session, session.begin():
            session.execute(select(Tenant.id).where(Tenant.id == ctx.tenant_pk).with_for_update())
            raw = client.hgetall(keys.folding)
            if not raw:
                try:
                    client.rename(keys.live, keys.folding)
                except redis.ResponseError:
                    return moved  # no live hash: nothing was counted since the last fold
                detached = True
                raw = client.hgetall(keys.folding)
            counts, bases = parse_usage_hash(raw)
            ledger = ledger_usage(session, ctx.tenant_pk, counts)
            if not bases:
                stamp: dict[FieldT, EncodableT] = {}
                for day, api in counts:
                    before = ledger.get((day, api), (0, 0))
                    stamp[f"{USAGE_BASE_PREFIX}{day}|{api}|calls"] = before[0]
                    stamp[f"{USAGE_BASE_PREFIX}{day}|{api}|429"] = before[1]
                client.hset(keys.folding, mapping=stamp)
                add_usage(session, ctx.tenant_pk, counts)
                moved += sum(calls for calls, _ in counts.values())
            elif not usage_applied(counts, bases, ledger):
                add_usage(session, ctx.tenant_pk, counts)
                moved += sum(calls for calls, _ in counts.values())
        pipe = client.pipeline(transaction=True)
        pipe.delete(keys.folding)
        pipe.incr(keys.generation)
        pipe.execute()
    return moved


# A row sent this many leases ago is sent again even while its queue still has a backlog.
BACKLOG_LEASES = 10


def _lost_before(now: datetime, lease: timedelta) -> dict[QueueName, datetime]:
    """Per queue, rows sent before this time have lost their message.

    A row whose message was sent a lease ago and is not done yet lost it (a worker SIGKILLed with the
    message reserved, a broker restarted empty) when its queue has nothing left waiting; while the
    queue has a backlog, the row may simply still be in line, and is re-sent only after many leases.
    Re-sending is safe either way: the ledger absorbs the duplicate.
    """
    queues = (QueueName.CIN7, QueueName.MAPPING, QueueName.XERO)
    backlog = queue_backlog(queues) or {}
    return {queue: now - lease * (BACKLOG_LEASES if backlog.get(queue, 0) else 1) for queue in queues}


# A document of the sale that settled this recently may be what a waiting one missed.
_SETTLED = (DocumentState.SYNCED, DocumentState.VOIDED, DocumentState.IGNORED)


def _wake_missed(session: Session, tenant_pk: int, stale: datetime, lease: timedelta) -> list[int]:
    """Waiting documents whose wake-up may have been missed: mapped as waiting in the same moment as
    what they wait for settled, so that neither transaction saw the other. A document waiting for
    longer than a lease, in a sale where something settled within the last two leases, is mapped
    again; one that still waits is stamped anew and is not picked again once that settling is old.
    (Every sweep falls inside that window at least once: sweeps run more often than a lease.)
    """
    sibling = aliased(SyncDocument)
    recently_settled = (
        select(sibling.id)
        .where(
            sibling.tenant_id == SyncDocument.tenant_id,
            sibling.sale_id == SyncDocument.sale_id,
            sibling.state.in_(_SETTLED),
            sibling.updated_at >= stale - lease,
        )
        .exists()
    )
    return list(
        session.scalars(
            update(SyncDocument)
            .where(
                SyncDocument.tenant_id == tenant_pk,
                SyncDocument.state == DocumentState.WAITING,
                SyncDocument.updated_at < stale,
                recently_settled,
            )
            .values(state=DocumentState.PENDING, enqueued_at=utcnow())
            .returning(SyncDocument.id)
            .execution_options(synchronize_session=False)
        )
    )


def sweep(ctx: TenantContext) -> SweepResult:
    """Find stuck or due rows and say what to enqueue (the caller sends after this commits)."""
    now = utcnow()
    lease = timedelta(seconds=ctx.settings.stuck_after_seconds)
    stale = now - lease
    lost_before = _lost_before(now, lease)
    released = release_due_retries(ctx)
    warn_if_refresh_token_ageing(ctx)
    try:
        fold_api_usage(ctx)
    except redis.RedisError as exc:
        # The counts stay in Redis (or in a stamped folding hash) for the next sweep.
        log.warning("sweep: API usage not folded this time: %s", exc)
    # While the tenant is parked, ready rows stay untouched (and stale), so the first sweep after the
    # pause sends them; sending writers now would only wake them to find the pause.
    paused = paused_for(ctx) is not None
    result = SweepResult(sales=[], to_map=[], to_write=[], reclaimed=0, dead=0, released=released)
    if not paused:
        result.contacts_to_push = push_backlog(ctx)[0]
    with ctx.sessions() as session, session.begin():
        result.to_map.extend(_wake_missed(session, ctx.tenant_pk, stale, lease))
        for sale in session.scalars(
            select(SaleRecord)
            .where(
                SaleRecord.tenant_id == ctx.tenant_pk,
                or_(
                    (SaleRecord.state == SaleState.DISCOVERED)
                    & (or_(SaleRecord.enqueued_at.is_(None), SaleRecord.enqueued_at < lost_before[QueueName.CIN7])),
                    (SaleRecord.state == SaleState.RETRY) & (SaleRecord.next_attempt_at <= now),
                ),
            )
            .with_for_update(skip_locked=True)
        ):
            sale.state = SaleState.DISCOVERED
            sale.enqueued_at = now
            result.sales.append((sale.sale_id, sale.kind))
        for doc in session.scalars(
            select(SyncDocument)
            .where(
                SyncDocument.tenant_id == ctx.tenant_pk,
                or_(
                    (SyncDocument.state == DocumentState.PENDING)
                    & (
                        or_(
                            SyncDocument.enqueued_at.is_(None),
                            SyncDocument.enqueued_at < lost_before[QueueName.MAPPING],
                        )
                    ),
                    (SyncDocument.state == DocumentState.READY)
                    & (or_(SyncDocument.enqueued_at.is_(None), SyncDocument.enqueued_at < lost_before[QueueName.XERO])),
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


def sweep_message(ctx: TenantContext) -> dict[str, int]:
    """What a sweep message does: heal the ledger, re-send what it found, mirror the dead letters."""
    result = sweep(ctx)
    for sale_id, kind in result.sales:
        app.send(FETCH_TASKS[kind], ctx.tenant_key, sale_id)
    for doc_id in result.to_map:
        app.send(TaskName.MAP_DOCUMENT, ctx.tenant_key, doc_id)
    if result.to_write or result.released or result.contacts_to_push:
        app.send(TaskName.WRITE_DOCUMENT, ctx.tenant_key, result.to_write[0] if result.to_write else None)
    unsent_events = resend_unsent_events(ctx)
    for event_id in unsent_events:
        app.send(TaskName.WEBHOOK_EVENT, ctx.tenant_key, event_id)
    expired_events = delete_expired_events(ctx)
    with ctx.sessions() as session:
        open_letters = mirror_dead_letter_queue(session, ctx.tenant_pk)
    return {
        "sales": len(result.sales),
        "map": len(result.to_map),
        "write": len(result.to_write),
        "contacts_to_push": result.contacts_to_push,
        "reclaimed": result.reclaimed,
        "webhook_events": len(unsent_events),
        "webhook_events_deleted": expired_events,
        "dead_letters": open_letters,
    }

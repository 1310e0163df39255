"""Claiming ready rows for a write: one writer per tenant (a lease), rows taken by an UPDATE.

Only rows still `ready` are taken, so concurrent writers never share a row; the lease keeps
batches full, and one pending write message per tenant (a Redis flag) is enough to wake a writer.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import redis
from sqlalchemy import case, func, or_, select, update

from pipeline.context import TenantContext, shared_redis
from pipeline.ledger.models import (
    DocumentState,
    SyncDocument,
    Tenant,
    utcnow,
)

log = logging.getLogger(__name__)


def claim_batch(ctx: TenantContext, first_id: int | None) -> tuple[str, list[int]]:
    """Claim up to a batch of ready rows for this tenant, `first_id` first."""
    token = uuid.uuid4().hex
    limit = ctx.settings.xero_batch_size
    with ctx.sessions() as session, session.begin():
        candidates: list[int] = []
        if first_id is not None:
            candidates.append(first_id)
        candidates.extend(
            session.scalars(
                select(SyncDocument.id)
                .where(SyncDocument.tenant_id == ctx.tenant_pk, SyncDocument.state == DocumentState.READY)
                # Live documents first, so that a migration never delays a new sale by more than a
                # batch; a migration's own in date order.
                .order_by(
                    SyncDocument.migration_id.is_not(None),
                    # A migration's backlog in full batches of one kind (Xero takes one collection a call),
                    # each kind oldest first.
                    case((SyncDocument.migration_id.is_not(None), SyncDocument.kind), else_=None),
                    case((SyncDocument.migration_id.is_not(None), SyncDocument.document_date), else_=None),
                    SyncDocument.id,
                )
                .limit(limit)
            )
        )
        ids = list(dict.fromkeys(candidates))[:limit]
        if not ids:
            return token, []
        # Only rows still `ready` are taken: a concurrent writer that got there first keeps them.
        session.execute(
            update(SyncDocument)
            .where(SyncDocument.id.in_(ids), SyncDocument.state == DocumentState.READY)
            .values(state=DocumentState.WRITING, claim_token=token, claimed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    with ctx.sessions() as session:
        claimed = list(
            session.scalars(select(SyncDocument.id).where(SyncDocument.claim_token == token).order_by(SyncDocument.id))
        )
    return token, claimed


def ready_count(ctx: TenantContext) -> int:
    """How many documents wait for a writer."""
    with ctx.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(SyncDocument)
                .where(SyncDocument.tenant_id == ctx.tenant_pk, SyncDocument.state == DocumentState.READY)
            )
            or 0
        )


WRITE_LEASE = timedelta(seconds=120)


def _lease_length(ctx: TenantContext) -> timedelta:
    """The writer lease never outlives STUCK_AFTER_SECONDS.

    A writer SIGKILLed mid-batch leaves its lease behind; the sweep hands its rows back after
    STUCK_AFTER_SECONDS, and a lease that lasted longer would leave them ready with nobody allowed to
    write them. Correctness never depends on the lease (claims are per row); it only keeps batches full.
    """
    return min(WRITE_LEASE, timedelta(seconds=ctx.settings.stuck_after_seconds))


def acquire_lease(ctx: TenantContext) -> str | None:
    """Become the tenant's writer, unless another live writer already is."""
    owner = uuid.uuid4().hex
    now = utcnow()
    with ctx.sessions() as session, session.begin():
        taken = session.execute(
            update(Tenant)
            .where(
                Tenant.id == ctx.tenant_pk,
                or_(Tenant.write_lease_until.is_(None), Tenant.write_lease_until < now),
            )
            .values(write_lease_owner=owner, write_lease_until=now + _lease_length(ctx))
            .execution_options(synchronize_session=False)
        )
    return owner if getattr(taken, "rowcount", 0) == 1 else None


def renew_lease(ctx: TenantContext, owner: str) -> None:
    """Extend the writer lease of `owner` (a no-op if it has lost it)."""
    with ctx.sessions() as session, session.begin():
        session.execute(
            update(Tenant)
            .where(Tenant.id == ctx.tenant_pk, Tenant.write_lease_owner == owner)
            .values(write_lease_until=utcnow() + _lease_length(ctx))
            .execution_options(synchronize_session=False)
        )


def release_lease(ctx: TenantContext, owner: str) -> None:
    """Give up the writer lease of `owner`."""
    with ctx.sessions() as session, session.begin():
        session.execute(
            update(Tenant)
            .where(Tenant.id == ctx.tenant_pk, Tenant.write_lease_owner == owner)
            .values(write_lease_owner=None, write_lease_until=None)
            .execution_options(synchronize_session=False)
        )


# A write message says "drain this tenant"; one pending is enough. The key expires so that a lost
# message cannot silence the tenant for long (the sweep also re-sends stale ready rows).
WRITE_PENDING_TTL_SECONDS = 60


def _write_pending_key(ctx: TenantContext) -> str:
    return f"cin7xero:write-pending:{ctx.tenant_key}"


def claim_write_message(ctx: TenantContext) -> bool:
    """True when the caller should send a write message (none is pending for the tenant)."""
    client = shared_redis(ctx.settings)
    if client is None:
        return True
    try:
        return bool(client.set(_write_pending_key(ctx), "1", nx=True, ex=WRITE_PENDING_TTL_SECONDS))
    except redis.RedisError:
        return True


def release_write_message(ctx: TenantContext) -> None:
    """The tenant's writer has let go of its lease: rows made ready from now on need (and may send) a
    new message. It clears the flag before it looks for ready rows one last time: a row made ready
    earlier is found by that look, and one made ready later sends its own message.
    """
    client = shared_redis(ctx.settings)
    if client is None:
        return
    try:
        client.delete(_write_pending_key(ctx))
    except redis.RedisError:
        log.warning("could not clear the pending-write flag; it expires in %ss", WRITE_PENDING_TTL_SECONDS)


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

"""Tenant pauses: a day limit or a refused connection parks the tenant's writes until it passes.

The pause lives on the tenant row, so every worker sees it; it only ever lengthens, and the first
write that succeeds afterwards ends it and lets its alert announce the recovery.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from pipeline.context import TenantContext
from pipeline.errors import ErrorClass, SyncError
from pipeline.ledger.models import (
    Tenant,
    utcnow,
)
from pipeline.operations import alerts
from pipeline.policy import pause_seconds

log = logging.getLogger(__name__)


class TenantPaused(SyncError):
    """The tenant is parked (day limit, configuration): work that needs Xero waits for the pause."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(ErrorClass.DAY_LIMIT, message, api="xero", retry_after=retry_after)


def pause_tenant(ctx: TenantContext, error: SyncError) -> float | None:
    """Park the tenant's writes when the error says the whole tenant must wait; return the pause.

    Day limit: until Xero's Retry-After (the limit resets). Configuration (403, revoked consent): a
    fixed pause, then the sweep tries again, so a repaired connection resumes without anyone
    requeueing. The pause only ever lengthens, so a short wait cannot cut a long one short.
    """
    seconds = pause_seconds(error)
    if seconds is None or isinstance(error, TenantPaused):
        return seconds
    until = utcnow() + timedelta(seconds=seconds)
    reason = f"{error.error_class.value}: {error.message}"[:4000]
    with ctx.sessions() as session, session.begin():
        tenant = session.scalar(select(Tenant).where(Tenant.id == ctx.tenant_pk).with_for_update())
        assert tenant is not None
        if tenant.paused_until is None or tenant.paused_until < until:
            tenant.paused_until = until
        tenant.pause_reason = reason
        alerts.note_problem(session, ctx.tenant_pk, error.error_class, reason)
    log.warning("tenant %s paused for %.0fs: %s", ctx.tenant_key, seconds, reason)
    return seconds


def paused_for(ctx: TenantContext) -> float | None:
    """Seconds left in the tenant's pause, or None when it may write."""
    with ctx.sessions() as session:
        until = session.scalar(select(Tenant.paused_until).where(Tenant.id == ctx.tenant_pk))
    if until is None:
        return None
    left = (until - utcnow()).total_seconds()
    return left if left > 0 else None


def resume_after_success(ctx: TenantContext) -> None:
    """A write went through: a past pause is over, and its alert (if any) may announce recovery."""
    with ctx.sessions() as session, session.begin():
        tenant = session.scalar(
            select(Tenant).where(Tenant.id == ctx.tenant_pk, Tenant.pause_reason.is_not(None)).with_for_update()
        )
        if tenant is None or (tenant.paused_until is not None and tenant.paused_until > utcnow()):
            return
        log.info("tenant %s resumed after: %s", ctx.tenant_key, tenant.pause_reason)
        tenant.paused_until = None
        tenant.pause_reason = None
        for error_class in (ErrorClass.DAY_LIMIT, ErrorClass.CONFIGURATION):
            alerts.note_recovery(session, ctx.tenant_pk, error_class)

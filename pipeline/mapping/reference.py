"""Xero's chart of accounts, cached for the mapping: it rejects account codes Xero does not have."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from pipeline.context import TenantContext
from pipeline.errors import ErrorClass, SyncError
from pipeline.ledger.models import (
    Tenant,
    utcnow,
)
from pipeline.operations.pauses import TenantPaused, paused_for

log = logging.getLogger(__name__)

ACCOUNTS_TTL = timedelta(hours=1)


# After a failed read of the chart of accounts, mapping tasks wait this long before anyone asks again.
ACCOUNTS_RETRY_AFTER = timedelta(seconds=5)


# Each process keeps the tenant's codes this long before it reads the tenant row again: one mapping
# per order would otherwise pay a ledger round trip for a list that changes hourly at most.
ACCOUNTS_PROCESS_TTL_SECONDS = 30.0


_process_accounts: dict[tuple[str, int], tuple[float, frozenset[str]]] = {}


def valid_account_codes(ctx: TenantContext) -> frozenset[str] | None:
    """Xero's active account codes: cached in the process briefly, and on the tenant row for an hour."""
    key = (ctx.settings.database_url, ctx.tenant_pk)
    cached_here = _process_accounts.get(key)
    if cached_here is not None and time.monotonic() - cached_here[0] < ACCOUNTS_PROCESS_TTL_SECONDS:
        return cached_here[1]
    codes = _tenant_account_codes(ctx)
    if codes is not None:
        _process_accounts[key] = (time.monotonic(), codes)
    return codes


def _tenant_account_codes(ctx: TenantContext) -> frozenset[str] | None:
    """Xero's active account codes, cached on the tenant row for an hour.

    A failed read is remembered for ACCOUNTS_RETRY_AFTER (`accounts_fetched_at` set with no codes, or
    a stale list kept a little longer): otherwise, on a cold cache during a Xero outage, every
    mapping task would call Xero again and again, and spend the tenant's minute limit doing it.
    """
    now = utcnow()
    with ctx.sessions() as session:
        tenant = session.get(Tenant, ctx.tenant_pk)
        assert tenant is not None
        fetched_at = tenant.accounts_fetched_at
        cached = tenant.account_codes
        paused_reason = tenant.pause_reason
    if cached is not None and fetched_at is not None and now - fetched_at < ACCOUNTS_TTL:
        return frozenset(str(code) for code in cached)
    left = paused_for(ctx)
    if left is not None:
        # No Xero calls while paused: an hour-old chart is better than spending a parked tenant's calls.
        if cached is not None:
            return frozenset(str(code) for code in cached)
        raise TenantPaused(f"tenant paused ({paused_reason}); mapping waits", retry_after=left)
    if cached is None and fetched_at is not None and now - fetched_at < ACCOUNTS_RETRY_AFTER:
        wait = (fetched_at + ACCOUNTS_RETRY_AFTER - now).total_seconds()
        raise SyncError(
            ErrorClass.TRANSIENT, "Xero's chart of accounts could not be read just now", api="xero", retry_after=wait
        )
    try:
        accounts = ctx.xero.get_accounts()
    except SyncError:
        with ctx.sessions() as session, session.begin():
            tenant = session.get(Tenant, ctx.tenant_pk)
            assert tenant is not None
            # Stale codes stay usable a little longer; without any, the failure itself is remembered.
            tenant.accounts_fetched_at = (now - ACCOUNTS_TTL + ACCOUNTS_RETRY_AFTER) if cached is not None else now
        if cached is not None:
            log.warning("xero chart of accounts unavailable; mapping with the list from %s", fetched_at)
            return frozenset(str(code) for code in cached)
        raise
    codes = sorted(
        str(a["Code"]) for a in accounts if a.get("Code") and str(a.get("Status", "ACTIVE")).upper() == "ACTIVE"
    )
    with ctx.sessions() as session, session.begin():
        tenant = session.get(Tenant, ctx.tenant_pk)
        assert tenant is not None
        tenant.account_codes = codes
        tenant.accounts_fetched_at = utcnow()
    return frozenset(codes)

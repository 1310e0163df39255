"""Read-only views of the ledger: counts by state, API usage, and "is everything settled yet"."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from pipeline.context import TenantContext
from pipeline.ledger.models import (
    IN_FLIGHT_STATES,
    ApiUsage,
    DeadLetter,
    DocumentState,
    SaleRecord,
    SaleState,
    SyncDocument,
)


@dataclass
class LedgerCounts:
    """Document counts by state, open sales and dead letters, and API calls made."""

    documents: dict[str, int] = field(default_factory=dict)
    sales_in_flight: int = 0
    open_dead_letters: int = 0
    xero_calls: int = 0
    xero_rate_limited: int = 0
    cin7_calls: int = 0

    @property
    def in_flight(self) -> int:
        """Documents (and sales) still on their way."""
        return self.sales_in_flight + sum(self.documents.get(s.value, 0) for s in IN_FLIGHT_STATES)

    def get(self, state: DocumentState) -> int:
        """Count of documents in one state."""
        return self.documents.get(state.value, 0)


def ledger_counts(ctx: TenantContext) -> LedgerCounts:
    """One consistent-enough snapshot of the tenant's ledger."""
    counts = LedgerCounts()
    with ctx.sessions() as session:
        for state, count in session.execute(
            select(SyncDocument.state, func.count())
            .where(SyncDocument.tenant_id == ctx.tenant_pk)
            .group_by(SyncDocument.state)
        ):
            counts.documents[str(state)] = int(count)
        counts.sales_in_flight = int(
            session.scalar(
                select(func.count())
                .select_from(SaleRecord)
                .where(
                    SaleRecord.tenant_id == ctx.tenant_pk,
                    SaleRecord.state.in_([SaleState.DISCOVERED, SaleState.RETRY]),
                )
            )
            or 0
        )
        counts.open_dead_letters = int(
            session.scalar(
                select(func.count())
                .select_from(DeadLetter)
                .where(DeadLetter.tenant_id == ctx.tenant_pk, DeadLetter.resolved_at.is_(None))
            )
            or 0
        )
        for api, calls, limited in session.execute(
            select(ApiUsage.api, func.sum(ApiUsage.calls), func.sum(ApiUsage.rate_limited))
            .where(ApiUsage.tenant_id == ctx.tenant_pk)
            .group_by(ApiUsage.api)
        ):
            if api == "xero":
                counts.xero_calls = int(calls or 0)
                counts.xero_rate_limited = int(limited or 0)
            elif api == "cin7":
                counts.cin7_calls = int(calls or 0)
    return counts


def wait_until_settled(
    ctx: TenantContext,
    *,
    timeout: float,
    started_after: Callable[[LedgerCounts], bool] | None = None,
    on_progress: Callable[[LedgerCounts], None] | None = None,
    interval: float = 0.25,
) -> LedgerCounts:
    """Block until nothing is in flight (and `started_after` holds, e.g. the poll has run).

    Raises TimeoutError with the last counts when the ledger does not settle in time.
    """
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while True:
        counts = ledger_counts(ctx)
        if on_progress is not None:
            on_progress(counts)
        settled = counts.in_flight == 0 and (started_after is None or started_after(counts))
        if settled:
            # Require two quiet readings: a fetch may be about to add documents.
            if quiet_since is not None and time.monotonic() - quiet_since >= interval:
                return counts
            quiet_since = quiet_since or time.monotonic()
        else:
            quiet_since = None
        if time.monotonic() > deadline:
            raise TimeoutError(f"ledger did not settle in {timeout:.0f}s: {counts}")
        time.sleep(interval)

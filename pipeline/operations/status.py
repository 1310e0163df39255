"""Read-only views of the ledger: counts by state, API usage, and "is everything settled yet"."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.contacts.push import push_backlog
from pipeline.context import (
    TenantContext,
    UsageCounts,
    ledger_usage,
    parse_usage_hash,
    shared_redis,
    usage_applied,
    usage_keys,
)
from pipeline.discovery.poll import SALES_STREAM
from pipeline.ledger.models import (
    IN_FLIGHT_STATES,
    ContactLink,
    DeadLetter,
    DocumentState,
    PollCursor,
    SaleRecord,
    SaleState,
    SyncDocument,
)

log = logging.getLogger(__name__)


@dataclass
class LedgerCounts:
    """Document counts by state, open sales and dead letters, and API calls made."""

    documents: dict[str, int] = field(default_factory=dict)
    #: The same counts per document kind (invoice, credit_note, payment, refund, allocation).
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    sales_in_flight: int = 0
    open_dead_letters: int = 0
    xero_calls: int = 0
    xero_rate_limited: int = 0
    cin7_calls: int = 0
    # Contact numbers and details that invoices could not carry, still to be sent (contacts.push_contacts).
    contacts_to_push: int = 0
    # Contact updates Xero refused, each kept with its reason on the link until the customer next changes.
    contact_pushes_refused: int = 0

    @property
    def in_flight(self) -> int:
        """Documents, sales and contact pushes still on their way."""
        return (
            self.sales_in_flight + self.contacts_to_push + sum(self.documents.get(s.value, 0) for s in IN_FLIGHT_STATES)
        )

    def get(self, state: DocumentState, kind: str | None = None) -> int:
        """Count of documents in one state (of one kind, when given)."""
        if kind is not None:
            return self.by_kind.get(kind, {}).get(state.value, 0)
        return self.documents.get(state.value, 0)


def ledger_counts(ctx: TenantContext) -> LedgerCounts:
    """One consistent-enough snapshot of the tenant's ledger."""
    counts = LedgerCounts()
    with ctx.sessions() as session:
        for kind, state, count in session.execute(
            select(SyncDocument.kind, SyncDocument.state, func.count())
            .where(SyncDocument.tenant_id == ctx.tenant_pk)
            .group_by(SyncDocument.kind, SyncDocument.state)
        ):
            counts.documents[str(state)] = counts.documents.get(str(state), 0) + int(count)
            counts.by_kind.setdefault(str(kind), {})[str(state)] = int(count)
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
        counts.contacts_to_push = push_backlog(ctx)[0]
        counts.contact_pushes_refused = int(
            session.scalar(
                select(func.count())
                .select_from(ContactLink)
                .where(ContactLink.tenant_id == ctx.tenant_pk, ContactLink.push_error.is_not(None))
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
        usage = api_usage(ctx, session)
    counts.xero_calls, counts.xero_rate_limited = usage.get("xero", (0, 0))
    counts.cin7_calls = usage.get("cin7", (0, 0))[0]
    return counts


@dataclass(frozen=True)
class LiveWindow:
    """What the live sync reads: sales changed since `covers_from`, read up to `watermark`."""

    lookback_days: int
    covers_from: datetime | None
    watermark: datetime | None
    last_polled_at: datetime | None
    sync_start_date: date | None = None

    def describe(self) -> str:
        """One line for `cin7xero status`."""
        cutover = (
            f"SYNC_START_DATE {self.sync_start_date}: documents dated before it are left to cin7xero migrate; "
            if self.sync_start_date is not None
            else "SYNC_START_DATE not set; "
        )
        if self.last_polled_at is None:
            first = (
                f"the first poll reads sales changed since {self.sync_start_date}"
                if self.sync_start_date is not None
                else f"the first poll reads sales changed in the last {self.lookback_days} days "
                "(CIN7_INITIAL_LOOKBACK_DAYS), nothing older"
            )
            return f"{cutover}not polled yet: {first}"
        start = (
            f"since {self.covers_from:%Y-%m-%d %H:%M} UTC"
            if self.covers_from is not None
            else "since before this ledger recorded its start"
        )
        seen = f"read up to {self.watermark:%Y-%m-%d %H:%M} UTC" if self.watermark else "no sale seen yet"
        return f"{cutover}sales changed {start}; {seen}; last poll {self.last_polled_at:%Y-%m-%d %H:%M} UTC"


def live_window(ctx: TenantContext) -> LiveWindow:
    """The window of Cin7 sales the live sync covers, from the sales poll's cursor."""
    with ctx.sessions() as session:
        cursor = session.scalar(
            select(PollCursor).where(PollCursor.tenant_id == ctx.tenant_pk, PollCursor.stream == SALES_STREAM)
        )
    return LiveWindow(
        lookback_days=ctx.settings.cin7_initial_lookback_days,
        covers_from=cursor.covers_from if cursor else None,
        watermark=cursor.watermark if cursor else None,
        last_polled_at=cursor.last_polled_at if cursor else None,
        sync_start_date=ctx.settings.sync_start_date,
    )


# A fold that finishes between our two Redis reads makes us read again; more than this many in a row
# means the sweep is folding in a tight loop, and the last reading is close enough.
_USAGE_READ_TRIES = 5


def api_usage(ctx: TenantContext, session: Session) -> dict[str, tuple[int, int]]:
    """Calls and 429s per API over all days: the ledger plus what workers counted in Redis since the last fold.

    Lock-free against the sweep's fold (pipeline.recovery.sweep.fold_api_usage): the ledger is read between two
    reads of the fold generation, and a folding hash already committed (its stamp says so) is not
    counted twice.
    """
    client = shared_redis(ctx.settings)
    keys = usage_keys(ctx.tenant_key)
    for _ in range(_USAGE_READ_TRIES):
        try:
            generation = client.get(keys.generation) if client is not None else None
        except redis.RedisError as exc:
            log.warning("API usage: Redis unavailable (%s); showing the ledger's counts only", exc)
            client = None
        ledger = ledger_usage(session, ctx.tenant_pk)
        session.rollback()  # a retry reads afresh, whatever the isolation level
        if client is None:
            return _by_api(ledger)
        try:
            pipe = client.pipeline(transaction=True)
            pipe.get(keys.generation)
            pipe.hgetall(keys.live)
            pipe.hgetall(keys.folding)
            generation_after, live, folding = pipe.execute()
        except redis.RedisError as exc:
            log.warning("API usage: Redis unavailable (%s); showing the ledger's counts only", exc)
            return _by_api(ledger)
        if generation_after != generation:
            continue
        break
    live_counts, _ = parse_usage_hash(live)
    folding_counts, bases = parse_usage_hash(folding)
    total = _by_api(ledger)
    for source in (live_counts, {} if usage_applied(folding_counts, bases, ledger) else folding_counts):
        for (_day, api), (calls, limited) in source.items():
            seen = total.get(api, (0, 0))
            total[api] = (seen[0] + calls, seen[1] + limited)
    return total


def _by_api(usage: UsageCounts) -> dict[str, tuple[int, int]]:
    total: dict[str, tuple[int, int]] = {}
    for (_day, api), (calls, limited) in usage.items():
        seen = total.get(api, (0, 0))
        total[api] = (seen[0] + calls, seen[1] + limited)
    return total


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

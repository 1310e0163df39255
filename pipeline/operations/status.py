"""Read-only views of the ledger: counts by state, API usage, and "is everything settled yet"."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.app import BROKER_ERRORS, WORK_QUEUES, queue_consumers
from pipeline.contacts.push import push_backlog
from pipeline.context import (
    TenantContext,
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
    utcnow,
)
from pipeline.operations.usage import api_usage_by_day, by_api

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


@dataclass(frozen=True)
class Liveness:
    """Whether beat and the workers are doing their jobs, as `cin7xero status` reports it."""

    #: Seconds since the sales poll last finished, None when it never has.
    since_last_poll: float | None
    poll_interval: float
    #: Workers that answered a broadcast, and the work queues no worker consumes (None: no broker).
    workers: int | None
    unconsumed: list[str]

    @property
    def beat_alive(self) -> bool:
        """A poll finished within three intervals (beat sends one each interval)."""
        return self.since_last_poll is not None and self.since_last_poll <= 3 * self.poll_interval

    def describe(self) -> list[str]:
        """Lines for `cin7xero status`."""
        if self.since_last_poll is None:
            beat = "beat: no poll has finished yet"
        else:
            state = "alive" if self.beat_alive else "NOT polling (is beat running?)"
            beat = f"beat: {state}, last poll {self.since_last_poll / 60:.1f} min ago (every {self.poll_interval:g} s)"
        if self.workers is None:
            workers = "workers: the broker cannot be reached"
        elif self.unconsumed:
            workers = f"workers: {self.workers} answered; NO worker consumes {', '.join(self.unconsumed)}"
        else:
            workers = f"workers: {self.workers} answered, every queue consumed"
        return [beat, workers]


def liveness(ctx: TenantContext, *, reply_seconds: float = 1.0) -> Liveness:
    """Ask the ledger when the last poll finished and the workers which queues they consume."""
    window = live_window(ctx)
    since = (utcnow() - window.last_polled_at).total_seconds() if window.last_polled_at is not None else None
    try:
        answered, consumers = queue_consumers(reply_seconds)
    except BROKER_ERRORS as exc:
        log.warning("status: workers could not be asked: %s", exc)
        return Liveness(since, ctx.settings.poll_interval_seconds, None, [])
    unconsumed = [queue.value for queue in WORK_QUEUES if consumers.get(queue.value, 0) == 0]
    return Liveness(since, ctx.settings.poll_interval_seconds, answered, unconsumed)


def usage_today(ctx: TenantContext) -> dict[str, tuple[int, int]]:
    """Calls and 429s per API today (UTC), the day Xero's daily limit counts."""
    today = utcnow().date().isoformat()
    with ctx.sessions() as session:
        by_day = api_usage_by_day(ctx.settings, ctx.tenant_key, ctx.tenant_pk, session)
    return {api: counts for (day, api), counts in by_day.items() if day == today}


def api_usage(ctx: TenantContext, session: Session) -> dict[str, tuple[int, int]]:
    """Calls and 429s per API over all days (`api_usage_by_day`, summed)."""
    return by_api(api_usage_by_day(ctx.settings, ctx.tenant_key, ctx.tenant_pk, session))


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

"""Prometheus metrics of the pipeline, read from the ledger, the broker and the workers on scrape.

One `PipelineCollector` serves every tenant in the ledger. A scrape runs a handful of grouped queries
(one per metric, bounded by tenants x kinds x states, never by documents), reads queue depths from the
broker and asks the workers which queues they consume; the result is kept for `METRICS_CACHE_SECONDS`,
so scrapes from several Prometheus replicas, or a dashboard refreshing, cost one read. A part that
cannot be read (the broker down, say) is left out of that scrape and counted in
`cin7xero_metrics_read_errors_total{part}`, so the rest still arrives and the failure is visible.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.app import QueueName, queue_backlog, queue_consumers
from pipeline.db import engine_for
from pipeline.ledger.models import (
    IN_FLIGHT_STATES,
    DeadLetter,
    PollCursor,
    SaleRecord,
    SaleState,
    SyncDocument,
    Tenant,
    utcnow,
)
from pipeline.operations.usage import api_usage_by_day
from pipeline.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "cin7xero"
#: Every series name a scrape serves, as PromQL names them (counters with `_total`); the alert rules
#: and the dashboard in deploy/monitoring/ may use only these.
METRIC_NAMES = frozenset(
    {
        "cin7xero_documents",
        "cin7xero_dead_letters_open",
        "cin7xero_sync_lag_seconds",
        "cin7xero_last_poll_success_timestamp_seconds",
        "cin7xero_tenant_paused",
        "cin7xero_api_calls_total",
        "cin7xero_api_rate_limited_total",
        "cin7xero_xero_day_calls_remaining",
        "cin7xero_queue_depth",
        "cin7xero_queue_consumers",
        "cin7xero_workers",
        "cin7xero_metrics_read_errors_total",
    }
)
# Workers answer a broadcast within this long, or count as not consuming.
WORKER_REPLY_SECONDS = 1.0


@dataclass(frozen=True)
class _Tenant:
    pk: int
    key: str
    paused: bool


class PipelineCollector(Collector):
    """Every cin7xero_* metric, for every tenant, cached for `cache_seconds` between reads."""

    def __init__(self, settings: Settings, *, cache_seconds: float | None = None) -> None:
        self._settings = settings
        self._cache_seconds = settings.metrics_cache_seconds if cache_seconds is None else cache_seconds
        self._lock = threading.Lock()
        self._families: list[Metric] = []
        self._read_at = float("-inf")
        self._read_errors: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        """The cached families, read afresh once they are older than the cache allows."""
        with self._lock:
            if time.monotonic() - self._read_at >= self._cache_seconds:
                self._families = self._read()
                self._read_at = time.monotonic()
            families = list(self._families)
        yield from families

    def _read(self) -> list[Metric]:
        families: list[Metric] = []
        parts: list[tuple[str, Callable[[], Iterable[Metric]]]] = [
            ("ledger", self._ledger_families),
            ("broker", self._queue_families),
            ("workers", self._worker_families),
        ]
        for part, read in parts:
            try:
                families.extend(read())
            except Exception as exc:  # noqa: BLE001 - one unreadable part must not blank the whole scrape
                log.warning("metrics: %s unreadable: %s", part, exc)
                self._read_errors[part] = self._read_errors.get(part, 0) + 1
        errors = CounterMetricFamily(
            f"{PREFIX}_metrics_read_errors", "Scrapes that could not read one part of the metrics.", labels=["part"]
        )
        for part, _ in parts:
            errors.add_metric([part], self._read_errors.get(part, 0))
        families.append(errors)
        return families

    # --- the ledger ------------------------------------------------------------------------------------
    def _ledger_families(self) -> list[Metric]:
        with Session(engine_for(self._settings.database_url)) as session:
            now = utcnow()
            tenants = {
                row.id: _Tenant(row.id, row.key, row.paused_until is not None and row.paused_until > now)
                for row in session.scalars(select(Tenant))
            }
            families = [
                _documents(session, tenants),
                _dead_letters(session, tenants),
                _sync_lag(session, tenants, now),
                _last_polls(session, tenants),
                _paused(tenants),
            ]
            families.extend(self._usage(session, tenants))
        return families

    def _usage(self, session: Session, tenants: dict[int, _Tenant]) -> list[Metric]:
        calls = CounterMetricFamily(f"{PREFIX}_api_calls", "Calls made to each API.", labels=["tenant", "api"])
        limited = CounterMetricFamily(
            f"{PREFIX}_api_rate_limited", "Calls each API answered with 429.", labels=["tenant", "api"]
        )
        remaining = GaugeMetricFamily(
            f"{PREFIX}_xero_day_calls_remaining",
            "Xero calls left today (UTC) of XERO_CALLS_PER_DAY.",
            labels=["tenant"],
        )
        today = datetime.now(UTC).date().isoformat()
        for tenant in tenants.values():
            by_day = api_usage_by_day(self._settings, tenant.key, tenant.pk, session)
            totals: dict[str, tuple[int, int]] = {}
            for (_day, api), (made, refused) in by_day.items():
                seen = totals.get(api, (0, 0))
                totals[api] = (seen[0] + made, seen[1] + refused)
            for api in sorted(set(totals) | {"cin7", "xero"}):
                made, refused = totals.get(api, (0, 0))
                calls.add_metric([tenant.key, api], made)
                limited.add_metric([tenant.key, api], refused)
            used_today = by_day.get((today, "xero"), (0, 0))[0]
            remaining.add_metric([tenant.key], max(0, self._settings.xero_calls_per_day - used_today))
        return [calls, limited, remaining]

    # --- the broker and the workers --------------------------------------------------------------------
    def _queue_families(self) -> list[Metric]:
        depths = queue_backlog(list(QueueName))
        if depths is None:
            raise RuntimeError("the broker did not answer")
        depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Messages waiting in each queue.", labels=["queue"])
        for queue, count in sorted(depths.items()):
            depth.add_metric([queue.value], count)
        return [depth]

    def _worker_families(self) -> list[Metric]:
        answered, counts = queue_consumers(WORKER_REPLY_SECONDS)
        consumers = GaugeMetricFamily(
            f"{PREFIX}_queue_consumers", "Workers consuming each queue (0: nothing takes its tasks).", labels=["queue"]
        )
        for name, count in sorted(counts.items()):
            consumers.add_metric([name], count)
        workers = GaugeMetricFamily(f"{PREFIX}_workers", "Workers that answered the last scrape's broadcast.")
        workers.add_metric([], answered)
        return [consumers, workers]


def _documents(session: Session, tenants: dict[int, _Tenant]) -> Metric:
    family = GaugeMetricFamily(
        f"{PREFIX}_documents", "Ledger documents by kind and state.", labels=["tenant", "kind", "state"]
    )
    rows = session.execute(
        select(SyncDocument.tenant_id, SyncDocument.kind, SyncDocument.state, func.count()).group_by(
            SyncDocument.tenant_id, SyncDocument.kind, SyncDocument.state
        )
    )
    for tenant_id, kind, state, count in rows:
        if tenant_id in tenants:
            family.add_metric([tenants[tenant_id].key, str(kind), str(state)], int(count))
    return family


def _dead_letters(session: Session, tenants: dict[int, _Tenant]) -> Metric:
    family = GaugeMetricFamily(
        f"{PREFIX}_dead_letters_open",
        "Open dead letters by document kind and error class.",
        labels=["tenant", "kind", "error_class"],
    )
    rows = session.execute(
        select(DeadLetter.tenant_id, DeadLetter.kind, DeadLetter.error_class, func.count())
        .where(DeadLetter.resolved_at.is_(None))
        .group_by(DeadLetter.tenant_id, DeadLetter.kind, DeadLetter.error_class)
    )
    for tenant_id, kind, error_class, count in rows:
        if tenant_id in tenants:
            family.add_metric([tenants[tenant_id].key, str(kind), str(error_class)], int(count))
    return family


def _sync_lag(session: Session, tenants: dict[int, _Tenant], now: datetime) -> Metric:
    """How long the oldest document discovered and not yet settled has waited (0 when none waits)."""
    family = GaugeMetricFamily(
        f"{PREFIX}_sync_lag_seconds",
        "Age of the oldest document discovered and not yet settled (synced, dead, ignored...).",
        labels=["tenant"],
    )
    oldest: dict[int, datetime] = {}
    documents = session.execute(
        select(SyncDocument.tenant_id, func.min(SyncDocument.discovered_at))
        .where(SyncDocument.state.in_([state.value for state in IN_FLIGHT_STATES]))
        .group_by(SyncDocument.tenant_id)
    )
    parents = session.execute(
        select(SaleRecord.tenant_id, func.min(SaleRecord.discovered_at))
        .where(SaleRecord.state.in_([SaleState.DISCOVERED.value, SaleState.RETRY.value]))
        .group_by(SaleRecord.tenant_id)
    )
    for tenant_id, first in [*documents, *parents]:
        if first is not None and (tenant_id not in oldest or first < oldest[tenant_id]):
            oldest[tenant_id] = first
    for tenant in tenants.values():
        first = oldest.get(tenant.pk)
        family.add_metric([tenant.key], max(0.0, (now - first).total_seconds()) if first is not None else 0.0)
    return family


def _last_polls(session: Session, tenants: dict[int, _Tenant]) -> Metric:
    family = GaugeMetricFamily(
        f"{PREFIX}_last_poll_success_timestamp_seconds",
        "When each Cin7 stream was last polled to the end (Unix time).",
        labels=["tenant", "stream"],
    )
    for cursor in session.scalars(select(PollCursor).where(PollCursor.last_polled_at.is_not(None))):
        if cursor.tenant_id in tenants and cursor.last_polled_at is not None:
            stamp = cursor.last_polled_at
            stamp = stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
            family.add_metric([tenants[cursor.tenant_id].key, cursor.stream], stamp.timestamp())
    return family


def _paused(tenants: dict[int, _Tenant]) -> Metric:
    family = GaugeMetricFamily(
        f"{PREFIX}_tenant_paused",
        "1 while the tenant's writes are held (day limit, revoked access...).",
        labels=["tenant"],
    )
    for tenant in tenants.values():
        family.add_metric([tenant.key], 1.0 if tenant.paused else 0.0)
    return family


def pipeline_registry(settings: Settings) -> CollectorRegistry:
    """A registry holding only the pipeline's metrics (no process metrics of whoever serves them)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(settings))
    return registry

"""A whole pipeline per test: stand-ins over HTTP, a fresh ledger, Redis, and real worker processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pipeline.app import TaskName, send
from pipeline.cli.demo import Verification, dead_letter_reasons, verify
from pipeline.context import TenantContext, tenant_context
from pipeline.ledger.models import PollCursor, SyncDocument
from pipeline.operations.status import LedgerCounts, wait_until_settled
from pipeline.runtime import reload_runtime
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.generator import Dataset, generate
from pipeline.standins.xero import XeroStandIn
from pipeline.workerpool import WorkerPool
from tests.pipeline.environment import pipeline_env
from tests.pipeline.inprocess import MAX_ATTEMPTS, in_process

pytestmark = pytest.mark.pipeline


@dataclass
class Pipeline:
    """One running pipeline and the handles a test needs to drive and inspect it."""

    dataset: Dataset
    cin7: Cin7StandIn
    xero: XeroStandIn
    env: dict[str, str]
    workers: WorkerPool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ctx(self) -> TenantContext:
        """The tenant context of this test process (same ledger as the workers)."""
        return tenant_context()

    def _polled_at(self) -> datetime | None:
        # The stream a poll reads last: purchases come after sales when they are synced.
        stream = "purchases" if self.env.get("SYNC_PURCHASES") == "true" else "sales"
        with self.ctx.sessions() as session:
            return session.scalar(select(PollCursor.last_polled_at).where(PollCursor.stream == stream))

    def poll_and_wait(self, timeout: float = 90) -> LedgerCounts:
        """Send one poll through the broker and wait until the ledger settles."""
        before = self._polled_at()
        send(TaskName.POLL, self.ctx.tenant_key)

        def polled(_counts: LedgerCounts) -> bool:
            after = self._polled_at()
            return after is not None and (before is None or after > before)

        try:
            return wait_until_settled(self.ctx, timeout=timeout, started_after=polled)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n--- worker logs ---\n{self.workers.logs()}") from exc

    def dead_reasons(self) -> dict[str, list[str]]:
        """Open dead letters by document number (an invoice's bare, any other kind's as "kind number")."""
        with self.ctx.sessions() as session:
            return dead_letter_reasons(session)

    def documents(self, kind: str = "invoice") -> dict[str, SyncDocument]:
        """Ledger documents of one kind by number (payments share their invoice's: use `rows`)."""
        with self.ctx.sessions() as session:
            return {
                str(d.document_number): d
                for d in session.scalars(select(SyncDocument).where(SyncDocument.kind == kind))
            }

    def rows(self, kind: str) -> list[SyncDocument]:
        """Every ledger document of one kind."""
        with self.ctx.sessions() as session:
            return list(
                session.scalars(select(SyncDocument).where(SyncDocument.kind == kind).order_by(SyncDocument.id))
            )

    def verify(self, conflicts: set[str] | None = None) -> Verification:
        """The demo's checks: totals to the cent, one contact per customer, reasons for every rejection."""
        return verify(self.dataset, self.cin7, self.xero, self.dead_reasons(), conflicts=conflicts or set())

    def xero_writes(self) -> int:
        """PUT/POST calls Xero has received."""
        by_endpoint: dict[str, int] = self.xero.stats().get("by_endpoint", {})
        return sum(n for name, n in by_endpoint.items() if name.split(" ")[0] in ("PUT", "POST"))


@pytest.fixture
def make_pipeline(
    database_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Pipeline]]:
    """Build a pipeline: `make_pipeline(sales=60, seed=3, workers=1, xero={...}, cin7={...}, settings={...})`."""
    started: list[Pipeline] = []

    def build(
        *,
        sales: int = 60,
        seed: int = 11,
        workers: int = 1,
        concurrency: int = 2,
        xero: dict[str, Any] | None = None,
        cin7: dict[str, Any] | None = None,
        dataset: Dataset | None = None,
        settings: dict[str, str] | None = None,
    ) -> Pipeline:
        dataset = dataset or generate(seed, sales, now=datetime.now(UTC))
        cin7_standin = Cin7StandIn(dataset=dataset, **(cin7 or {})).start()
        xero_standin = XeroStandIn(seed_contacts=dataset.xero_contacts, **(xero or {})).start()
        env = {**pipeline_env(database_url, redis_url, cin7_standin, xero_standin), **(settings or {})}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reload_runtime()
        pool = WorkerPool(env={**os.environ, **env}, logdir=tmp_path, processes=[])
        pipeline = Pipeline(dataset, cin7_standin, xero_standin, env, pool)
        started.append(pipeline)
        for index in range(workers):
            pool.start(f"w{index}", concurrency=concurrency, beat=index == 0)
        return pipeline

    yield build
    for pipeline in started:
        pipeline.workers.stop_all()
        pipeline.cin7.stop()
        pipeline.xero.stop()
    monkeypatch.undo()
    reload_runtime()


@pytest.fixture(params=["redis", "ledger"])
def inproc(
    request: pytest.FixtureRequest, database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """A polled tenant (every sale discovered, nothing fetched) whose tasks run in this process,
    counting deliveries in Redis or in the ledger (tests.pipeline.inprocess.InProcess)."""

    yield from in_process(
        request.param == "redis", database_url, redis_url, monkeypatch, max_attempts=MAX_ATTEMPTS, sales=6
    )

"""Chaos pipelines: the pipeline of tests/pipeline, with compressed timings and handles for breaking things.

Each test gets its own redis-server process when the binary is available, so that "Redis restarted
empty" is a real restart (and no other test's workers share its broker); otherwise it falls back to
the shared server's per-test database and FLUSHDB.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from sqlalchemy import select

from pipeline.app import TaskName, send
from pipeline.ledger.models import DeadLetter, DocumentState, PollCursor
from pipeline.operations.status import LedgerCounts, ledger_counts, wait_until_settled
from pipeline.runtime import reload_runtime
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.generator import generate
from pipeline.standins.xero import XeroStandIn
from pipeline.workerpool import WorkerPool
from tests.conftest import POSTGRES_URL
from tests.pipeline.conftest import Pipeline
from tests.pipeline.environment import pipeline_env

pytestmark = pytest.mark.pipeline

# Timings compressed so that each scenario heals within seconds (production defaults in brackets).
CHAOS_ENV = {
    "STUCK_AFTER_SECONDS": "5",  # [60] the lease of a message in flight: past it, a row is sent again
    "SWEEP_INTERVAL_SECONDS": "2",  # [30]
    "MAX_ATTEMPTS": "8",
    # Redis hands an unacked message (its worker was SIGKILLed) to another worker after this [3600].
    "BROKER_VISIBILITY_TIMEOUT_SECONDS": "15",
}


class PrivateRedis:
    """A redis-server without persistence on a free port, which a test may kill and restart empty."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Broker and limiter URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        """Start the server and wait until it answers."""
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis.from_url(self.url).ping():
                    return self
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        """Kill the server (SIGKILL: nothing is saved, as in a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def restart_empty(self) -> None:
        """A crash and a restart without persistence: every queued and unacked message is gone."""
        self.stop()
        self.start()


@dataclass
class Chaos:
    """A running pipeline plus the means to break it."""

    p: Pipeline
    redis_url: str
    database_name: str
    private_redis: PrivateRedis | None
    logdir: Path

    # --- driving ---------------------------------------------------------------------------------
    def polled_at(self) -> datetime | None:
        """When the last sales poll finished."""
        with self.p.ctx.sessions() as session:
            return session.scalar(select(PollCursor.last_polled_at).where(PollCursor.stream == "sales"))

    def start_poll(self) -> datetime | None:
        """Send a poll; return the previous poll time for `settle`."""
        before = self.polled_at()
        send(TaskName.POLL, self.p.ctx.tenant_key)
        return before

    def wait_for(self, condition: Callable[[LedgerCounts], bool], timeout: float = 30, what: str = "") -> LedgerCounts:
        """Wait until the ledger satisfies `condition`."""
        deadline = time.monotonic() + timeout
        while True:
            counts = ledger_counts(self.p.ctx)
            if condition(counts):
                return counts
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or condition}: {counts}\n{self.p.workers.logs()}")
            time.sleep(0.1)

    def poll_until_first_synced(self) -> datetime | None:
        """Send a poll and wait for its first invoices in Xero; return the previous poll time for `settle`."""
        before = self.start_poll()
        self.wait_for(lambda c: c.get(DocumentState.SYNCED) > 0, what="the first invoices in Xero")
        return before

    def settle_through_xero_faults(self, **faults: Any) -> LedgerCounts:
        """Poll; once the first invoices are in Xero, set Xero's `faults`; wait until the poll has settled."""
        before = self.poll_until_first_synced()
        self.p.xero.set_faults(**faults)
        return self.settle(before)

    def settle(self, before: datetime | None, timeout: float = 90) -> LedgerCounts:
        """Wait until the poll sent after `before` has run and nothing is in flight."""

        def polled(_counts: LedgerCounts) -> bool:
            after = self.polled_at()
            return after is not None and (before is None or after > before)

        try:
            return wait_until_settled(self.p.ctx, timeout=timeout, started_after=polled, interval=0.5)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n--- worker logs ---\n{self.p.workers.logs()}") from exc

    # --- breaking ----------------------------------------------------------------------------------
    def kill_workers(self) -> None:
        """SIGKILL every worker process still running, and forget them all (a host losing its processes)."""
        for process in list(self.p.workers.processes):
            if process.poll() is None:
                self.p.workers.kill(process)
        self.p.workers.processes.clear()

    def restart_workers(self) -> None:
        """Start two workers again after `kill_workers`, the first with beat."""
        self.p.workers.start("w0", beat=True)
        self.p.workers.start("w1")

    def empty_redis(self) -> None:
        """Redis restarted without persistence: every queued, unacked and scheduled message is lost."""
        if self.private_redis is not None:
            self.private_redis.restart_empty()
        else:
            redis.Redis.from_url(self.redis_url).flushdb()

    def kill_database_connections(self) -> int:
        """Terminate every session of this test's database (PostgreSQL restarting, as clients see it)."""
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.database_name,),
            ).fetchall()
        return len(rows)

    # --- judging -----------------------------------------------------------------------------------
    def log_text(self) -> str:
        """Every worker log in full."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logdir.glob("*.log")))

    def open_dead_letter_classes(self) -> Counter[str]:
        """Open dead letters counted by error class."""
        with self.p.ctx.sessions() as session:
            return Counter(
                str(d.error_class) for d in session.scalars(select(DeadLetter).where(DeadLetter.resolved_at.is_(None)))
            )

    def assert_exactly_once(self) -> None:
        """Every good invoice in Xero once with Cin7's totals; every bad one a dead letter with its reason,
        and no other dead letter (a transient fault must never become something a person is told about)."""
        verification = self.p.verify()
        assert verification.ok, verification.problems
        expected_dead = {e.invoice_number for e in self.p.dataset.expectations if e.outcome.startswith("dead")}
        reasons = self.p.dead_reasons()
        assert set(reasons) == expected_dead, {k: v for k, v in reasons.items() if k not in expected_dead}
        expected_classes = Counter(
            "mapping" if e.outcome == "dead_mapping" else "validation"
            for e in self.p.dataset.expectations
            if e.outcome.startswith("dead")
        )
        assert self.open_dead_letter_classes() == expected_classes
        synced = [e for e in self.p.dataset.expectations if e.outcome == "synced"]
        in_xero = [i for i in self.p.xero.invoices() if i["Type"] == "ACCREC"]
        assert len(in_xero) == len(synced)


@pytest.fixture
def make_chaos(
    database_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Chaos]]:
    """Build a chaos pipeline: `make_chaos(sales=30, workers=2, xero={...}, env={...})`."""
    started: list[Chaos] = []

    def build(
        *,
        sales: int = 30,
        seed: int = 11,
        workers: int = 2,
        concurrency: int = 2,
        xero: dict[str, Any] | None = None,
        cin7: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        queues: list[str] | None = None,
    ) -> Chaos:
        private = PrivateRedis(tmp_path).start() if shutil.which("redis-server") else None
        url = private.url if private is not None else redis_url
        dataset = generate(seed, sales, now=datetime.now(UTC))
        cin7_standin = Cin7StandIn(dataset=dataset, **(cin7 or {})).start()
        xero_standin = XeroStandIn(seed_contacts=dataset.xero_contacts, **(xero or {})).start()
        settings = {**pipeline_env(database_url, url, cin7_standin, xero_standin), **CHAOS_ENV, **(env or {})}
        for key, value in settings.items():
            monkeypatch.setenv(key, value)
        reload_runtime()
        pool = WorkerPool(env={**os.environ, **settings}, logdir=tmp_path, processes=[])
        pipeline = Pipeline(dataset, cin7_standin, xero_standin, settings, pool)
        chaos = Chaos(pipeline, url, database_url.rsplit("/", 1)[1], private, tmp_path)
        started.append(chaos)
        for index in range(workers):
            worker_queues = queues[index] if queues else "cin7,mapping,xero,maintenance"
            pool.start(f"w{index}", concurrency=concurrency, beat=index == 0, queues=worker_queues)
        return chaos

    yield build
    for chaos in started:
        chaos.p.workers.stop_all()
        chaos.p.cin7.stop()
        chaos.p.xero.stop()
        if chaos.private_redis is not None:
            chaos.private_redis.stop()
    monkeypatch.undo()
    reload_runtime()

"""Task bodies run in the test process against the stand-ins, a fresh ledger and Redis, messages collected.

For tests that need to reach inside a task (make the work "kill its worker", fail, or wait) and then
look at exactly what the task counted, recorded and sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from sqlalchemy import select

import pipeline.app
import tasks.sync
from pipeline.context import TenantContext, tenant_context
from pipeline.ledger.models import DeadLetter, SyncDocument
from pipeline.runtime import reload_runtime
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.generator import Dataset, generate
from pipeline.standins.xero import XeroStandIn
from tests.pipeline.environment import pipeline_env

# What the in-process tenant allows before a delivery is poison: small, so tests reach it quickly.
MAX_ATTEMPTS = 3


class WorkerDied(BaseException):
    """Stands for a worker killed mid-task: not an Exception, so no handler in the task catches it."""


def die(*_args: Any, **_kwargs: Any) -> Any:
    """A replacement for the work that kills the worker."""
    raise WorkerDied


def deliver(task: Callable[..., Any], *args: Any) -> bool:
    """One delivery of a task; False when it "killed its worker"."""
    try:
        task(*args)
    except WorkerDied:
        return False
    return True


@dataclass(frozen=True)
class Sent:
    """One message a task would have sent."""

    task: str
    args: tuple[Any, ...]
    countdown: float | None


@dataclass
class InProcess:
    """Task bodies run here, their messages collected instead of sent."""

    ctx: TenantContext
    uses_redis: bool
    dataset: Dataset
    cin7: Cin7StandIn
    xero: XeroStandIn
    sent: list[Sent] = field(default_factory=list)

    def messages(self, task: str) -> list[tuple[Any, ...]]:
        """Arguments of the messages sent for one task name."""
        return [message.args for message in self.sent if message.task == task]

    def letters(self) -> list[DeadLetter]:
        """Open dead letters."""
        with self.ctx.sessions() as session:
            return list(session.scalars(select(DeadLetter).where(DeadLetter.resolved_at.is_(None))))

    def document(self, doc_id: int) -> SyncDocument:
        """One ledger document."""
        with self.ctx.sessions() as session:
            doc = session.get(SyncDocument, doc_id)
            assert doc is not None
            return doc

    def documents(self) -> list[SyncDocument]:
        """Every ledger document."""
        with self.ctx.sessions() as session:
            return list(session.scalars(select(SyncDocument)))

    def redis_count(self, kind: str, ident: str | int) -> int:
        """The delivery count kept in Redis (0 when none)."""
        if not self.uses_redis:
            return 0
        raw = redis.Redis.from_url(self.ctx.settings.redis_url).get(
            f"cin7xero:deliveries:{self.ctx.tenant_key}:{kind}:{ident}"
        )
        return int(raw or 0)


def first_sale(p: InProcess) -> str:
    """The first sale the poll discovered."""
    return str(p.messages("cin7xero.fetch_sale")[0][1])


def in_process(
    uses_redis: bool,
    database_url: str,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    max_attempts: int,
    sales: int = 4,
) -> Iterator[InProcess]:
    """A polled tenant (every sale discovered, nothing fetched) whose tasks run in this process.

    Without Redis, REDIS_URL is empty: the pipeline then counts in the ledger (the broker is still
    Redis, but nothing is sent through it).
    """
    dataset = generate(7, sales, now=datetime.now(UTC), hostile=False)
    cin7 = Cin7StandIn(dataset=dataset).start()
    xero = XeroStandIn(seed_contacts=dataset.xero_contacts).start()
    env = pipeline_env(database_url, redis_url, cin7, xero)
    env["MAX_ATTEMPTS"] = str(max_attempts)
    # These tests drive one sale's fetch at a time; fetch_sales groups have tests of their own.
    env["CIN7_FETCH_GROUP_SIZE"] = "1"
    if not uses_redis:
        env["REDIS_URL"] = ""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reload_runtime()
    state = InProcess(tenant_context(), uses_redis=uses_redis, dataset=dataset, cin7=cin7, xero=xero)

    def capture(task: Any, *args: Any, countdown: float | None = None) -> None:
        state.sent.append(Sent(str(task), args, countdown))

    # Every stage enqueues through pipeline.app.send: one patch catches every message.
    monkeypatch.setattr(pipeline.app, "send", capture)
    tasks.sync.poll.run(state.ctx.tenant_key)
    try:
        yield state
    finally:
        monkeypatch.undo()
        reload_runtime()
        cin7.stop()
        xero.stop()

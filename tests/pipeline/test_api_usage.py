"""API usage counted in Redis, folded into the ledger by the sweep, and read exactly in between.

No workers here: a recorder, the fold and the reader against a real PostgreSQL ledger and Redis,
including folds that die half way and folds racing readers and recorders.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import func, select

from pipeline.context import (
    USAGE_BASE_PREFIX,
    TenantContext,
    UsageRecorder,
    add_usage,
    ledger_usage,
    parse_usage_hash,
    tenant_context,
    usage_keys,
)
from pipeline.ledger.models import ApiUsage
from pipeline.operations.status import ledger_counts
from pipeline.recovery.sweep import fold_api_usage
from pipeline.runtime import reload_runtime

pytestmark = pytest.mark.pipeline


def _context(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str) -> TenantContext:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CELERY_BROKER_URL", redis_url or "memory://localhost/")
    monkeypatch.setenv("TENANT_KEY", "default")
    reload_runtime()
    return tenant_context()


@pytest.fixture
def ctx(database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantContext]:
    """A tenant on a fresh ledger with a Redis of its own."""
    yield _context(monkeypatch, database_url, redis_url)
    monkeypatch.undo()
    reload_runtime()


def _recorder(ctx: TenantContext) -> UsageRecorder:
    return UsageRecorder(ctx.sessions, ctx.tenant_pk, ctx.tenant_key, ctx.settings)


def _ledger_rows(ctx: TenantContext) -> int:
    with ctx.sessions() as session:
        return int(session.scalar(select(func.coalesce(func.sum(ApiUsage.calls), 0))) or 0)


def _usage(ctx: TenantContext) -> tuple[int, int, int]:
    counts = ledger_counts(ctx)
    return counts.xero_calls, counts.xero_rate_limited, counts.cin7_calls


def test_calls_are_counted_in_redis_and_read_exactly_before_and_after_the_fold(ctx: TenantContext) -> None:
    record = _recorder(ctx)
    for _ in range(5):
        record("xero", 200)
    record("xero", 429)
    for _ in range(3):
        record("cin7", 200)

    # No ledger transaction per call, yet the numbers are exact at once.
    assert _ledger_rows(ctx) == 0
    assert _usage(ctx) == (6, 1, 3)

    assert fold_api_usage(ctx) == 9
    assert _ledger_rows(ctx) == 9
    assert _usage(ctx) == (6, 1, 3)
    client = redis.Redis.from_url(ctx.settings.redis_url)
    keys = usage_keys(ctx.tenant_key)
    assert not client.exists(keys.live) and not client.exists(keys.folding)

    record("xero", 200)
    assert _usage(ctx) == (7, 1, 3)
    assert fold_api_usage(ctx) == 1
    assert fold_api_usage(ctx) == 0
    assert _usage(ctx) == (7, 1, 3)


@pytest.mark.parametrize("died", ["after_rename", "after_stamp", "after_commit"])
def test_a_fold_that_died_half_way_is_finished_by_the_next_without_losing_or_doubling(
    ctx: TenantContext, died: str
) -> None:
    record = _recorder(ctx)
    for _ in range(4):
        record("xero", 200)
    record("cin7", 200)
    fold_api_usage(ctx)
    for _ in range(2):
        record("xero", 200)
    record("xero", 429)
    expected = (7, 1, 1)
    assert _usage(ctx) == expected

    # Replay the fold's steps by hand up to where it "died".
    client = redis.Redis.from_url(ctx.settings.redis_url)
    keys = usage_keys(ctx.tenant_key)
    client.rename(keys.live, keys.folding)
    if died in ("after_stamp", "after_commit"):
        counts, _ = parse_usage_hash(client.hgetall(keys.folding))
        with ctx.sessions() as session, session.begin():
            ledger = ledger_usage(session, ctx.tenant_pk, counts)
            for (day, api), (calls, limited) in ledger.items():
                client.hset(keys.folding, f"{USAGE_BASE_PREFIX}{day}|{api}|calls", calls)
                client.hset(keys.folding, f"{USAGE_BASE_PREFIX}{day}|{api}|429", limited)
            if died == "after_commit":
                add_usage(session, ctx.tenant_pk, counts)
    # Workers go on counting meanwhile.
    record("cin7", 200)
    expected = (7, 1, 2)

    assert _usage(ctx) == expected
    fold_api_usage(ctx)
    assert _usage(ctx) == expected
    assert _ledger_rows(ctx) == 9
    assert not client.exists(keys.live) and not client.exists(keys.folding)


def test_readers_never_see_a_call_twice_or_miss_one_while_folds_and_recorders_race(ctx: TenantContext) -> None:
    recorders = 3
    enough = threading.Event()  # the recorders stop once the race has really been run
    done = threading.Event()
    recorded = [0] * recorders
    problems: list[str] = []
    folds_that_moved: list[int] = []
    readings: list[int] = []

    def count(index: int) -> None:
        record = _recorder(ctx)
        deadline = time.monotonic() + 30
        while not enough.is_set() and time.monotonic() < deadline:
            record("xero", 429 if recorded[index] % 7 == 0 else 200)
            recorded[index] += 1

    def fold() -> None:
        while not done.is_set():
            moved = fold_api_usage(ctx)
            if moved:
                folds_that_moved.append(moved)

    def read() -> None:
        last = 0
        while not done.is_set():
            before = sum(recorded)
            seen = ledger_counts(ctx).xero_calls
            after = sum(recorded)
            # A reading lies between the calls finished before it and those finished after it (a
            # recorder may have counted in Redis and not yet here).
            if not before <= seen <= after + recorders or seen < last:
                problems.append(f"read {seen} between {before} and {after}, after {last}")
            last = seen
            readings.append(seen)
            if len(readings) >= 100 and len(folds_that_moved) >= 20:
                enough.set()

    background = [threading.Thread(target=fold), threading.Thread(target=read)]
    counting = [threading.Thread(target=count, args=(i,)) for i in range(recorders)]
    for thread in background + counting:
        thread.start()
    for thread in counting:
        thread.join()
    done.set()
    for thread in background:
        thread.join()

    assert not problems, problems[:5]
    assert enough.is_set(), (len(folds_that_moved), len(readings))
    total = sum(recorded)
    assert ledger_counts(ctx).xero_calls == total
    fold_api_usage(ctx)
    assert _ledger_rows(ctx) == total
    assert _usage(ctx)[1] == sum(len(range(0, n, 7)) for n in recorded)


def test_without_redis_each_call_is_a_ledger_upsert(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = _context(monkeypatch, database_url, "")
    try:
        record = _recorder(ctx)
        record("xero", 200)
        record("xero", 429)
        assert _ledger_rows(ctx) == 2
        assert _usage(ctx) == (2, 1, 0)
        assert fold_api_usage(ctx) == 0
    finally:
        monkeypatch.undo()
        reload_runtime()

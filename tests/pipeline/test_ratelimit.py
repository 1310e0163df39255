"""Shared rate limits: several processes, one Redis, one limit."""

from __future__ import annotations

import multiprocessing
import threading
import time
from bisect import bisect_left

import pytest
import redis

from pipeline.ratelimit import LocalRateLimiter, RateLimitTimeout, RedisRateLimiter
from pipeline.settings import Settings
from pipeline.source.cin7core.client import CallClass, cin7_limit

LIMIT = 20
WINDOW = 2.0
PROCESSES = 4
CALLS_EACH = 15
# Timestamps are taken just after acquire() returns, a few milliseconds after the limiter's own
# clock read; windows are measured this much shorter so that the measurement cannot invent an
# excess that the limiter never allowed.
MEASUREMENT_SLACK = 0.05


def _hammer(url: str, key: str, start_at: float, out: multiprocessing.Queue[list[float]]) -> None:
    limiter = RedisRateLimiter(redis.Redis.from_url(url))
    while time.time() < start_at:
        time.sleep(0.001)
    stamps = []
    for _ in range(CALLS_EACH):
        limiter.acquire(key, LIMIT, WINDOW, max_wait=30)
        stamps.append(time.time())
    out.put(stamps)


def _hold_slot(url: str, key: str, start_at: float, out: multiprocessing.Queue[list[float]]) -> None:
    limiter = RedisRateLimiter(redis.Redis.from_url(url))
    while time.time() < start_at:
        time.sleep(0.001)
    spans = []
    for _ in range(5):
        with limiter.slot(key, 3, ttl=10, max_wait=30):
            entered = time.time()
            time.sleep(0.05)
            spans.extend([entered, -time.time()])
    out.put(spans)


def _max_in_any_window(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    return max(bisect_left(stamps, t + window) - i for i, t in enumerate(stamps))


def test_processes_hammering_one_key_never_exceed_the_limit_in_any_window(redis_url: str) -> None:
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[list[float]] = ctx.Queue()
    start_at = time.time() + 0.5
    processes = [ctx.Process(target=_hammer, args=(redis_url, "hammer", start_at, out)) for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    stamps = [t for _ in processes for t in out.get(timeout=60)]
    for process in processes:
        process.join(timeout=10)
        assert process.exitcode == 0

    assert len(stamps) == PROCESSES * CALLS_EACH
    assert _max_in_any_window(stamps, WINDOW - MEASUREMENT_SLACK) <= LIMIT
    # The limiter really was the bottleneck: 60 calls at 20 per 2 s take at least two full windows.
    assert max(stamps) - min(stamps) >= 2 * WINDOW - MEASUREMENT_SLACK


def test_a_penalty_holds_every_process_and_a_shorter_one_never_cuts_it_short(redis_url: str) -> None:
    first = RedisRateLimiter(redis.Redis.from_url(redis_url))
    second = RedisRateLimiter(redis.Redis.from_url(redis_url))
    first.penalise("held", 1.0)
    second.penalise("held", 0.1)  # a "slow down a little" must not shorten the 429's wait
    started = time.monotonic()
    second.acquire("held", LIMIT, WINDOW)
    assert time.monotonic() - started >= 0.9


def test_concurrency_slots_are_shared_across_processes(redis_url: str) -> None:
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[list[float]] = ctx.Queue()
    start_at = time.time() + 0.5
    processes = [ctx.Process(target=_hold_slot, args=(redis_url, "inflight", start_at, out)) for _ in range(5)]
    for process in processes:
        process.start()
    events = [t for _ in processes for t in out.get(timeout=60)]
    for process in processes:
        process.join(timeout=10)
    # +1 on entry, -1 on exit, in time order: the running total is how many held a slot at once.
    held, most = 0, 0
    for stamp in sorted(events, key=abs):
        held += 1 if stamp > 0 else -1
        most = max(most, held)
    assert most == 3


def test_a_slot_left_by_a_dead_holder_frees_itself_after_its_ttl(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis.Redis.from_url(redis_url))
    crashed = limiter.slot("orphan", 1, ttl=0.5)
    crashed.__enter__()  # never exited: its process "died"
    started = time.monotonic()
    with limiter.slot("orphan", 1, ttl=0.5, max_wait=5):
        waited = time.monotonic() - started
    assert 0.3 <= waited < 2


def test_waiting_longer_than_max_wait_raises_rate_limit_timeout(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis.Redis.from_url(redis_url))
    for _ in range(2):
        limiter.acquire("full", 2, 10.0)
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("full", 2, 10.0, max_wait=0.5)


def test_the_in_process_limiter_keeps_the_same_window_and_slots() -> None:
    limiter = LocalRateLimiter()
    stamps: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        for _ in range(5):
            limiter.acquire("local", 5, 0.5)
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _max_in_any_window(stamps, 0.5 - 0.02) <= 5

    inside = 0
    most = 0

    def hold() -> None:
        nonlocal inside, most
        with limiter.slot("local-slots", 2):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.05)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=hold) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2


def _burst_stamps(limiter: LocalRateLimiter | RedisRateLimiter, key: str, calls: int) -> list[float]:
    stamps = []
    for _ in range(calls):
        limiter.acquire(key, 60, 3.0, burst=3, max_wait=30)
        stamps.append(time.monotonic())
    return stamps


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_a_budget_with_a_burst_is_spent_evenly_not_all_at_once(kind: str, redis_url: str) -> None:
    # 60 per 3 s with bursts of 3: at most 3 in any 0.15 s, so 12 calls take at least 0.45 s
    # where a plain window would hand out all 12 at once.
    limiter = RedisRateLimiter(redis.Redis.from_url(redis_url)) if kind == "redis" else LocalRateLimiter()
    stamps = _burst_stamps(limiter, f"even-{kind}", 12)
    assert stamps[-1] - stamps[0] >= 0.45 - MEASUREMENT_SLACK
    assert _max_in_any_window(stamps, 0.15 - MEASUREMENT_SLACK) <= 3
    plain = RedisRateLimiter(redis.Redis.from_url(redis_url)) if kind == "redis" else LocalRateLimiter()
    started = time.monotonic()
    for _ in range(12):
        plain.acquire(f"plain-{kind}", 60, 3.0)
    assert time.monotonic() - started < 0.2


def test_cin7_detail_reads_leave_the_reserve_to_list_reads_and_bulk_reads_leave_it_to_the_live_sync(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    limiter = RedisRateLimiter(client, prefix=f"test-reserve-{time.monotonic_ns()}:")
    settings = Settings.model_validate({"CIN7_ACCOUNT_ID": "acct", "CIN7_CALLS_PER_MINUTE": "60"})

    def take(call: CallClass, n: int) -> int:
        limit = cin7_limit(settings, limiter, call)
        taken = 0
        for _ in range(n):
            try:
                limiter.acquire(limit.key, limit.calls, limit.window_seconds, burst=limit.burst, max_wait=0.05)
            except RateLimitTimeout:
                break
            taken += 1
        return taken

    # A migration's reads stop 20 short of the minute; a burst of webhook reads goes at once, up to 50;
    # the poll's list reads still find the last 10.
    assert take(CallClass.BULK, 60) == 40
    assert take(CallClass.LIVE, 60) == 10
    assert take(CallClass.LISTING, 60) == 10
    assert take(CallClass.LIVE, 1) == 0 and take(CallClass.LISTING, 1) == 0

"""Rate limits shared by every worker process and machine.

Celery's own `rate_limit` is per worker; the APIs count per tenant (Xero) or per application (Cin7)
across all of them. A sliding-window log in Redis (one sorted set per key, updated atomically by a
Lua script) gives every process the same view. Without Redis (the single-process demo) an in-process
window does the same job.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from typing import Protocol

import redis

log = logging.getLogger(__name__)

# KEYS[1] = window key, KEYS[2] = burst key; ARGV = now_ms, window_ms, limit, member, burst_window_ms, burst.
# A slot must be free in the window and, when burst > 0, in the short burst window too, so that a
# budget of 60 a minute is spent about one a second instead of 60 at once and then nothing.
# Returns 0 when a slot was taken (in both), else the milliseconds to wait before one frees.
_ACQUIRE_LUA = """
local now = tonumber(ARGV[1])
local function wait_for(key, window, limit)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) < limit then
    return 0
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now
  if wait < 1 then wait = 1 end
  return wait
end
local window = tonumber(ARGV[2])
local burst_window = tonumber(ARGV[5])
local burst = tonumber(ARGV[6])
local wait = wait_for(KEYS[1], window, tonumber(ARGV[3]))
if burst > 0 then
  local burst_wait = wait_for(KEYS[2], burst_window, burst)
  if burst_wait > wait then wait = burst_wait end
end
if wait > 0 then
  return wait
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
if burst > 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[2], burst_window)
end
return 0
"""

# KEYS[1] = hold key; ARGV = milliseconds. Only ever lengthens a hold: a worker that read "slow down a
# little" must not cut short the "wait a minute" that another worker was just told by a 429.
_PENALISE_LUA = """
local current = redis.call('PTTL', KEYS[1])
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0
"""

# KEYS[1] = slot set; ARGV = now_ms, ttl_ms, limit, member. Members are scored by their expiry, so a
# slot held by a process that died frees itself after ttl instead of leaking for ever.
# Returns 0 when a slot was taken, else the milliseconds until the oldest slot expires.
_SLOT_LUA = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) < tonumber(ARGV[3]) then
  redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[4])
  redis.call('PEXPIRE', key, tonumber(ARGV[2]))
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) - now
if wait < 1 then wait = 1 end
return wait
"""
# How often a caller waiting for a concurrency slot looks again (slots are usually held for well
# under a second; the expiry above is only the backstop for a dead holder).
_SLOT_POLL_SECONDS = 0.05


# How long a call waits for its slot before RateLimitTimeout, unless the caller says otherwise.
MAX_WAIT_SECONDS = 300.0


class RateLimitTimeout(TimeoutError):
    """No slot came free within the caller's patience (the API is saturated, not unreachable)."""


class RateLimiter(Protocol):
    """Take one call slot under `key`, waiting if the window is full."""

    def acquire(
        self,
        key: str,
        limit: int,
        window_seconds: float,
        *,
        max_wait: float = MAX_WAIT_SECONDS,
        burst: int | None = None,
    ) -> float:
        """Block until a slot is free; return seconds waited. Raise RateLimitTimeout past max_wait.

        With `burst`, calls are also spread out: at most `burst` in any `window * burst / limit`.
        """
        ...

    def penalise(self, key: str, seconds: float) -> None:
        """Hold every caller of `key` back for `seconds` (the server told us to slow down)."""
        ...

    def slot(
        self, key: str, limit: int, *, ttl: float = 120.0, max_wait: float = MAX_WAIT_SECONDS
    ) -> contextlib.AbstractContextManager[float]:
        """Hold one of `limit` concurrent slots under `key` for the duration of the block."""
        ...


class RedisRateLimiter:
    """Sliding-window limiter shared through Redis."""

    def __init__(self, client: redis.Redis, prefix: str = "cin7xero:rl:") -> None:
        self._redis = client
        self._prefix = prefix
        self._script = client.register_script(_ACQUIRE_LUA)
        self._penalise = client.register_script(_PENALISE_LUA)
        self._slot = client.register_script(_SLOT_LUA)
        # While Redis is unreachable (restarting), each process limits itself: a slower sync is better
        # than tasks failing on the limiter, and the API's own 429s still stop a real excess.
        self._fallback = LocalRateLimiter()
        self._warned_at = 0.0

    def _redis_failed(self, exc: redis.RedisError) -> None:
        now = time.monotonic()
        if now - self._warned_at > 30:
            self._warned_at = now
            log.warning("rate limiter: Redis unavailable (%s); limiting within this process", exc)

    def acquire(
        self,
        key: str,
        limit: int,
        window_seconds: float,
        *,
        max_wait: float = MAX_WAIT_SECONDS,
        burst: int | None = None,
    ) -> float:
        """Block until a slot is free; return seconds waited."""
        try:
            return self._acquire_shared(key, limit, window_seconds, max_wait=max_wait, burst=burst)
        except redis.RedisError as exc:
            self._redis_failed(exc)
            return self._fallback.acquire(key, limit, window_seconds, max_wait=max_wait, burst=burst)

    def _acquire_shared(
        self, key: str, limit: int, window_seconds: float, *, max_wait: float, burst: int | None
    ) -> float:
        waited = 0.0
        window_ms = int(window_seconds * 1000)
        burst_calls, burst_ms = _burst_window(limit, window_seconds, burst)
        while True:
            hold = self._redis.pttl(self._prefix + "hold:" + key)
            if isinstance(hold, int) and hold > 0:
                pause = hold / 1000.0
            else:
                now_ms = int(time.time() * 1000)
                member = f"{now_ms}:{uuid.uuid4().hex}"
                result = self._script(
                    keys=[self._prefix + key, self._prefix + "burst:" + key],
                    args=[now_ms, window_ms, limit, member, burst_ms, burst_calls],
                )
                if int(result) == 0:
                    return waited
                pause = int(result) / 1000.0
            if waited + pause > max_wait:
                raise RateLimitTimeout(f"rate limit {key}: no slot within {max_wait:.0f}s")
            time.sleep(pause)
            waited += pause

    def penalise(self, key: str, seconds: float) -> None:
        """Hold every caller of `key` back for `seconds`."""
        if seconds <= 0:
            return
        self._fallback.penalise(key, seconds)
        try:
            self._penalise(keys=[self._prefix + "hold:" + key], args=[max(1, int(seconds * 1000))])
        except redis.RedisError as exc:
            self._redis_failed(exc)

    @contextlib.contextmanager
    def slot(self, key: str, limit: int, *, ttl: float = 120.0, max_wait: float = MAX_WAIT_SECONDS) -> Iterator[float]:
        """Hold one of `limit` concurrent slots shared by every process; yields seconds waited."""
        name = self._prefix + "slots:" + key
        member = uuid.uuid4().hex
        try:
            waited = self._take_slot(name, key, member, limit, ttl, max_wait)
        except redis.RedisError as exc:
            self._redis_failed(exc)
            with self._fallback.slot(key, limit, ttl=ttl, max_wait=max_wait) as local_wait:
                yield local_wait
            return
        try:
            yield waited
        finally:
            try:
                self._redis.zrem(name, member)
            except redis.RedisError as exc:
                self._redis_failed(exc)  # the slot expires on its own after ttl

    def _take_slot(self, name: str, key: str, member: str, limit: int, ttl: float, max_wait: float) -> float:
        waited = 0.0
        while True:
            result = self._slot(keys=[name], args=[int(time.time() * 1000), int(ttl * 1000), limit, member])
            if int(result) == 0:
                return waited
            if waited >= max_wait:
                raise RateLimitTimeout(f"concurrency limit {key}: no slot within {max_wait:.0f}s")
            pause = min(_SLOT_POLL_SECONDS, int(result) / 1000.0)
            time.sleep(pause)
            waited += pause


class LocalRateLimiter:
    """The same sliding window inside one process (demo without Redis)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}
        self._holds: dict[str, float] = {}
        self._slots: dict[str, int] = {}
        self._slot_freed = threading.Condition(self._lock)

    def acquire(
        self,
        key: str,
        limit: int,
        window_seconds: float,
        *,
        max_wait: float = MAX_WAIT_SECONDS,
        burst: int | None = None,
    ) -> float:
        """Block until a slot is free; return seconds waited."""
        waited = 0.0
        burst_calls, burst_ms = _burst_window(limit, window_seconds, burst)
        burst_seconds = burst_ms / 1000.0
        while True:
            with self._lock:
                now = time.monotonic()
                hold_until = self._holds.get(key, 0.0)
                if hold_until > now:
                    pause = hold_until - now
                else:
                    calls = self._calls.setdefault(key, deque())
                    while calls and calls[0] <= now - window_seconds:
                        calls.popleft()
                    recent: list[float] = []
                    if burst_calls:
                        for stamp in reversed(calls):
                            if stamp <= now - burst_seconds:
                                break
                            recent.insert(0, stamp)
                    if len(calls) < limit and (not burst_calls or len(recent) < burst_calls):
                        calls.append(now)
                        return waited
                    pause = 0.001
                    if len(calls) >= limit:
                        pause = max(pause, calls[0] + window_seconds - now)
                    if burst_calls and len(recent) >= burst_calls:
                        pause = max(pause, recent[0] + burst_seconds - now)
            if waited + pause > max_wait:
                raise RateLimitTimeout(f"rate limit {key}: no slot within {max_wait:.0f}s")
            time.sleep(pause)
            waited += pause

    def penalise(self, key: str, seconds: float) -> None:
        """Hold every caller of `key` back for `seconds`."""
        with self._lock:
            self._holds[key] = max(self._holds.get(key, 0.0), time.monotonic() + seconds)

    @contextlib.contextmanager
    def slot(self, key: str, limit: int, *, ttl: float = 120.0, max_wait: float = MAX_WAIT_SECONDS) -> Iterator[float]:
        """Hold one of `limit` concurrent slots in this process; yields seconds waited."""
        started = time.monotonic()
        with self._slot_freed:
            while self._slots.get(key, 0) >= limit:
                left = max_wait - (time.monotonic() - started)
                if left <= 0:
                    raise RateLimitTimeout(f"concurrency limit {key}: no slot within {max_wait:.0f}s")
                self._slot_freed.wait(left)
            self._slots[key] = self._slots.get(key, 0) + 1
        try:
            yield time.monotonic() - started
        finally:
            with self._slot_freed:
                self._slots[key] -= 1
                self._slot_freed.notify()


def _burst_window(limit: int, window_seconds: float, burst: int | None) -> tuple[int, int]:
    """(calls, milliseconds) of the short window that spreads a budget out; (0, 0) when not asked."""
    if not burst or burst >= limit:
        return 0, 0
    return burst, max(1, int(window_seconds * 1000 * burst / limit))


_local = LocalRateLimiter()
_redis_limiters: dict[str, RedisRateLimiter] = {}


def limiter_for(redis_url: str) -> RateLimiter:
    """The shared limiter for this deployment (Redis), or the in-process one when there is none."""
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        return _local
    limiter = _redis_limiters.get(redis_url)
    if limiter is None:
        limiter = _redis_limiters[redis_url] = RedisRateLimiter(redis.Redis.from_url(redis_url))
    return limiter

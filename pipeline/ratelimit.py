"""Rate limits shared by every worker process and machine.

Celery's own `rate_limit` is per worker; the APIs count per tenant (Xero) or per application (Cin7)
across all of them. A sliding-window log in Redis (one sorted set per key, updated atomically by a
Lua script) gives every process the same view. Without Redis (the single-process demo) an in-process
window does the same job.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from typing import Protocol

import redis

# KEYS[1] = window key; ARGV = now_ms, window_ms, limit, member
# Returns 0 when a slot was taken, else the milliseconds to wait before one frees.
_ACQUIRE_LUA = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local used = redis.call('ZCARD', key)
if used < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, window)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
"""


class RateLimiter(Protocol):
    """Take one call slot under `key`, waiting if the window is full."""

    def acquire(self, key: str, limit: int, window_seconds: float, *, max_wait: float = 300.0) -> float:
        """Block until a slot is free; return seconds waited. Raise TimeoutError past max_wait."""
        ...

    def penalise(self, key: str, seconds: float) -> None:
        """Hold every caller of `key` back for `seconds` (the server told us to slow down)."""
        ...


class RedisRateLimiter:
    """Sliding-window limiter shared through Redis."""

    def __init__(self, client: redis.Redis, prefix: str = "cin7xero:rl:") -> None:
        self._redis = client
        self._prefix = prefix
        self._script = client.register_script(_ACQUIRE_LUA)

    def acquire(self, key: str, limit: int, window_seconds: float, *, max_wait: float = 300.0) -> float:
        """Block until a slot is free; return seconds waited."""
        waited = 0.0
        window_ms = int(window_seconds * 1000)
        while True:
            hold = self._redis.pttl(self._prefix + "hold:" + key)
            if isinstance(hold, int) and hold > 0:
                pause = hold / 1000.0
            else:
                now_ms = int(time.time() * 1000)
                member = f"{now_ms}:{uuid.uuid4().hex}"
                result = self._script(keys=[self._prefix + key], args=[now_ms, window_ms, limit, member])
                if int(result) == 0:
                    return waited
                pause = int(result) / 1000.0
            if waited + pause > max_wait:
                raise TimeoutError(f"rate limit {key}: no slot within {max_wait:.0f}s")
            time.sleep(pause)
            waited += pause

    def penalise(self, key: str, seconds: float) -> None:
        """Hold every caller of `key` back for `seconds`."""
        if seconds > 0:
            self._redis.set(self._prefix + "hold:" + key, "1", px=max(1, int(seconds * 1000)))


class LocalRateLimiter:
    """The same sliding window inside one process (demo without Redis)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}
        self._holds: dict[str, float] = {}

    def acquire(self, key: str, limit: int, window_seconds: float, *, max_wait: float = 300.0) -> float:
        """Block until a slot is free; return seconds waited."""
        waited = 0.0
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
                    if len(calls) < limit:
                        calls.append(now)
                        return waited
                    pause = max(0.001, calls[0] + window_seconds - now)
            if waited + pause > max_wait:
                raise TimeoutError(f"rate limit {key}: no slot within {max_wait:.0f}s")
            time.sleep(pause)
            waited += pause

    def penalise(self, key: str, seconds: float) -> None:
        """Hold every caller of `key` back for `seconds`."""
        with self._lock:
            self._holds[key] = max(self._holds.get(key, 0.0), time.monotonic() + seconds)


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

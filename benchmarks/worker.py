"""`python -m benchmarks.worker <celery args>`: a Celery worker whose Xero minute can be compressed.

The Xero stand-in can compress its rate window (60 calls per W seconds instead of per 60). The
pipeline's own limiter counts a real minute (`XERO_MINUTE_LIMIT` per 60 s, and a 5 s pause when Xero
says the minute is nearly spent), so against a compressed stand-in it would be throttled by itself,
not by Xero. With BENCH_XERO_WINDOW_SECONDS=W set, this launcher scales the pipeline's notion of a
Xero minute by W/60 before the worker starts (prefork children inherit it), so both sides share one
compressed clock. BENCH_XERO_WINDOW_SECONDS=0 lifts the pipeline's Xero pacing altogether (the
"unthrottled" run, against a stand-in without limits, measures our own cost per order). Without the
variable, this is exactly `python -m celery`.

The clean way to do this is a setting in the pipeline (see benchmarks/FINDINGS.md); until then the
benchmark applies the scale from outside, touching nothing but the Xero limiter's time unit.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

WINDOW_ENV = "BENCH_XERO_WINDOW_SECONDS"
REAL_MINUTE = 60.0


def compress_xero_minute(window_seconds: float) -> None:
    """Make the pipeline's Xero limiter count a minute of `window_seconds` real seconds (0: no limit)."""
    from pipeline import ratelimit
    from pipeline.xero import client

    scale = window_seconds / REAL_MINUTE
    advisory = threading.local()

    original_acquire = ratelimit.RedisRateLimiter.acquire
    original_penalise = ratelimit.RedisRateLimiter.penalise
    original_slow_down = client.XeroClient._slow_down

    def acquire(
        self: ratelimit.RedisRateLimiter, key: str, limit: int, window_seconds: float, *, max_wait: float = 300.0
    ) -> float:
        if key.startswith("xero:"):
            if scale <= 0:
                return 0.0
            window_seconds *= scale
        return original_acquire(self, key, limit, window_seconds, max_wait=max_wait)

    def penalise(self: ratelimit.RedisRateLimiter, key: str, seconds: float) -> None:
        # Only the client's own "nearly spent" pause is in minute units; a 429's Retry-After already
        # comes from the compressed stand-in.
        if key.startswith("xero:") and getattr(advisory, "active", False):
            seconds *= scale
            if seconds <= 0:
                return
        original_penalise(self, key, seconds)

    def slow_down(self: client.XeroClient, headers: Any) -> None:
        advisory.active = True
        try:
            original_slow_down(self, headers)
        finally:
            advisory.active = False

    ratelimit.RedisRateLimiter.acquire = acquire  # type: ignore[method-assign]
    ratelimit.RedisRateLimiter.penalise = penalise  # type: ignore[method-assign]
    client.XeroClient._slow_down = slow_down  # type: ignore[method-assign]


def main() -> None:
    """Apply the compression if asked, then hand over to Celery's command line."""
    window = os.environ.get(WINDOW_ENV)
    if window:
        compress_xero_minute(float(window))
    from celery.__main__ import main as celery_main

    sys.argv[0] = "celery"
    celery_main()


if __name__ == "__main__":
    main()

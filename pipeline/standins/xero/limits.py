"""Rate limits, concurrency, injected faults and idempotency replays of the Xero stand-in.

Minute, day and concurrent-call limits with Xero's ``X-*Limit-Remaining`` headers and 429s, the faults
that chaos tests arm with ``set_faults()``, and the store of ``Idempotency-Key`` responses that replays
answer from.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from pipeline.standins.xero.responses import Request, Response, text_response, validation_error
from pipeline.standins.xero.state import IdempotencyEntry, XeroState

APP_MINUTE_LIMIT = 10_000
# Reported as the limit when a limit is not configured, so "remaining" still decreases realistically.
UNLIMITED_REPORTED = 1_000_000
IDEMPOTENCY_KEY_MAX = 128

FAULT_KEYS = {
    "outage_seconds": float,
    "offline_seconds": float,
    "rate_limit_next": int,
    "day_limit_next": int,
    "drop_response_after_commit_next": int,
    "server_error_next": int,
    "latency_seconds": float,
    "expire_all_tokens": bool,
}


class LimitsMixin(XeroState):
    """Fault injection, the rate-limit windows and the idempotency store."""

    def set_faults(self, **faults: Any) -> None:
        """Inject faults for API calls (admin and OAuth endpoints are never faulted).

        ``outage_seconds`` / ``offline_seconds``: 503 text for that long; ``rate_limit_next`` /
        ``day_limit_next``: the next N calls get a 429 (minute: Retry-After 1; day: until UTC midnight);
        ``server_error_next``: next N calls get a 500; ``drop_response_after_commit_next``: the next N
        PUT/POST calls are processed (and their idempotency key stored), then the connection is closed
        without a response; ``latency_seconds``: sleep before handling each call (outside the lock, so
        requests overlap); ``expire_all_tokens``: every access token issued so far expires now.
        Unknown names raise ``ValueError``.
        """
        unknown = set(faults) - set(FAULT_KEYS)
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        now = time.monotonic()
        with self._lock:
            for name, raw in faults.items():
                value = FAULT_KEYS[name](raw)
                if name == "outage_seconds":
                    self._faults.outage_until = now + float(value)
                elif name == "offline_seconds":
                    self._faults.offline_until = now + float(value)
                elif name == "expire_all_tokens":
                    if value:
                        expired = time.time() - 1
                        for token in self._access_tokens.values():
                            token.expires_at = min(token.expires_at, expired)
                else:
                    setattr(self._faults, name, value)

    def faults(self) -> dict[str, Any]:
        """The faults currently armed."""
        with self._lock:
            return self._faults.describe(time.monotonic())

    def _prune_windows(self, now: float) -> None:
        minute_floor = now - self.window_seconds
        while self._minute_calls and self._minute_calls[0] <= minute_floor:
            self._minute_calls.popleft()
        day_floor = now - self.day_window_seconds
        while self._day_calls and self._day_calls[0] <= day_floor:
            self._day_calls.popleft()

    def _rate_headers(self) -> list[tuple[str, str]]:
        used_minute = len(self._minute_calls)
        minute = self.minute_limit if self.minute_limit is not None else UNLIMITED_REPORTED
        day = self.day_limit if self.day_limit is not None else UNLIMITED_REPORTED
        return [
            ("X-MinLimit-Remaining", str(max(0, minute - used_minute))),
            ("X-DayLimit-Remaining", str(max(0, day - len(self._day_calls)))),
            ("X-AppMinLimit-Remaining", str(max(0, APP_MINUTE_LIMIT - used_minute))),
        ]

    def _too_many(self, problem: str, retry_after: float) -> Response:
        self._rate_limited += 1
        seconds = max(1, math.ceil(retry_after))
        return text_response(
            429,
            "Too Many Requests",
            [("Retry-After", str(seconds)), ("X-Rate-Limit-Problem", problem), *self._rate_headers()],
        )

    def _rate_check(self, now: float) -> Response | None:
        self._prune_windows(now)
        if self._faults.day_limit_next > 0:
            self._faults.day_limit_next -= 1
            return self._too_many("day", 86_400 - (time.time() % 86_400))
        if self._faults.rate_limit_next > 0:
            self._faults.rate_limit_next -= 1
            return self._too_many("minute", 1)
        if self.day_limit is not None and len(self._day_calls) >= self.day_limit:
            oldest = self._day_calls[0] if self._day_calls else now
            return self._too_many("day", oldest + self.day_window_seconds - now)
        if self.minute_limit is not None and len(self._minute_calls) >= self.minute_limit:
            oldest = self._minute_calls[0] if self._minute_calls else now
            return self._too_many("minute", oldest + self.window_seconds - now)
        if self.concurrent_limit is not None and self._in_flight > self.concurrent_limit:
            return self._too_many("concurrent", 1)
        self._minute_calls.append(now)
        self._day_calls.append(now)
        return None

    def _idempotency_lookup(self, key: str, request: Request) -> Response | None:
        if len(key) > IDEMPOTENCY_KEY_MAX:
            return validation_error(
                f"Idempotency Key: {key[:16]}... must be {IDEMPOTENCY_KEY_MAX} characters or fewer."
            )
        now = time.monotonic()
        while self._idempotency_order and self._idempotency_order[0][0] + self.idempotency_ttl_seconds <= now:
            _, old = self._idempotency_order.popleft()
            entry = self._idempotency.get(old)
            if entry is not None and entry.created + self.idempotency_ttl_seconds <= now:
                del self._idempotency[old]
        entry = self._idempotency.get(key)
        if entry is None:
            return None
        digest = hashlib.sha256(request.body).hexdigest()
        if (entry.method, entry.target, entry.body_hash) != (request.method, request.target, digest):
            return validation_error(f"Idempotency Key: {key} is used with a different request.")
        self._replays += 1
        stored = entry.response
        return Response(stored.status, list(stored.headers), stored.body)

    def _idempotency_store(self, key: str, request: Request, response: Response) -> None:
        if len(key) > IDEMPOTENCY_KEY_MAX or key in self._idempotency:
            return
        now = time.monotonic()
        digest = hashlib.sha256(request.body).hexdigest()
        self._idempotency[key] = IdempotencyEntry(
            request.method,
            request.target,
            digest,
            now,
            Response(response.status, list(response.headers), response.body),
        )
        self._idempotency_order.append((now, key))

"""One HTTP send loop for every call made outside the Xero SDK: Cin7's API, Cin7's webhooks, Xero's
/connections.

Each call takes its slot from the shared rate limiter, is sent with a timeout, is counted, and its
answer is classified once (`pipeline.errors`). A throttled answer (429/503) makes every worker hold
back (`penalise`) and is retried here a bounded number of times; anything else is raised for the
stage's error policy to decide.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from pipeline.errors import ErrorClass, SyncError, transport_error
from pipeline.ratelimit import MAX_WAIT_SECONDS, RateLimiter, RateLimitTimeout

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5, 60)


@dataclass(frozen=True)
class Limit:
    """The shared budget a call spends: `calls` per `window_seconds` under `key`, at most `burst` at once."""

    limiter: RateLimiter
    key: str
    calls: int
    window_seconds: float = 60.0
    burst: int | None = None
    #: How long a call may wait for its slot; 0: not at all (the caller has other work, and is told by
    #: RateLimitTimeout).
    max_wait: float = MAX_WAIT_SECONDS


@dataclass(frozen=True)
class Throttling:
    """How a throttled answer is waited out in the loop: at most `retries` times, `wait` without Retry-After."""

    retries: int
    wait: float


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    api: str,
    classify: Callable[[requests.Response], SyncError | None],
    limit: Limit | None = None,
    throttling: Throttling | None = None,
    on_call: Callable[[int], None] | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    **request: object,
) -> requests.Response:
    """Send one request through the limiter and return the response that `classify` found good."""
    attempts = 0
    while True:
        if limit is not None:
            try:
                limit.limiter.acquire(
                    limit.key, limit.calls, limit.window_seconds, burst=limit.burst, max_wait=limit.max_wait
                )
            except RateLimitTimeout as exc:
                if limit.max_wait == 0:
                    raise
                # Nothing was sent: the shared budget is spent for now, which is a wait, not a failure.
                wait = throttling.wait if throttling is not None else None
                raise SyncError(ErrorClass.RATE_LIMITED, str(exc), api=api, retry_after=wait) from exc
        try:
            response = session.request(method, url, timeout=timeout, **request)  # type: ignore[arg-type]
        except requests.RequestException as exc:
            raise transport_error(api, exc) from exc
        if on_call is not None:
            on_call(response.status_code)
        error = classify(response)
        if error is None:
            return response
        if error.error_class is ErrorClass.RATE_LIMITED and throttling is not None and attempts < throttling.retries:
            attempts += 1
            wait = error.retry_after or throttling.wait
            if limit is not None:
                limit.limiter.penalise(limit.key, wait)
            log.warning("%s throttled on %s %s, waiting %.1fs (attempt %d)", api, method, url, wait, attempts)
            time.sleep(wait)
            continue
        raise error

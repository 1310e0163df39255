"""One classifier: every Cin7 and Xero failure is classified here, and only here.

`ErrorClass` is the operator-facing vocabulary (README "Error classes"); what each class makes the
pipeline do next (retry, pause the tenant, dead letter, conflict) is the table in `pipeline.policy`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any


class ErrorClass(enum.StrEnum):
    """What kind of failure; the operator-facing vocabulary (README "Error classes")."""

    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    DAY_LIMIT = "day_limit"
    AUTH = "auth"
    CONFIGURATION = "configuration"
    VALIDATION = "validation"
    MAPPING = "mapping"
    CONFLICT = "conflict"
    POISON = "poison"


class SyncError(Exception):
    """A classified failure talking to Cin7 or Xero (or mapping between them)."""

    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        api: str = "",
        status: int | None = None,
        messages: list[str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.api = api
        self.status = status
        self.messages = messages if messages is not None else [message]
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"SyncError({self.error_class.value}, {self.api} {self.status}: {self.message!r})"


# Xero "Retry-After" is usually present on 429; when it is not we wait this long (seconds).
DEFAULT_RATE_LIMIT_WAIT = 60.0
# Xero asks clients to come back in about five minutes when an organisation is offline.
ORG_OFFLINE_WAIT = 300.0
# Xero's day limit is a rolling 24 hours; without a Retry-After we wait an hour and look again.
DAY_LIMIT_DEFAULT_WAIT = 3600.0


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    raw = _header(headers, "Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def _parse_json(body: str | bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def xero_validation_messages(body: Any) -> list[str]:
    """Every ValidationErrors message in a Xero 400 body, verbatim, in element order."""
    messages: list[str] = []
    if not isinstance(body, Mapping):
        return messages
    for element in body.get("Elements") or []:
        for error in (element or {}).get("ValidationErrors") or []:
            message = (error or {}).get("Message")
            if message:
                messages.append(str(message))
    if not messages and body.get("Message"):
        messages.append(str(body["Message"]))
    return messages


def classify_xero_response(status: int, headers: Mapping[str, str] | None, body: str | bytes | None) -> SyncError:
    """Classify a non-2xx Xero API (or token endpoint) response."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    parsed = _parse_json(text)
    if status == 429:
        return _xero_rate_limited(headers)
    refused = _xero_credentials_refused(status, parsed, text)
    if refused is not None:
        return refused
    if status in (400, 409, 422):
        messages = xero_validation_messages(parsed) or [text[:500] or f"HTTP {status}"]
        if any("idempotency key" in m.lower() for m in messages):
            # Our keys derive from content: a clash means the same key met another body, which is
            # our bug or a replay race; retrying later with a fresh lookup is the safe answer.
            return SyncError(ErrorClass.TRANSIENT, messages[0], api="xero", status=status, messages=messages)
        return SyncError(ErrorClass.VALIDATION, "; ".join(messages), api="xero", status=status, messages=messages)
    if status == 503 and "offline" in text.lower():
        return SyncError(
            ErrorClass.TRANSIENT,
            "The Xero organisation is offline",
            api="xero",
            status=status,
            retry_after=ORG_OFFLINE_WAIT,
        )
    if status >= 500 or status == 408:
        return SyncError(
            ErrorClass.TRANSIENT,
            f"Xero HTTP {status}: {text[:200]}",
            api="xero",
            status=status,
            retry_after=_retry_after(headers),
        )
    if status == 404:
        return SyncError(ErrorClass.VALIDATION, f"Xero: not found ({text[:200]})", api="xero", status=status)
    return SyncError(ErrorClass.VALIDATION, f"Xero HTTP {status}: {text[:300]}", api="xero", status=status)


def _xero_rate_limited(headers: Mapping[str, str] | None) -> SyncError:
    problem = (_header(headers, "X-Rate-Limit-Problem") or "").strip().lower()
    wait = _retry_after(headers)
    if problem == "day":
        return SyncError(
            ErrorClass.DAY_LIMIT,
            "Xero daily call limit reached",
            api="xero",
            status=429,
            retry_after=wait if wait is not None else DAY_LIMIT_DEFAULT_WAIT,
        )
    return SyncError(
        ErrorClass.RATE_LIMITED,
        f"Xero rate limit ({problem or 'unspecified'})",
        api="xero",
        status=429,
        retry_after=wait if wait is not None else DEFAULT_RATE_LIMIT_WAIT,
    )


def _xero_credentials_refused(status: int, parsed: Any, text: str) -> SyncError | None:
    """The token, the connection or the app's credentials refused: the operator must act."""
    if status == 401:
        detail = parsed.get("Detail") if isinstance(parsed, Mapping) else text[:200]
        return SyncError(ErrorClass.AUTH, f"Xero rejected the access token: {detail}", api="xero", status=status)
    if status == 403:
        detail = parsed.get("Detail") if isinstance(parsed, Mapping) else text[:200]
        return SyncError(
            ErrorClass.CONFIGURATION,
            f"Xero refused access ({detail}): check the tenant id, the app's scopes and the connection",
            api="xero",
            status=status,
        )
    oauth_error = parsed.get("error") if status == 400 and isinstance(parsed, Mapping) else None
    if oauth_error in _OAUTH_REFUSALS:
        return SyncError(ErrorClass.CONFIGURATION, _OAUTH_REFUSALS[str(oauth_error)], api="xero", status=status)
    return None


#: Xero identity's 400 `error` codes that no retry can cure.
_OAUTH_REFUSALS = {
    "invalid_grant": "Xero refused the refresh token (invalid_grant): reconnect with `cin7xero xero connect`",
    "invalid_client": "Xero refused the client id/secret (invalid_client)",
}


def classify_cin7_response(status: int, body: str | bytes | None, *, throttle_wait: float) -> SyncError:
    """Classify a failed Cin7 Core response (including an error wrapped in an HTTP 200)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    parsed = _parse_json(text)
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], Mapping):
        parsed = parsed[0]
    exception = parsed.get("Exception") if isinstance(parsed, Mapping) else None
    detail = str(exception) if exception else text[:300]
    if isinstance(parsed, Mapping) and isinstance(parsed.get("ErrorCode"), int) and status == 200:
        status = int(parsed["ErrorCode"])
    if status in (429, 503):
        # Cin7 sends no Retry-After: wait for its minute window to clear.
        return SyncError(
            ErrorClass.RATE_LIMITED, f"Cin7 throttled ({status})", api="cin7", status=status, retry_after=throttle_wait
        )
    if status in (401, 403):
        return SyncError(
            ErrorClass.CONFIGURATION,
            f"Cin7 refused the credentials ({status}: {detail}): check CIN7_ACCOUNT_ID and CIN7_APPLICATION_KEY",
            api="cin7",
            status=status,
        )
    if status >= 500 or status == 408:
        return SyncError(ErrorClass.TRANSIENT, f"Cin7 HTTP {status}: {detail}", api="cin7", status=status)
    return SyncError(ErrorClass.VALIDATION, f"Cin7 HTTP {status}: {detail}", api="cin7", status=status)


def transport_error(api: str, exc: BaseException) -> SyncError:
    """A connection-level failure (refused, reset, timed out): always worth retrying."""
    return SyncError(ErrorClass.TRANSIENT, f"{api} unreachable: {type(exc).__name__}: {exc}", api=api)

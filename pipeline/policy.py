"""Error policy as data: what happens next for each error class, decided in one function.

`pipeline.errors` classifies a failure once; this module says what that class means for the work that
failed. Every stage (fetch, map, write, contact push, webhook events, reconciliation) calls `decide`
with the error and the attempts spent, and does what the decision says. The operator-facing texts of
alerts come from the same table, so that what an alert says and what the pipeline does cannot drift.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from pipeline.errors import DAY_LIMIT_DEFAULT_WAIT, ErrorClass, SyncError
from pipeline.settings import Settings

# Waits up to this long are Celery countdowns: a retry that does not depend on beat or the sweep.
# Longer ones are kept in the ledger (`next_attempt_at`) and the sweep sends them when due.
MAX_COUNTDOWN_SECONDS = 120.0
# A Retry-After is honoured in full, plus up to this share of it, so that documents throttled together
# do not all come back in the same instant.
RETRY_AFTER_JITTER = 0.1

# A configuration problem (403, revoked consent) pauses the tenant this long before it tries again:
# long enough not to hammer Xero, short enough that a fixed connection resumes on its own.
CONFIGURATION_PAUSE = 900.0


class Next(enum.StrEnum):
    """What a stage does with a failed piece of work."""

    COUNTDOWN = "countdown"  # retry soon, as a countdown message
    LEDGER_RETRY = "ledger_retry"  # retry later: the ledger holds the time, the sweep re-sends
    PAUSE_TENANT = "pause_tenant"  # nothing this document can fix: the tenant waits, no attempt spent
    DEAD_LETTER = "dead_letter"  # a person must look: a dead letter with the reason
    CONFLICT = "conflict"  # Xero holds what we must not overwrite: recorded, never retried


@dataclass(frozen=True)
class ClassPolicy:
    """The row of the policy table for one error class."""

    meaning: str  # what it means, for people
    handling: str  # what the pipeline does about it, for people
    action: str  # what the operator should do, in an alert
    retry: bool  # the same request can succeed later without anyone changing anything
    counts_as_attempt: bool  # spends one of the document's MAX_ATTEMPTS
    pause_seconds: float | None = None  # the tenant waits this long (or Retry-After) instead
    final: Next = Next.DEAD_LETTER  # what happens when it is not retried (or attempts ran out)


POLICY: dict[ErrorClass, ClassPolicy] = {
    ErrorClass.TRANSIENT: ClassPolicy(
        meaning="connection error, timeout, 5xx, Xero org offline",
        handling="retry with backoff",
        action=(
            "Usually nothing: the pipeline retries. If it keeps happening, check Cin7/Xero status pages and "
            "the network, then `cin7xero dlq requeue --error-class transient`."
        ),
        retry=True,
        counts_as_attempt=True,
    ),
    ErrorClass.RATE_LIMITED: ClassPolicy(
        meaning="429 minute/concurrent (Xero), 429/503 (Cin7)",
        handling="wait Retry-After (or a fixed wait)",
        action=(
            "Check whether another integration shares the Xero app or the Cin7 account; the pipeline waits and retries."
        ),
        retry=True,
        counts_as_attempt=False,
    ),
    ErrorClass.DAY_LIMIT: ClassPolicy(
        meaning="Xero 429 with X-Rate-Limit-Problem: day",
        handling="park the tenant's writes, alert",
        action=(
            "Writes resume by themselves when Xero's daily limit resets. If it recurs, reduce other API use "
            "of this Xero organisation."
        ),
        retry=True,
        counts_as_attempt=False,
        pause_seconds=DAY_LIMIT_DEFAULT_WAIT,
        final=Next.PAUSE_TENANT,
    ),
    ErrorClass.AUTH: ClassPolicy(
        meaning="401: access token expired or rejected",
        handling="refresh credentials, then retry",
        action="If it persists, reconnect Xero with `cin7xero xero connect`.",
        retry=True,
        counts_as_attempt=True,
    ),
    ErrorClass.CONFIGURATION: ClassPolicy(
        meaning="403, invalid_grant, revoked consent, bad credentials",
        handling="alert and pause the tenant",
        action=(
            "The tenant is paused. Check the Xero tenant id, the app's scopes and the connection; reconnect "
            "with `cin7xero xero connect` if consent was revoked."
        ),
        retry=False,
        counts_as_attempt=False,
        pause_seconds=CONFIGURATION_PAUSE,
        final=Next.PAUSE_TENANT,
    ),
    ErrorClass.VALIDATION: ClassPolicy(
        meaning="Xero 400 validation errors (per element)",
        handling="dead letter with Xero's messages",
        action=(
            "Read Xero's messages (`cin7xero dlq list --error-class validation`), fix the data in Cin7 or "
            "the mapping rules, then `cin7xero dlq requeue --error-class validation`."
        ),
        retry=False,
        counts_as_attempt=True,
    ),
    ErrorClass.MAPPING: ClassPolicy(
        meaning="the Cin7 document cannot be mapped (unknown tax rule)",
        handling="dead letter naming the value",
        action=(
            "Add the missing value to the mapping rules (MAPPING_RULES_FILE) or fix it in Cin7, then "
            "`cin7xero dlq requeue --error-class mapping`."
        ),
        retry=False,
        counts_as_attempt=True,
    ),
    ErrorClass.CONFLICT: ClassPolicy(
        meaning="Xero holds a state we must not overwrite (paid)",
        handling="recorded on the row, no retry",
        action="Review the invoice in Xero (paid or locked) and amend it there by hand if needed.",
        retry=False,
        counts_as_attempt=True,
        final=Next.CONFLICT,
    ),
    ErrorClass.POISON: ClassPolicy(
        meaning="the message killed workers or exhausted its attempts",
        handling="dead letter",
        action=(
            "Look at the dead letter (`cin7xero dlq show ID`) and the worker logs, then `cin7xero dlq "
            "requeue --error-class poison`."
        ),
        retry=False,
        counts_as_attempt=True,
    ),
}


def retryable(error_class: ErrorClass) -> bool:
    """True when the same request can succeed later without anyone changing anything."""
    return POLICY[error_class].retry


def pauses_tenant(error_class: ErrorClass) -> bool:
    """True when the whole tenant must stop writing (nothing any one document can fix)."""
    return POLICY[error_class].pause_seconds is not None


def counts_as_attempt(error_class: ErrorClass) -> bool:
    """False when the API refused to look at the request at all (429, tenant paused).

    Those waits are bounded by the API's own clock, not by the document: counting them would turn a
    storm of 429s or a day's pause into poison dead letters for documents that never failed.
    """
    return POLICY[error_class].counts_as_attempt


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter (attempt 1 -> between base/2 and base, doubling, capped)."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)


def retry_delay(error: SyncError, attempt: int, *, base: float, cap: float) -> float:
    """How long to wait before trying again: Retry-After in full when the API sent one, else backoff."""
    if error.retry_after is not None:
        return error.retry_after + random.uniform(0.0, error.retry_after * RETRY_AFTER_JITTER)
    return backoff_seconds(attempt, base, cap)


def pause_seconds(error: SyncError) -> float | None:
    """How long this error pauses the tenant's writes, or None when it does not."""
    policy = POLICY[error.error_class]
    if policy.pause_seconds is None:
        return None
    if error.error_class is ErrorClass.DAY_LIMIT and error.retry_after is not None:
        return error.retry_after
    return policy.pause_seconds


@dataclass(frozen=True)
class Decision:
    """What to do with one failure: the next step, how long to wait, and what to record."""

    next: Next
    delay: float = 0.0  # seconds until the retry or the end of the pause
    error_class: ErrorClass = ErrorClass.TRANSIENT  # the class recorded (POISON once attempts ran out)
    messages: tuple[str, ...] = ()  # for a dead letter or conflict

    @property
    def retries(self) -> bool:
        """The work will be tried again by itself (a countdown, the ledger, or after a pause)."""
        return self.next in (Next.COUNTDOWN, Next.LEDGER_RETRY, Next.PAUSE_TENANT)


def attempts_after(error: SyncError, attempts: int) -> int:
    """The attempts a piece of work has spent once this failure is counted (throttling is free)."""
    return attempts + 1 if POLICY[error.error_class].counts_as_attempt else attempts


def decide(
    error: SyncError, attempts: int, *, max_attempts: int, base: float, cap: float, pauses_tenant: bool = True
) -> Decision:
    """Decide what happens after `error`, for work that has now spent `attempts` (this one counted).

    `pauses_tenant=False` is for work that talks to Cin7 or only reads: a day limit or refused
    credentials make it wait as long as a pause would, in the ledger, without parking the tenant's writes.
    """
    policy = POLICY[error.error_class]
    pause = pause_seconds(error)
    if pause is not None:
        return Decision(
            Next.PAUSE_TENANT if pauses_tenant else Next.LEDGER_RETRY, pause, error.error_class, (error.message,)
        )
    if not policy.retry:
        return Decision(policy.final, 0.0, error.error_class, tuple(error.messages))
    if policy.counts_as_attempt and attempts >= max_attempts:
        return Decision(
            Next.DEAD_LETTER,
            0.0,
            ErrorClass.POISON,
            (f"gave up after {attempts} attempts; last error: {error.message}",),
        )
    delay = retry_delay(error, max(1, attempts), base=base, cap=cap)
    return Decision(
        Next.COUNTDOWN if delay <= MAX_COUNTDOWN_SECONDS else Next.LEDGER_RETRY,
        delay,
        error.error_class,
        (error.message,),
    )


def decide_for(error: SyncError, attempts: int, settings: Settings, *, pauses_tenant: bool = True) -> Decision:
    """`decide` with the deployment's retry budget and backoff (MAX_ATTEMPTS, RETRY_BASE/CAP_SECONDS)."""
    return decide(
        error,
        attempts,
        max_attempts=settings.max_attempts,
        base=settings.retry_base_seconds,
        cap=settings.retry_cap_seconds,
        pauses_tenant=pauses_tenant,
    )

"""The error policy: one table from error class to what happens next, pinned row by row."""

from __future__ import annotations

import pytest

from pipeline.errors import DAY_LIMIT_DEFAULT_WAIT, ErrorClass, SyncError
from pipeline.policy import (
    CONFIGURATION_PAUSE,
    MAX_COUNTDOWN_SECONDS,
    POLICY,
    RETRY_AFTER_JITTER,
    Next,
    attempts_after,
    backoff_seconds,
    decide,
    retry_delay,
)

LIMITS = {"max_attempts": 8, "base": 5.0, "cap": 900.0}


def _error(error_class: ErrorClass, retry_after: float | None = None) -> SyncError:
    return SyncError(error_class, f"{error_class.value} happened", api="xero", retry_after=retry_after)


def test_every_class_has_a_row_with_texts_for_alerts() -> None:
    assert set(POLICY) == set(ErrorClass)
    for error_class, row in POLICY.items():
        assert row.meaning and row.handling and row.action, error_class


@pytest.mark.parametrize(
    ("error_class", "expected"),
    [
        (ErrorClass.TRANSIENT, Next.COUNTDOWN),
        (ErrorClass.RATE_LIMITED, Next.COUNTDOWN),
        (ErrorClass.AUTH, Next.COUNTDOWN),
        (ErrorClass.DAY_LIMIT, Next.PAUSE_TENANT),
        (ErrorClass.CONFIGURATION, Next.PAUSE_TENANT),
        (ErrorClass.VALIDATION, Next.DEAD_LETTER),
        (ErrorClass.MAPPING, Next.DEAD_LETTER),
        (ErrorClass.POISON, Next.DEAD_LETTER),
        (ErrorClass.CONFLICT, Next.CONFLICT),
    ],
)
def test_first_failure_of_each_class(error_class: ErrorClass, expected: Next) -> None:
    decision = decide(_error(error_class), 1, **LIMITS)
    assert decision.next is expected
    assert decision.error_class is error_class


def test_retry_after_is_honoured_in_full_with_a_little_jitter() -> None:
    for _ in range(50):
        delay = decide(_error(ErrorClass.RATE_LIMITED, retry_after=30.0), 1, **LIMITS).delay
        assert 30.0 <= delay <= 30.0 * (1 + RETRY_AFTER_JITTER)


def test_without_retry_after_the_delay_is_backoff_by_attempt() -> None:
    for attempt in range(1, 9):
        ceiling = min(900.0, 5.0 * 2 ** (attempt - 1))
        delay = retry_delay(_error(ErrorClass.TRANSIENT), attempt, base=5.0, cap=900.0)
        assert ceiling / 2 <= delay <= ceiling
        assert ceiling / 2 <= backoff_seconds(attempt, 5.0, 900.0) <= ceiling


def test_a_long_wait_lives_in_the_ledger_and_a_short_one_is_a_countdown() -> None:
    short = decide(_error(ErrorClass.TRANSIENT, retry_after=MAX_COUNTDOWN_SECONDS / 2), 1, **LIMITS)
    long = decide(_error(ErrorClass.TRANSIENT, retry_after=MAX_COUNTDOWN_SECONDS * 2), 1, **LIMITS)
    assert short.next is Next.COUNTDOWN
    assert long.next is Next.LEDGER_RETRY and long.delay >= MAX_COUNTDOWN_SECONDS * 2


def test_retries_run_out_into_a_poison_dead_letter_that_names_the_last_error() -> None:
    decision = decide(_error(ErrorClass.TRANSIENT), 8, **LIMITS)
    assert decision.next is Next.DEAD_LETTER
    assert decision.error_class is ErrorClass.POISON
    assert "gave up after 8 attempts" in decision.messages[0]
    assert "transient happened" in decision.messages[0]


def test_throttling_never_runs_out_of_attempts() -> None:
    # A storm of 429s must not turn into poison for documents that never failed.
    error = _error(ErrorClass.RATE_LIMITED, retry_after=1.0)
    assert attempts_after(error, 3) == 3
    assert decide(error, 100, **LIMITS).next is Next.COUNTDOWN
    assert attempts_after(_error(ErrorClass.TRANSIENT), 3) == 4


def test_pauses_take_retry_after_or_the_class_default() -> None:
    assert decide(_error(ErrorClass.DAY_LIMIT, retry_after=5400.0), 1, **LIMITS).delay == 5400.0
    assert decide(_error(ErrorClass.DAY_LIMIT), 1, **LIMITS).delay == DAY_LIMIT_DEFAULT_WAIT
    assert decide(_error(ErrorClass.CONFIGURATION), 1, **LIMITS).delay == CONFIGURATION_PAUSE


def test_work_that_must_not_park_the_tenant_waits_in_the_ledger_instead() -> None:
    decision = decide(_error(ErrorClass.CONFIGURATION), 1, **LIMITS, pauses_tenant=False)
    assert decision.next is Next.LEDGER_RETRY
    assert decision.delay == CONFIGURATION_PAUSE
    assert decision.retries

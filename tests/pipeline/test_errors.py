"""The one classifier: every row classified, and the Xero client acting on the class it gets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from pipeline.context import TenantContext, tenant_context
from pipeline.errors import (
    DAY_LIMIT_DEFAULT_WAIT,
    DEFAULT_RATE_LIMIT_WAIT,
    ORG_OFFLINE_WAIT,
    ErrorClass,
    SyncError,
    classify_cin7_response,
    classify_xero_response,
    transport_error,
)
from pipeline.policy import CONFIGURATION_PAUSE, counts_as_attempt, pause_seconds, pauses_tenant, retryable
from pipeline.standins.xero import XeroStandIn
from tests.pipeline.environment import runtime_env, xero_client_env

# --- the table, row by row ----------------------------------------------------------------------


def test_connection_errors_and_timeouts_are_transient() -> None:
    for exc in (requests.ConnectionError("refused"), requests.ReadTimeout("read timed out"), OSError("reset")):
        error = transport_error("xero", exc)
        assert error.error_class is ErrorClass.TRANSIENT
        assert retryable(error.error_class) and counts_as_attempt(error.error_class)
        assert type(exc).__name__ in error.message


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_xero_server_errors_are_transient_and_keep_a_retry_after(status: int) -> None:
    error = classify_xero_response(status, {"Retry-After": "7"}, "The service is currently unavailable")
    assert error.error_class is ErrorClass.TRANSIENT
    assert error.retry_after == 7.0
    assert classify_xero_response(status, {}, "").retry_after is None


def test_an_offline_xero_organisation_is_transient_with_a_five_minute_wait() -> None:
    error = classify_xero_response(503, {}, "The Organisation is offline")
    assert error.error_class is ErrorClass.TRANSIENT
    assert error.retry_after == ORG_OFFLINE_WAIT


@pytest.mark.parametrize("problem", ["minute", "concurrent", "appminute", ""])
def test_xero_minute_and_concurrent_429s_wait_retry_after(problem: str) -> None:
    headers = {"retry-after": "3", "X-Rate-Limit-Problem": problem}
    error = classify_xero_response(429, headers, "Too Many Requests")
    assert error.error_class is ErrorClass.RATE_LIMITED
    assert error.retry_after == 3.0
    assert retryable(error.error_class) and not counts_as_attempt(error.error_class)
    assert not pauses_tenant(error.error_class)
    assert classify_xero_response(429, {"X-Rate-Limit-Problem": problem}, "").retry_after == DEFAULT_RATE_LIMIT_WAIT


def test_a_xero_day_limit_parks_the_tenant_until_retry_after() -> None:
    error = classify_xero_response(429, {"Retry-After": "5400", "X-Rate-Limit-Problem": "Day"}, "")
    assert error.error_class is ErrorClass.DAY_LIMIT
    assert pauses_tenant(error.error_class) and not counts_as_attempt(error.error_class)
    assert pause_seconds(error) == 5400.0
    no_header = classify_xero_response(429, {"X-Rate-Limit-Problem": "day"}, "")
    assert pause_seconds(no_header) == DAY_LIMIT_DEFAULT_WAIT


def test_a_xero_401_asks_for_fresh_credentials() -> None:
    body = json.dumps({"Title": "Unauthorized", "Detail": "TokenExpired: token expired at 11/26/2026 10:00:00"})
    error = classify_xero_response(401, {}, body)
    assert error.error_class is ErrorClass.AUTH
    assert "TokenExpired" in error.message
    assert retryable(error.error_class) and pause_seconds(error) is None


def test_a_xero_403_is_a_configuration_problem_that_pauses_the_tenant() -> None:
    error = classify_xero_response(403, {}, json.dumps({"Detail": "AuthenticationUnsuccessful"}))
    assert error.error_class is ErrorClass.CONFIGURATION
    assert "AuthenticationUnsuccessful" in error.message
    assert not retryable(error.error_class)
    assert pause_seconds(error) == CONFIGURATION_PAUSE


@pytest.mark.parametrize("oauth_error", ["invalid_grant", "invalid_client"])
def test_a_revoked_or_refused_oauth_grant_is_a_configuration_problem(oauth_error: str) -> None:
    error = classify_xero_response(400, {}, json.dumps({"error": oauth_error}).encode())
    assert error.error_class is ErrorClass.CONFIGURATION
    assert oauth_error in error.message
    assert pause_seconds(error) == CONFIGURATION_PAUSE


def test_xero_validation_errors_keep_every_element_message_verbatim_in_order() -> None:
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [
            {"ValidationErrors": [{"Message": "The TaxType code 'NOPE' does not exist or cannot be used."}]},
            {"ValidationErrors": [{"Message": "Invoice # must be unique."}, {"Message": "Second — ünïcode"}]},
        ],
    }
    error = classify_xero_response(400, {}, json.dumps(body))
    assert error.error_class is ErrorClass.VALIDATION
    assert error.messages == [
        "The TaxType code 'NOPE' does not exist or cannot be used.",
        "Invoice # must be unique.",
        "Second — ünïcode",
    ]
    assert not retryable(error.error_class) and counts_as_attempt(error.error_class)


def test_a_xero_400_without_elements_falls_back_to_its_message_and_then_its_text() -> None:
    assert classify_xero_response(400, {}, json.dumps({"Message": "Bad thing"})).messages == ["Bad thing"]
    assert classify_xero_response(400, {}, "plain text").messages == ["plain text"]


def test_an_idempotency_key_clash_is_retried_rather_than_dead_lettered() -> None:
    body = {"Message": "Idempotency Key: k-1 is used with a different request."}
    error = classify_xero_response(400, {}, json.dumps(body))
    assert error.error_class is ErrorClass.TRANSIENT


def test_a_xero_404_is_permanent() -> None:
    assert classify_xero_response(404, {}, "not found").error_class is ErrorClass.VALIDATION


@pytest.mark.parametrize("status", [429, 503])
def test_cin7_throttling_waits_the_configured_time(status: int) -> None:
    error = classify_cin7_response(status, b"", throttle_wait=15.0)
    assert error.error_class is ErrorClass.RATE_LIMITED
    assert error.retry_after == 15.0


def test_cin7_errors_wrapped_in_http_200_are_classified_by_their_code() -> None:
    throttled = json.dumps([{"ErrorCode": 503, "Exception": "Too many requests"}])
    assert classify_cin7_response(200, throttled, throttle_wait=1).error_class is ErrorClass.RATE_LIMITED
    failed = json.dumps([{"ErrorCode": 500, "Exception": "Server fell over"}])
    error = classify_cin7_response(200, failed, throttle_wait=1)
    assert error.error_class is ErrorClass.TRANSIENT and "Server fell over" in error.message


@pytest.mark.parametrize("status", [401, 403])
def test_cin7_refusing_the_credentials_is_a_configuration_problem(status: int) -> None:
    error = classify_cin7_response(status, json.dumps({"Exception": "Incorrect key"}), throttle_wait=1)
    assert error.error_class is ErrorClass.CONFIGURATION
    assert "CIN7_APPLICATION_KEY" in error.message


def test_cin7_server_errors_are_transient_and_bad_requests_permanent() -> None:
    assert classify_cin7_response(500, "", throttle_wait=1).error_class is ErrorClass.TRANSIENT
    assert classify_cin7_response(400, "bad", throttle_wait=1).error_class is ErrorClass.VALIDATION


def test_only_day_limits_and_configuration_problems_pause_a_tenant() -> None:
    pausing = {c for c in ErrorClass if pauses_tenant(c)}
    assert pausing == {ErrorClass.DAY_LIMIT, ErrorClass.CONFIGURATION}
    for error_class in ErrorClass:
        if error_class not in pausing:
            assert pause_seconds(SyncError(error_class, "x")) is None


def test_mapping_conflict_and_poison_are_permanent_and_counted() -> None:
    for error_class in (ErrorClass.MAPPING, ErrorClass.CONFLICT, ErrorClass.POISON, ErrorClass.VALIDATION):
        assert not retryable(error_class)
        assert counts_as_attempt(error_class)


# --- the Xero client acting on the table (real HTTP, real SDK, the stand-in) ---------------------


@pytest.fixture
def xero(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[XeroStandIn, TenantContext]]:
    standin = XeroStandIn(minute_limit=10, window_seconds=2).start()
    env = {
        **xero_client_env(database_url, standin),
        # Distinct per test: the in-process limiter is shared by the whole test process.
        "TENANT_KEY": f"errors-{time.monotonic_ns()}",
    }
    with runtime_env(monkeypatch, env):
        yield standin, tenant_context()
        standin.stop()


def test_a_short_429_storm_is_waited_out_inside_the_call(xero: tuple[XeroStandIn, TenantContext]) -> None:
    standin, ctx = xero
    ctx.xero.get_accounts()
    standin.set_faults(rate_limit_next=2)
    started = time.monotonic()
    assert ctx.xero.get_accounts()
    assert standin.stats()["rate_limited"] == 2
    # Retry-After: 1 each time, honoured through the shared hold.
    assert time.monotonic() - started >= 1.5


def _refused_after_faults(xero: tuple[XeroStandIn, TenantContext], **faults: object) -> SyncError:
    """What the second of two calls raises when `faults` are set between them."""
    standin, ctx = xero
    ctx.xero.get_accounts()
    standin.set_faults(**faults)
    with pytest.raises(SyncError) as raised:
        ctx.xero.get_accounts()
    return raised.value


def test_a_long_429_storm_surfaces_as_rate_limited_for_the_ledger(xero: tuple[XeroStandIn, TenantContext]) -> None:
    error = _refused_after_faults(xero, rate_limit_next=10)
    assert error.error_class is ErrorClass.RATE_LIMITED
    assert xero[0].stats()["rate_limited"] == 4  # the call and its three inline retries


def test_a_day_limit_is_not_retried_inside_the_call(xero: tuple[XeroStandIn, TenantContext]) -> None:
    error = _refused_after_faults(xero, day_limit_next=1)
    assert error.error_class is ErrorClass.DAY_LIMIT
    assert error.retry_after is not None and error.retry_after > 0
    assert xero[0].stats()["rate_limited"] == 1


def test_an_expired_access_token_is_refreshed_once_and_the_call_retried(
    xero: tuple[XeroStandIn, TenantContext],
) -> None:
    standin, ctx = xero
    ctx.xero.get_accounts()
    before = standin.stats()["token_requests"]
    standin.set_faults(expire_all_tokens=True)
    assert ctx.xero.get_accounts()
    assert standin.stats()["token_requests"] - before == 1


def test_the_remaining_calls_header_holds_the_tenant_back_before_a_429(
    xero: tuple[XeroStandIn, TenantContext],
) -> None:
    standin, ctx = xero
    # 10 calls per 2 s at the stand-in, and nothing but Xero's X-MinLimit-Remaining to go by.
    for _ in range(25):
        ctx.xero.get_accounts()
    assert standin.stats()["rate_limited"] == 0


def test_server_errors_and_outages_come_back_transient(xero: tuple[XeroStandIn, TenantContext]) -> None:
    standin, ctx = xero
    standin.set_faults(server_error_next=1)
    with pytest.raises(SyncError) as server_error:
        ctx.xero.get_accounts()
    assert server_error.value.error_class is ErrorClass.TRANSIENT
    standin.set_faults(outage_seconds=5)
    with pytest.raises(SyncError) as outage:
        ctx.xero.get_accounts()
    assert outage.value.error_class is ErrorClass.TRANSIENT and outage.value.status == 503
    standin.set_faults(outage_seconds=0, offline_seconds=5)
    with pytest.raises(SyncError) as offline:
        ctx.xero.get_accounts()
    assert offline.value.retry_after == ORG_OFFLINE_WAIT


def test_a_lost_response_is_a_transient_transport_error(xero: tuple[XeroStandIn, TenantContext]) -> None:
    standin, ctx = xero
    standin.set_faults(drop_response_after_commit_next=1)
    with pytest.raises(SyncError) as lost:
        ctx.xero.create_contacts([{"Name": "Lost Reply Ltd", "ContactNumber": "lost-1"}], "k-lost-1")
    assert lost.value.error_class is ErrorClass.TRANSIENT
    # ...and the same request with the same key is replayed, not created twice.
    again = ctx.xero.create_contacts([{"Name": "Lost Reply Ltd", "ContactNumber": "lost-1"}], "k-lost-1")
    assert again[0].ok
    assert [c["Name"] for c in standin.contacts()].count("Lost Reply Ltd") == 1
    assert standin.stats()["idempotent_replays"] == 1

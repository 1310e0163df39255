"""Settings for a pipeline test's workers and for the test process, pointing at its own services."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest

from pipeline.runtime import reload_runtime
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.env import standin_env
from pipeline.standins.xero import XeroStandIn

# Fernet.generate_key() once; only ever encrypts the stand-in's tokens.
TEST_TOKEN_KEY = "u4o0zSxOXyCyHq0pDvTD7mKkfNC3tXkU6XyXk8gEj2Q="


def pipeline_env(database_url: str, redis_url: str, cin7: Cin7StandIn, xero: XeroStandIn) -> dict[str, str]:
    """Settings for workers and for this process, pointing at this test's services."""
    return {
        **standin_env(database_url, redis_url, redis_url, cin7, xero),
        "CIN7_THROTTLE_WAIT_SECONDS": "1",
        "XERO_BATCH_WAIT_SECONDS": "0.1",
        "CONTACT_PUSH_QUIET_SECONDS": "0.5",
        "RETRY_BASE_SECONDS": "0.5",
        "RETRY_CAP_SECONDS": "4",
        "STUCK_AFTER_SECONDS": "20",
        # The sweep runs often so that a lost message is healed within a test's patience; the poll
        # interval is long so that tests decide when Cin7 is read.
        "SWEEP_INTERVAL_SECONDS": "3",
        # A beat SIGKILLed by a test leaves its lock: the next one takes over this soon.
        "BEAT_LOCK_SECONDS": "3",
        "POLL_INTERVAL_SECONDS": "3600",
        "TOKEN_ENCRYPTION_KEY": "",
        # A fixed test key: a refresh token (xero connect) is only ever stored under a configured key.
        "TOKEN_ENCRYPTION_KEYS": TEST_TOKEN_KEY,
    }


def xero_client_env(database_url: str, xero: XeroStandIn) -> dict[str, str]:
    """Settings for this process alone to call `xero`: this test's ledger, no Redis, a broker in memory."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "memory://localhost/",
        "XERO_API_URL": xero.api_url,
        "XERO_TOKEN_URL": xero.token_url,
        "XERO_CONNECTIONS_URL": xero.connections_url,
        "XERO_CLIENT_ID": xero.client_id,
        "XERO_CLIENT_SECRET": xero.client_secret,
    }


@contextmanager
def runtime_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> Iterator[None]:
    """This process's settings are `env` for the block, and what they were again after it."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reload_runtime()
    try:
        yield
    finally:
        monkeypatch.undo()
        reload_runtime()

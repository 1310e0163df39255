"""The settings that point the pipeline at running stand-ins: one place for the demo, the tests and the benchmark."""

from __future__ import annotations

from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.xero import XeroStandIn


def standin_env(
    database_url: str, broker_url: str, redis_url: str, cin7: Cin7StandIn, xero: XeroStandIn
) -> dict[str, str]:
    """Environment for a pipeline (this process or its workers) reading `cin7` and writing `xero`.

    Callers add their own pacing (batch waits, retry delays, sweep and Xero windows) on top.
    """
    return {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "REDIS_URL": redis_url,
        "CIN7_API_URL": cin7.api_url,
        "CIN7_ACCOUNT_ID": cin7.account_id,
        "CIN7_APPLICATION_KEY": cin7.application_key,
        # The generated sales span years; the first poll should see them all.
        "CIN7_INITIAL_LOOKBACK_DAYS": "3650",
        # The stand-in does not throttle unless told to; against real Cin7 the default 60 a minute applies.
        "CIN7_CALLS_PER_MINUTE": "100000",
        "XERO_API_URL": xero.api_url,
        "XERO_TOKEN_URL": xero.token_url,
        "XERO_CONNECTIONS_URL": xero.connections_url,
        "XERO_CLIENT_ID": xero.client_id,
        "XERO_CLIENT_SECRET": xero.client_secret,
    }

"""Settings for a pipeline test's workers and for the test process, pointing at its own services."""

from __future__ import annotations

from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.env import standin_env
from pipeline.standins.xero import XeroStandIn


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
        "POLL_INTERVAL_SECONDS": "3600",
        "TOKEN_ENCRYPTION_KEY": "",
    }

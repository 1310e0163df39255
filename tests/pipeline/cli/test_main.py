"""The command line as an operator meets it: clear errors instead of tracebacks, the live window."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

from pipeline.operations.status import usage_today
from tests.conftest import POSTGRES_URL
from tests.pipeline.commands import run_cli
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline


def _status(database_url: str) -> subprocess.CompletedProcess[str]:
    return run_cli({**os.environ, "DATABASE_URL": database_url, "REDIS_URL": ""}, "status", timeout=60)


def test_status_on_a_missing_ledger_says_which_and_what_to_do_without_a_traceback() -> None:
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    result = _status(f"{base}/cin7xero_no_such_ledger")
    assert result.returncode == 1
    text = " ".join((result.stdout + result.stderr).split())
    assert "cannot use the ledger at" in text and "cin7xero_no_such_ledger" in text
    assert "cin7xero db upgrade" in text
    assert "Traceback" not in text


def test_status_prints_the_window_the_live_sync_covers(database_url: str) -> None:
    result = _status(database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    text = " ".join(result.stdout.split())
    assert (
        "live sync: SYNC_START_DATE not set; not polled yet: the first poll reads sales changed in the last 30 days"
        in text
    )
    assert "contact updates Xero refused" in text


def test_status_shows_todays_calls_against_the_limits_and_whether_beat_and_workers_run(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(sales=10, seed=3, workers=1)
    p.poll_and_wait()
    today = usage_today(p.ctx)

    running = " ".join(run_cli({**os.environ, **p.env}, "status", timeout=60).stdout.split())
    p.workers.stop_all()
    stopped = " ".join(run_cli({**os.environ, **p.env}, "status", timeout=60).stdout.split())

    assert f"today (UTC): Xero {today['xero'][0]} of 5000 calls" in running and today["xero"][0] > 0
    assert f"Cin7 {today['cin7'][0]} calls" in running
    assert "beat: alive, last poll" in running
    # The test's worker is started without the reconcile queue: status names it.
    assert "workers: 1 answered; NO worker consumes reconcile" in running
    assert "workers: 0 answered; NO worker consumes cin7, mapping, xero, maintenance, reconcile" in stopped

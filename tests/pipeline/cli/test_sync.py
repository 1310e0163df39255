"""`cin7xero sync --once --wait` as an operator runs it: every part its own process.

Stand-ins (`cin7xero standins serve`), worker processes, and the CLI talk only over HTTP, Redis and
PostgreSQL. A few hundred hostile sales go through; a second run changes nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from pipeline.standins.cin7 import DEFAULT_ACCOUNT_ID, DEFAULT_APPLICATION_KEY
from pipeline.standins.generator import generate
from pipeline.workerpool import ROOT, WorkerPool
from tests.pipeline.commands import run_cli

pytestmark = pytest.mark.pipeline

SALES = 300
SEED = 21
NOW = "2026-11-20T09:30:00+00:00"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def standins(tmp_path: Path) -> Iterator[tuple[str, str]]:
    cin7_port, xero_port = _free_port(), _free_port()
    log = (tmp_path / "standins.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.cli.main",
            "standins",
            "serve",
            "--cin7-port",
            str(cin7_port),
            "--xero-port",
            str(xero_port),
            "--sales",
            str(SALES),
            "--seed",
            str(SEED),
            "--now",
            NOW,
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    cin7_url, xero_url = f"http://127.0.0.1:{cin7_port}", f"http://127.0.0.1:{xero_port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"{xero_url}/_standin/stats", timeout=1).raise_for_status()
            requests.get(f"{cin7_url}/_standin/stats", timeout=1).raise_for_status()
            break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        raise RuntimeError((tmp_path / "standins.log").read_text())
    yield cin7_url, xero_url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def _env(database_url: str, redis_url: str, cin7_url: str, xero_url: str, **extra: str) -> dict[str, str]:
    """Settings for the CLI and the workers: this test's ledger and broker, the stand-ins' processes."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
        "CIN7_API_URL": f"{cin7_url}/ExternalApi/v2",
        "CIN7_ACCOUNT_ID": DEFAULT_ACCOUNT_ID,
        "CIN7_APPLICATION_KEY": DEFAULT_APPLICATION_KEY,
        "CIN7_INITIAL_LOOKBACK_DAYS": "3650",
        "CIN7_CALLS_PER_MINUTE": "100000",
        "XERO_API_URL": f"{xero_url}/api.xro/2.0",
        "XERO_TOKEN_URL": f"{xero_url}/connect/token",
        "XERO_CONNECTIONS_URL": f"{xero_url}/connections",
        "XERO_CLIENT_ID": "standin-client",
        "XERO_CLIENT_SECRET": "standin-secret",
        # Xero's 60-call minute, compressed so that the test waits seconds rather than minutes for it.
        "XERO_RATE_WINDOW_SECONDS": "10",
        **extra,
    }


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, *args, timeout=600)


@contextmanager
def _two_workers(env: dict[str, str], logdir: Path, name: str, *, beat: bool) -> Iterator[WorkerPool]:
    """Two worker processes `name`-a (with beat if `beat`) and `name`-b, stopped after the block."""
    workers = WorkerPool(env=env, logdir=logdir, processes=[])
    try:
        workers.start(f"{name}-a", concurrency=2, beat=beat)
        workers.start(f"{name}-b", concurrency=2)
        yield workers
    finally:
        workers.stop_all()


def test_sync_once_wait_against_separate_processes_is_exact_and_repeatable(
    standins: tuple[str, str], database_url: str, redis_url: str, tmp_path: Path
) -> None:
    cin7_url, xero_url = standins
    env = _env(database_url, redis_url, cin7_url, xero_url, POLL_INTERVAL_SECONDS="3600", SWEEP_INTERVAL_SECONDS="5")
    with _two_workers(env, tmp_path, "cli", beat=True) as workers:
        # the ledger of this test was cloned migrated; `db upgrade` must be a no-op on it
        assert _cli(env, "db", "upgrade").returncode == 0

        first = _cli(env, "sync", "--once", "--wait", "--timeout", "300")
        assert first.returncode == 0, first.stdout + first.stderr + workers.logs()
        assert "sync summary" in first.stdout

        xero_invoices = requests.get(f"{xero_url}/_standin/invoices", timeout=30).json()
        dataset = generate(SEED, SALES, now=datetime.fromisoformat(NOW))
        by_number: dict[str, list[dict[str, object]]] = {}
        for invoice in xero_invoices:
            by_number.setdefault(str(invoice["InvoiceNumber"]), []).append(invoice)
        synced = [e for e in dataset.expectations if e.outcome == "synced"]
        assert len(synced) > 200
        for expectation in synced:
            found = by_number.get(expectation.invoice_number, [])
            assert len(found) == 1, expectation.invoice_number
            assert Decimal(str(found[0]["SubTotal"])) == expectation.subtotal
            assert Decimal(str(found[0]["TotalTax"])) == expectation.total_tax
            assert Decimal(str(found[0]["Total"])) == expectation.total
        assert len(xero_invoices) == len(synced)

        contacts = requests.get(f"{xero_url}/_standin/contacts", timeout=30).json()
        numbers = [c["ContactNumber"].lower() for c in contacts if c.get("ContactNumber")]
        assert len(numbers) == len(set(numbers))
        assert set(numbers) >= {e.customer_id for e in synced}

        dead = _cli(env, "dlq", "list", "--json")
        assert dead.returncode == 0
        rejected = {e.invoice_number for e in dataset.expectations if e.outcome.startswith("dead")}
        letters = json.loads(dead.stdout)
        assert {letter["document_number"] for letter in letters} == rejected
        assert all(letter["messages"] for letter in letters)

        writes_before = _writes(xero_url)
        second = _cli(env, "sync", "--once", "--wait", "--timeout", "300")
        assert second.returncode == 0, second.stdout + second.stderr
        assert _writes(xero_url) == writes_before
        assert len(requests.get(f"{xero_url}/_standin/invoices", timeout=30).json()) == len(synced)


def _writes(xero_url: str) -> int:
    stats = requests.get(f"{xero_url}/_standin/stats", timeout=10).json()
    return sum(n for name, n in stats["by_endpoint"].items() if name.split(" ")[0] in ("PUT", "POST"))


def test_sync_once_wait_without_beat_settles_through_cin7_and_xero_faults(
    standins: tuple[str, str], database_url: str, redis_url: str, tmp_path: Path
) -> None:
    # No beat, so no sweep and no second poll: every retry must be a countdown of its own task.
    cin7_url, xero_url = standins
    env = _env(database_url, redis_url, cin7_url, xero_url, RETRY_BASE_SECONDS="1", RETRY_CAP_SECONDS="8")
    with _two_workers(env, tmp_path, "nobeat", beat=False) as workers:
        # A Cin7 500 for the first seconds (the poll), a 500 on five sale reads (fetches), then Xero down,
        # a storm of 429s, and two answers lost after Xero committed the write.
        cin7_faults = {"outage_seconds": 2, "sale_errors_next": 5}
        requests.post(f"{cin7_url}/_standin/faults", json=cin7_faults, timeout=5).raise_for_status()
        faults = {"outage_seconds": 3, "rate_limit_next": 8, "drop_response_after_commit_next": 2}
        requests.post(f"{xero_url}/_standin/faults", json=faults, timeout=5).raise_for_status()

        run = _cli(env, "sync", "--once", "--wait", "--timeout", "300")
        assert run.returncode == 0, run.stdout + run.stderr + workers.logs()

        xero_invoices = requests.get(f"{xero_url}/_standin/invoices", timeout=30).json()
        dataset = generate(SEED, SALES, now=datetime.fromisoformat(NOW))
        synced = {e.invoice_number: e for e in dataset.expectations if e.outcome == "synced"}
        numbers = [str(invoice["InvoiceNumber"]) for invoice in xero_invoices]
        assert sorted(numbers) == sorted(synced), "every good invoice once, nothing else"
        for invoice in xero_invoices:
            assert Decimal(str(invoice["Total"])) == synced[str(invoice["InvoiceNumber"])].total
        stats = requests.get(f"{xero_url}/_standin/stats", timeout=10).json()
        assert stats["rate_limited"] >= 8
        cin7_stats = requests.get(f"{cin7_url}/_standin/stats", timeout=10).json()
        assert cin7_stats["calls"] > 0
        assert "Scheduler: Sending due task" not in workers.logs()

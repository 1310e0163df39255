"""Historical migration end to end: a two-year history, some of it typed into Xero, a lock date a year back.

The plan is the test run (it writes nothing to Xero); the cutover goes through the real workers, is
killed twice by SIGKILL while it records and waits, and ends with everything in Xero exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.ledger.models import DocumentState
from pipeline.migration.plan import plan_migration
from pipeline.migration.run import progress
from pipeline.reconcile.run import run_reconciliation
from pipeline.reconcile.window import resolve_window
from pipeline.standins.generator.history import History, generate_history
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline

SALES = 120


@pytest.fixture
def history() -> History:
    return generate_history(31, SALES, now=datetime.now(UTC))


def _pipeline(make_pipeline: Callable[..., Pipeline], history: History) -> Pipeline:
    return make_pipeline(
        dataset=history.dataset,
        workers=2,
        xero={"seed_invoices": history.xero_invoices, "period_lock_date": history.lock_date},
    )


def _first_day(history: History) -> date:
    return min(date.fromisoformat(str(i["InvoiceDate"])[:10]) for s in history.dataset.sales for i in s["Invoices"])


def test_the_plan_says_what_happens_to_every_document_and_writes_nothing(
    make_pipeline: Callable[..., Pipeline], history: History, tmp_path: Path
) -> None:
    p = _pipeline(make_pipeline, history)
    window = resolve_window(_first_day(history), None, 0, datetime.now(UTC).date())
    writes, sale_reads = p.xero_writes(), p.cin7.stats()["by_endpoint"].get("sale", 0)

    planned, files = plan_migration(p.ctx, window, out_dir=tmp_path / "plan")

    invoices = {row.number: row for row in planned.plan.rows if row.kind == "invoice"}
    wrong = {n: (row.fate.value, history.fates[n]) for n, row in invoices.items() if row.fate.value != history.fates[n]}
    assert not wrong
    assert set(invoices) == set(history.fates)
    assert p.xero_writes() == writes
    invoiced_sales = {e.sale_id for e in history.dataset.expectations}
    detail_calls = p.cin7.stats()["by_endpoint"].get("sale", 0) - sale_reads
    # One detail call per invoiced sale, none for a sale never invoiced.
    assert detail_calls <= len(invoiced_sales) < len(history.dataset.sales)
    assert {path.name for path in files.values()} == {"plan.html", "plan.csv", "plan.json"}
    counts = planned.plan.counts()
    assert counts["adopt"] > 0 and counts["conflict"] > 0 and counts["locked"] > 0 and counts["create"] > 0
    assert planned.plan.cost.xero_write_calls > 0 and planned.plan.cost.hours > 0

    # The details are kept: a second test run reads no sale again.
    before = p.cin7.stats()["by_endpoint"].get("sale", 0)
    plan_migration(p.ctx, window, out_dir=tmp_path / "again")
    assert p.cin7.stats()["by_endpoint"].get("sale", 0) == before


def _cutover(p: Pipeline, since: date, *, kill_after: float | None) -> int:
    """`cin7xero migrate run --yes` as its own process, SIGKILLed after `kill_after` seconds if given."""
    env = {**os.environ, **p.env}
    command = [sys.executable, "-m", "pipeline.cli.main", "migrate", "run", "--from", since.isoformat(), "--yes"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if kill_after is not None:
            time.sleep(kill_after)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            return -9
        _out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err.decode(errors="replace")[-3000:]
        return process.returncode
    finally:
        if process.poll() is None:
            process.kill()


def test_a_cutover_killed_twice_ends_with_everything_in_xero_once_and_reconciliation_clean(
    make_pipeline: Callable[..., Pipeline], history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cutover is tomorrow: the live sync (polling all along) leaves every document to the migration,
    # whose window runs to the day before.
    monkeypatch.setenv("SYNC_START_DATE", (datetime.now(UTC).date() + timedelta(days=1)).isoformat())
    p = _pipeline(make_pipeline, history)
    since = _first_day(history)
    seeded = {str(i["InvoiceNumber"]): i for i in p.xero.invoices()}

    _cutover(p, since, kill_after=3.0)
    _cutover(p, since, kill_after=4.0)
    _cutover(p, since, kill_after=None)

    found = progress(p.ctx)
    assert found is not None and found.state == "done" and found.settled
    by_number: dict[str, list[dict[str, object]]] = {}
    for invoice in p.xero.invoices():
        by_number.setdefault(str(invoice["InvoiceNumber"]), []).append(invoice)
    assert all(len(found) == 1 for found in by_number.values()), {n: len(v) for n, v in by_number.items() if len(v) > 1}
    rows = p.documents()
    for number, fate in history.fates.items():
        if fate == "skipped":
            # A draft or void: never read, never written.
            assert number not in by_number and (number not in rows or rows[number].state == DocumentState.IGNORED)
            continue
        row = rows[number]
        match fate:
            case "create":
                expectation = next(e for e in history.dataset.expectations if e.invoice_number == number)
                if expectation.outcome == "dead_xero":
                    assert row.state == DocumentState.DEAD, (number, row.state)
                    continue
                assert row.state == DocumentState.SYNCED, (number, row.state, row.last_error)
                assert Decimal(str(by_number[number][0]["Total"])) == expectation.total
            case "adopt":
                assert row.state == DocumentState.SYNCED and row.xero_id == seeded[number]["InvoiceID"]
            case "conflict":
                assert row.state == DocumentState.CONFLICT and row.xero_id == seeded[number]["InvoiceID"]
                assert by_number[number][0]["Total"] == seeded[number]["Total"]  # left alone
            case "locked":
                assert row.state == DocumentState.LOCKED and number not in by_number
            case "blocked":
                assert row.state == DocumentState.DEAD and number not in by_number
            case _:
                raise AssertionError(f"{number}: unknown fate {fate}")
    # Nothing dated on or before the lock date was written.
    for invoice in p.xero.invoices():
        if str(invoice["InvoiceNumber"]) not in seeded:
            day = datetime.fromtimestamp(int(str(invoice["Date"])[6:-7]) / 1000, tz=UTC).date()
            assert day > history.lock_date
    # Payments of migrated sales came with them, exactly once.
    verification = p.verify(conflicts={n for n, fate in history.fates.items() if fate == "conflict"})
    receivables_problems = [x for x in verification.receivables.problems if "lock" not in x]
    payments = Counter(row.state for row in p.rows("payment"))
    assert payments[DocumentState.SYNCED] > 0
    assert not receivables_problems, receivables_problems
    # Reconciliation over the migrated window: every discrepancy is one the plan named.
    result = run_reconciliation(p.ctx, since=history.lock_date + timedelta(days=1), yield_seconds=0)
    explained = {n for n, fate in history.fates.items() if fate in ("conflict", "blocked", "locked", "skipped")}
    dead = {e.invoice_number for e in history.dataset.expectations if e.outcome.startswith("dead")}
    unexplained = [f for f in result.findings if f.number not in explained | dead]
    assert not unexplained, [(f.kind, f.number, f.detail) for f in unexplained]

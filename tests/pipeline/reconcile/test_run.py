"""Reconciliation end to end: a real sync (workers, Redis, PostgreSQL, stand-ins), then discrepancies
seeded on both sides, found, and the healable ones fixed through the normal sync path."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from pipeline.app import TaskName, send
from pipeline.cli.reconcile import reconcile as reconcile_command
from pipeline.errors import SyncError
from pipeline.ledger.models import AlertState, DocumentState, ReconciliationRun
from pipeline.reconcile.rows import Finding
from pipeline.reconcile.run import ReconcileResult, run_reconciliation
from pipeline.standins.generator import InvoiceExpectation, edit_invoice, void_invoice
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline


def _reconcile(p: Pipeline, out: Path, *, heal: bool = False) -> ReconcileResult:
    return run_reconciliation(p.ctx, heal_findings=heal, out_dir=out, yield_seconds=5)


def _invoice_date(p: Pipeline, e: InvoiceExpectation) -> date:
    invoice = next(i for i in p.cin7.sale(e.sale_id)["Invoices"] if i["TaskID"].lower() == e.task_id.lower())
    return date.fromisoformat(str(invoice["InvoiceDate"])[:10])


def _in_window(p: Pipeline, e: InvoiceExpectation, lookback: int = 35) -> bool:
    today = datetime.now(UTC).date()
    return today - timedelta(days=lookback) <= _invoice_date(p, e) <= today


def _unpaid(p: Pipeline, e: InvoiceExpectation) -> bool:
    """The sale has no payments and no credit notes in Cin7."""
    sale = p.cin7.sale(e.sale_id)
    return not sale.get("CreditNotes") and not any(i.get("Payments") for i in sale["Invoices"])


def _found(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.kind.value, f.number) for f in findings}


def test_a_clean_sync_reconciles_without_discrepancies_in_process_and_through_the_broker(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORT_DIR", str(tmp_path / "reports"))
    # Nine sales: the generator adds its hostile cases (dead letters by design) only from ten on.
    p = make_pipeline(sales=9, seed=4)
    p.poll_and_wait()
    assert not p.dead_reasons()

    result = _reconcile(p, tmp_path / "clean")

    assert result.findings == [], [f.as_json() for f in result.findings]
    assert result.summary["total"] == 0
    assert result.summary["cin7_invoices"] >= 9
    assert result.summary["xero_invoices"] == len(p.xero.invoices())
    # The sync's payments, credit notes, refunds and allocations agree too (no balance finding above).
    notes = [n for n in p.xero.credit_notes() if n["Type"] == "ACCRECCREDIT"]
    assert result.summary["xero_credit_notes"] == len(notes)
    assert result.summary["cin7_credit_notes"] >= len(notes)
    # Every sale's detail came from the ledger's snapshot: no sale?ID= call for unchanged sales.
    assert result.summary["cin7_sales_fetched"] == 0
    assert result.summary["cin7_sales_from_ledger"] == 9
    assert 'id="clean"' in result.report_html.read_text(encoding="utf-8")

    # The command line, as `cin7xero reconcile --out DIR` runs it.
    cli = typer.Typer()
    cli.command("reconcile")(reconcile_command)
    cli.command("noop")(lambda: None)
    today = datetime.now(UTC).date()
    invoked = CliRunner().invoke(
        cli,
        [
            "reconcile",
            "--since",
            (today - timedelta(days=35)).isoformat(),
            "--until",
            today.isoformat(),
            "--out",
            str(tmp_path / "cli"),
        ],
    )
    assert invoked.exit_code == 0, invoked.output
    assert "report:" in invoked.output and (tmp_path / "cli" / "report.csv").exists()
    assert CliRunner().invoke(cli, ["reconcile", "--since", "yesterday"]).exit_code == 2

    # The same through the broker, on the reconcile queue, as beat sends it.
    p.workers.start("reconciler", queues="reconcile", concurrency=1)
    with p.ctx.sessions() as session:
        last_run = session.scalar(select(func.max(ReconciliationRun.id))) or 0
    send(TaskName.RECONCILE, p.ctx.tenant_key)
    deadline = time.monotonic() + 60
    run: ReconciliationRun | None = None
    while time.monotonic() < deadline:
        with p.ctx.sessions() as session:
            run = session.scalar(
                select(ReconciliationRun)
                .where(ReconciliationRun.id > last_run, ReconciliationRun.finished_at.is_not(None))
                .order_by(ReconciliationRun.id.desc())
            )
        if run is not None:
            break
        time.sleep(0.3)
    assert run is not None, p.workers.logs()
    assert run.summary is not None and run.summary["total"] == 0 and run.findings == []
    assert run.report_dir is not None
    assert Path(run.report_dir) == (tmp_path / "reports" / str(run.id)).resolve()
    assert (Path(run.report_dir) / "report.html").exists()


def _xero_payload(number: str, contact_id: str, day: date) -> dict[str, Any]:
    return {
        "Type": "ACCREC",
        "InvoiceNumber": number,
        "Contact": {"ContactID": contact_id},
        "Date": day.isoformat(),
        "DueDate": (day + timedelta(days=30)).isoformat(),
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": [
            {
                "Description": "Entered by hand in Xero",
                "Quantity": 1,
                "UnitAmount": 50,
                "AccountCode": "200",
                "TaxType": "OUTPUT",
            }
        ],
    }


def test_every_seeded_discrepancy_is_found_and_heal_fixes_what_the_sync_can(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    p = make_pipeline(sales=40, seed=9)
    p.poll_and_wait()
    docs = p.documents()
    today = datetime.now(UTC).date()

    # Before anything is seeded, the only discrepancies are the generator's dead letters, each marked known.
    dead = {e.invoice_number for e in p.dataset.expectations if e.outcome.startswith("dead") and _in_window(p, e)}
    assert dead, "the dataset should carry dead letters in the window"
    baseline = _reconcile(p, tmp_path / "baseline")
    assert _found(baseline.findings) == {("missing_in_xero", n) for n in dead}
    assert all(f.known and f.known.startswith("dead letter ") and not f.healable for f in baseline.findings)

    candidates = [
        e
        for e in p.dataset.expectations
        if e.outcome == "synced"
        and docs[e.invoice_number].xero_status == "AUTHORISED"
        and len(p.cin7.sale(e.sale_id)["Invoices"]) == 1
        # Unpaid and uncredited: Xero refuses to edit a paid or credited invoice, and the seeding edits.
        and _unpaid(p, e)
        and _in_window(p, e)
    ]
    assert len(candidates) >= 9, len(candidates)
    (paid_changed, missing, mismatch, rounding, voided, contact, moved, same_number, relinked) = candidates[:9]
    xid = {e.invoice_number: str(docs[e.invoice_number].xero_id) for e in candidates}
    now = datetime.now(UTC)

    # Paid in Xero, then changed in Cin7: the sync records a conflict and leaves Xero alone.
    requests.post(f"{p.xero.url}/_standin/invoices/{xid[paid_changed.invoice_number]}/pay", timeout=10)
    p.cin7.put_sale(edit_invoice(p.cin7.sale(paid_changed.sale_id), paid_changed.task_id, now=now, quantity_delta=2))
    p.poll_and_wait()
    assert p.documents()[paid_changed.invoice_number].state == DocumentState.CONFLICT

    xero = p.xero
    with xero._lock:
        # Missing: someone deleted it in Xero behind the ledger's back.
        gone = xero._invoices.pop(xid[missing.invoice_number])
        xero._invoice_by_number.pop(("ACCREC", gone["InvoiceNumber"].casefold()), None)
        xero._invoices_by_contact.get(gone["ContactID"], set()).discard(gone["InvoiceID"])
        # Totals changed in Xero: by ten dollars, and by two cents.
        changed = xero._invoices[xid[mismatch.invoice_number]]
        changed["SubTotal"] += Decimal("10.00")
        changed["Total"] += Decimal("10.00")
        rounded = xero._invoices[xid[rounding.invoice_number]]
        rounded["TotalTax"] += Decimal("0.02")
        rounded["Total"] += Decimal("0.02")
        # The same invoice number twice in Xero.
        clone = copy.deepcopy(xero._invoices[xid[same_number.invoice_number]])
        clone["InvoiceID"] = str(uuid.uuid4())
        xero._invoices_by_contact.setdefault(clone["ContactID"], set()).add(clone["InvoiceID"])
        xero._touch(xero._invoices, clone, "InvoiceID")

    # Through Xero's API, as a person or another app would: a different contact, another date, an
    # invoice renamed and created again (two Xero invoices for one Cin7 invoice), one unknown to Cin7.
    api = p.ctx.xero
    contacts = [c for c in xero.contacts() if c.get("ContactStatus") == "ACTIVE"]
    current = {i["InvoiceID"]: i for i in xero.invoices()}
    other = next(c for c in contacts if c["ContactID"] != current[xid[contact.invoice_number]]["Contact"]["ContactID"])
    window_start = today - timedelta(days=35)
    results = api.update_invoices(
        [
            {"InvoiceID": xid[contact.invoice_number], "Contact": {"ContactID": other["ContactID"]}},
            {"InvoiceID": xid[moved.invoice_number], "Date": (window_start - timedelta(days=3)).isoformat()},
            {"InvoiceID": xid[relinked.invoice_number], "InvoiceNumber": f"{relinked.invoice_number}-OLD"},
        ],
        uuid.uuid4().hex,
    )
    assert all(r.ok for r in results), [r.messages for r in results]
    created = api.create_invoices(
        [
            _xero_payload(
                relinked.invoice_number, current[xid[relinked.invoice_number]]["Contact"]["ContactID"], today
            ),
            _xero_payload("INV-09999", other["ContactID"], today),
            # Xero's own numbering: not ours, so not reported.
            _xero_payload("INV-0042", other["ContactID"], today),
        ],
        uuid.uuid4().hex,
    )
    assert all(r.ok for r in created), [r.messages for r in created]

    # Voided in Cin7, not yet polled: reconciliation reads this one sale's detail itself.
    p.cin7.put_sale(void_invoice(p.cin7.sale(voided.sale_id), voided.task_id, now=datetime.now(UTC)))

    writes_before = p.xero_writes()
    found = _reconcile(p, tmp_path / "seeded")
    # Reconciliation reads; it never writes to Xero.
    assert p.xero_writes() == writes_before

    expected = {
        ("missing_in_xero", missing.invoice_number),
        ("mismatch", mismatch.invoice_number),
        ("rounding", rounding.invoice_number),
        ("status", voided.invoice_number),
        ("status", paid_changed.invoice_number),
        # Paid in Xero through the stand-in, not in Cin7: what was paid differs too (never healed).
        ("balance", paid_changed.invoice_number),
        ("contact", contact.invoice_number),
        ("date", moved.invoice_number),
        ("duplicate", same_number.invoice_number),
        ("duplicate", relinked.invoice_number),
        ("unknown_in_xero", "INV-09999"),
    } | {("missing_in_xero", n) for n in dead}
    assert _found(found.findings) == expected, [f.as_json() for f in found.findings]
    assert found.summary["cin7_sales_fetched"] == 1  # only the sale changed since the last poll
    by_key = {(f.kind.value, f.number): f for f in found.findings}
    assert by_key[("mismatch", mismatch.invoice_number)].difference == {
        "SubTotal": Decimal("10.00"),
        "Total": Decimal("10.00"),
    }
    assert by_key[("rounding", rounding.invoice_number)].difference == {
        "TotalTax": Decimal("0.02"),
        "Total": Decimal("0.02"),
    }
    assert by_key[("status", paid_changed.invoice_number)].known == "ledger conflict"
    healable = {(f.kind.value, f.number) for f in found.findings if f.healable}
    assert healable == {
        ("missing_in_xero", missing.invoice_number),
        ("mismatch", mismatch.invoice_number),
        ("status", voided.invoice_number),
        ("date", moved.invoice_number),
    }
    with p.ctx.sessions() as session:
        stored = session.get(ReconciliationRun, found.run_id)
        alert = session.scalar(select(AlertState).where(AlertState.error_class == "reconciliation"))
    assert stored is not None and stored.summary is not None and stored.findings is not None
    assert stored.summary["total"] == len(expected) and len(stored.findings) == len(expected)
    assert alert is not None and alert.pending_count >= 1
    assert str(found.report_html) in str((alert.examples or [""])[-1])

    healed = _reconcile(p, tmp_path / "heal", heal=True)
    assert {(f.kind.value, f.number) for f in healed.findings if f.healed} == healable
    p.poll_and_wait()

    after = _reconcile(p, tmp_path / "after")
    assert _found(after.findings) == expected - healable
    invoices = {i["InvoiceNumber"]: i for i in xero.invoices() if i["Status"] != "DELETED"}
    assert invoices[missing.invoice_number]["Total"] == missing.total
    assert invoices[mismatch.invoice_number]["Total"] == mismatch.total
    assert invoices[voided.invoice_number]["Status"] == "VOIDED"
    assert p.documents()[voided.invoice_number].state == DocumentState.VOIDED


def _reconciliation_alert(p: Pipeline) -> AlertState | None:
    with p.ctx.sessions() as session:
        return session.scalar(select(AlertState).where(AlertState.error_class == "reconciliation"))


def test_findings_are_kept_and_alerted_when_the_report_cannot_be_written(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    p = make_pipeline(sales=9, seed=4)
    p.poll_and_wait()
    # Cin7 changes a synced invoice after the sync read it (no poll since): one discrepancy.
    victim = next(e for e in p.dataset.expectations if e.outcome == "synced" and _in_window(p, e))
    p.cin7.put_sale(edit_invoice(p.cin7.sale(victim.sale_id), victim.task_id, now=datetime.now(UTC), quantity_delta=2))
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the report directory should be")

    result = run_reconciliation(p.ctx, out_dir=blocked / "run", yield_seconds=0)

    assert result.summary["total"] >= 1 and "report not written" in result.summary["report_error"]
    with p.ctx.sessions() as session:
        stored = session.get(ReconciliationRun, result.run_id)
        assert stored is not None and stored.finished_at is not None
        assert stored.findings and any(f["number"] == victim.invoice_number for f in stored.findings)
    alert = _reconciliation_alert(p)
    assert alert is not None and alert.examples
    assert any("kept in the ledger" in str(example) for example in alert.examples)


def test_a_reconciliation_that_fails_alerts_and_says_why(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    p = make_pipeline(sales=4, seed=4, workers=0)
    p.xero.set_faults(outage_seconds=120)

    with pytest.raises(SyncError) as failed:
        run_reconciliation(p.ctx, out_dir=tmp_path / "run", yield_seconds=0)

    alert = _reconciliation_alert(p)
    assert alert is not None and any(f"failed: {failed.value}" in str(example) for example in alert.examples or []), (
        alert.examples if alert else None
    )

"""Historical migration of purchases: bills, supplier payments and credit notes over two years, some bills
typed into Xero by hand (one of them wrongly), another supplier's bill sharing a number, a lock date a
year back. The plan decides each bill's fate; the cutover, killed once, writes each migratable bill once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.ledger.models import DocumentState
from pipeline.migration.plan import plan_migration
from pipeline.migration.plan_rows import Fate
from pipeline.migration.run import progress
from pipeline.reconcile.run import run_reconciliation
from pipeline.reconcile.window import resolve_window
from pipeline.standins.generator import generate_purchases, with_purchases
from pipeline.standins.generator.hand_entry import altered_bill, typed_bill
from pipeline.standins.generator.history import generate_history
from pipeline.standins.generator.purchase_documents import bills_of
from pipeline.standins.generator.purchase_expectations import BillExpectation
from tests.pipeline.conftest import Pipeline
from tests.pipeline.migration.test_migration import _cutover

pytestmark = pytest.mark.pipeline


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _key(bill: BillExpectation) -> tuple[str, str]:
    return bill.purchase_id.lower(), bill.task_id.lower()


def test_purchases_migrate_by_fate_adopting_only_the_suppliers_own_bills(
    make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SYNC_START_DATE", (datetime.now(UTC).date() + timedelta(days=1)).isoformat())
    now = datetime.now(UTC)
    history = generate_history(43, 12, now=now, hostile=False)
    first = datetime.combine(history.start, time.min, UTC) + timedelta(days=26)
    purchases = generate_purchases(43, 40, now=now, customers=history.dataset.customers, since=first)
    details = {p["ID"]: p for p in purchases.purchases}
    bill_json = {(p["ID"].lower(), b["TaskID"].lower()): b for p in purchases.purchases for b in bills_of(p)}
    after_lock = [b for b in purchases.bills if b.outcome == "synced" and b.date > history.lock_date]
    assert len(after_lock) >= 6, "the history has bills to adopt, conflict and create after the lock date"
    adopted, altered, shared = after_lock[0], after_lock[1], after_lock[2]
    rng = random.Random(7)
    typed = [
        typed_bill(details[adopted.purchase_id], bill_json[_key(adopted)]),
        altered_bill(rng, details[altered.purchase_id], bill_json[_key(altered)]),
    ]
    # A bill of another business that happens to share a number with one Cin7 has: not ours to adopt.
    stranger = typed_bill(details[shared.purchase_id], bill_json[_key(shared)])
    stranger["Contact"] = {"Name": "Unrelated Supplies Pty Ltd"}
    typed.append(stranger)
    p = make_pipeline(
        dataset=with_purchases(history.dataset, purchases),
        workers=2,
        settings={"SYNC_PURCHASES": "true"},
        xero={"seed_invoices": history.xero_invoices + typed, "period_lock_date": history.lock_date},
    )
    seeded = {(str(i["Contact"]["Name"]), str(i["InvoiceNumber"])): i for i in p.xero.invoices()}

    def expected_fate(bill: BillExpectation) -> Fate:
        if bill.outcome == "ignored":
            return Fate.SKIPPED
        if bill is adopted:
            return Fate.ADOPT
        if bill is altered:
            return Fate.CONFLICT
        return Fate.LOCKED if bill.date <= history.lock_date else Fate.CREATE

    # The test run: every read bill's fate as a bookkeeper would decide it, nothing written.
    window = resolve_window(history.start, None, 0, now.date())
    writes, reads = p.xero_writes(), p.cin7.stats()["by_endpoint"].get("advanced-purchase", 0)
    planned, _files = plan_migration(p.ctx, window, out_dir=tmp_path / "plan")
    assert p.xero_writes() == writes
    rows = {(r.sale_id, r.task_id): r for r in planned.plan.rows if r.kind == "bill"}
    live = [b for b in purchases.bills if b.outcome == "synced"]
    wrong = {
        b.invoice_number: (rows[_key(b)].fate.value if _key(b) in rows else None, expected_fate(b).value)
        for b in live
        if _key(b) not in rows or rows[_key(b)].fate is not expected_fate(b)
    }
    assert not wrong
    for bill in purchases.bills:
        if bill.outcome == "ignored" and _key(bill) in rows:
            assert rows[_key(bill)].fate is Fate.SKIPPED, bill.invoice_number
    assert rows[_key(altered)].reason and "Total" in rows[_key(altered)].reason
    detail_reads = p.cin7.stats()["by_endpoint"].get("advanced-purchase", 0) - reads
    invoiced = {b.purchase_id for b in live}
    assert 0 < detail_reads <= len(invoiced) < len(purchases.purchases)
    counts = planned.plan.counts_by_kind()
    assert counts["bill_payment"]["create"] > 0 and counts["bill_payment"]["locked"] > 0

    # The cutover, killed once while it records and writes, then run to the end.
    _cutover(p, history.start, kill_after=4.0)
    _cutover(p, history.start, kill_after=None)
    found = progress(p.ctx)
    assert found is not None and found.state == "done" and found.settled

    links = {row.sale_id: row for row in p.rows("bill")}
    assert links, "the migration recorded the bills"
    bills = [i for i in p.xero.invoices() if i["Type"] == "ACCPAY"]
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for bill in bills:
        by_key.setdefault((str(bill["Contact"]["Name"]), str(bill["InvoiceNumber"])), []).append(bill)
    assert all(len(v) == 1 for v in by_key.values()), {k: len(v) for k, v in by_key.items() if len(v) > 1}
    ledger = {(row.sale_id, row.task_id): row for row in p.rows("bill")}
    for bill in live:
        row = ledger[_key(bill)]
        supplier = next(s["Name"] for s in purchases.suppliers if s["ID"] == bill.supplier_id).strip()
        in_xero = by_key.get((supplier, bill.invoice_number), [])
        match expected_fate(bill):
            case Fate.CREATE:
                assert row.state == DocumentState.SYNCED, (bill.invoice_number, row.state, row.last_error)
                assert len(in_xero) == 1 and _money(in_xero[0]["Total"]) == bill.total
                assert str(in_xero[0]["InvoiceID"]).lower() == str(row.xero_id).lower()
            case Fate.ADOPT:
                assert row.state == DocumentState.SYNCED
                assert row.xero_id == seeded[(supplier, bill.invoice_number)]["InvoiceID"]
            case Fate.CONFLICT:
                assert row.state == DocumentState.CONFLICT
                assert _money(in_xero[0]["Total"]) != bill.total  # left as the bookkeeper typed it
            case Fate.LOCKED:
                assert row.state == DocumentState.LOCKED and not in_xero
    # The stranger's bill stayed the stranger's; ours of that number was written beside it.
    assert len(by_key[("Unrelated Supplies Pty Ltd", shared.invoice_number)]) == 1
    # Supplier payments of migrated bills came with them, once each, none on or before the lock date.
    payments = [pay for pay in p.xero.payments() if pay["Status"] != "DELETED"]
    paid = [r for r in p.rows("bill_payment") if r.state == DocumentState.SYNCED]
    assert paid and len({r.xero_id for r in paid}) == len(paid)
    assert {str(r.xero_id).lower() for r in paid} <= {str(pay["PaymentID"]).lower() for pay in payments}
    assert all(r.document_date is not None and r.document_date > history.lock_date for r in paid)

    # A second run writes nothing.
    before = p.xero_writes()
    _cutover(p, history.start, kill_after=None)
    assert p.xero_writes() == before

    # Reconciliation over the migrated window finds nothing on bills that the plan did not name.
    result = run_reconciliation(p.ctx, since=history.lock_date + timedelta(days=1), yield_seconds=0)
    explained = {altered.invoice_number, shared.invoice_number}
    ours = {b.invoice_number for b in purchases.bills}
    unexplained = [f for f in result.findings if f.number in ours and f.number not in explained]
    assert not unexplained, [(f.kind, f.number, f.detail) for f in unexplained]

"""Reconciliation: every Cin7 sale invoice and credit note in a date window against Xero's ACCREC invoices
and ACCRECCREDIT credit notes, totals and what was paid, credited and refunded.

Two halves. The comparison (`compare` and the row builders) is pure: plain rows in, findings out, so
every kind of discrepancy is unit-testable on hand-built data. The run (`run_reconciliation`) gathers
those rows within the shared rate limits (Xero pages of 1000, yielding to the sync's writer; Cin7 one
saleList pass, reusing the ledger's sale snapshots where Cin7's `Updated` says they are current),
records a ReconciliationRun, writes the report files and raises one alert.

Reconciliation never writes to Xero. `heal` only resets ledger rows and enqueues the normal sync
path (fetch -> map -> write), whose own checks (payments, lookups before creating) still apply.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pipeline.context import TenantContext
from pipeline.ledger.models import (
    ReconciliationRun,
    utcnow,
)
from pipeline.operations.alerts import note_problem
from pipeline.reconcile.bills import (
    compare_bills,
    read_cin7_purchases,
    read_xero_bills,
    read_xero_supplier_credit_notes,
)
from pipeline.reconcile.compare import (
    CIN7_CREDIT_NOTES_COMPARED,
    compare,
    split_cin7,
    summarise,
    unknown_statuses,
)
from pipeline.reconcile.gather import (
    Cin7Read,
    load_ledger_view,
    lookup_outside,
    read_cin7_window,
    read_xero_credit_notes,
    read_xero_window,
)
from pipeline.reconcile.heal import heal
from pipeline.reconcile.report import REPORT_FILES, build_report, write_report_files
from pipeline.reconcile.rows import (
    BILL,
    CIN7_COMPARED,
    CREDIT_NOTE,
    INVOICE,
    KIND_LABELS,
    SUPPLIER_CREDIT_NOTE,
    Cin7Elsewhere,
    Cin7InvoiceRow,
    Finding,
    Kind,
    XeroInvoiceRow,
    normalise_number,
    number_shape,
)
from pipeline.reconcile.window import Window, resolve_window

log = logging.getLogger(__name__)


# --- gathering (I/O) ----------------------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    """A finished run: its ledger row id, where its files are, and what it found."""

    run_id: int
    window: Window
    findings: list[Finding]
    summary: dict[str, Any]
    report_dir: Path
    files: dict[str, Path]
    healed_sales: list[str] = field(default_factory=list)

    @property
    def report_html(self) -> Path:
        """The bookkeeper's page."""
        return self.files["html"]


@dataclass
class _Compared:
    """One document kind's comparison: its findings and how many documents each side had."""

    findings: list[Finding]
    cin7: int
    xero: int
    outside: int


def _compare_documents(
    ctx: TenantContext,
    window: Window,
    cin7_read: Cin7Read,
    xero_rows: Sequence[XeroInvoiceRow],
    *,
    document: str,
    yield_seconds: float,
) -> _Compared:
    """Compare one document kind: the ledger's view of it, Xero's outside the window, Cin7's rows."""
    if document == CREDIT_NOTE:
        cin7_rows: Sequence[Cin7InvoiceRow] = cin7_read.credit_rows
        statuses = CIN7_CREDIT_NOTES_COMPARED
    else:
        cin7_rows = cin7_read.rows
        statuses = CIN7_COMPARED
    compared, elsewhere = split_cin7(cin7_rows, window.start, window.end, statuses=statuses)
    shapes = {number_shape(row.number) for row in cin7_rows if row.number}
    ledger = load_ledger_view(
        ctx,
        cin7_read.sales_read,
        [row.invoice_id for row in xero_rows],
        [row.number for row in xero_rows if row.number],
        [row.customer_id for row in compared if row.customer_id],
        kind=document,
    )
    # Ledger documents of sales this run did not read still make their numbers known to Cin7.
    unread_numbers = {
        normalise_number(doc.number)
        for doc in ledger.documents.values()
        if doc.sale_id not in cin7_read.sales_read and doc.number
    }
    unread_tasks = {
        (doc.sale_id, doc.task_id) for doc in ledger.documents.values() if doc.sale_id not in cin7_read.sales_read
    }
    elsewhere = Cin7Elsewhere(elsewhere.numbers | unread_numbers, elsewhere.tasks | unread_tasks)
    outside = lookup_outside(ctx, compared, xero_rows, ledger, yield_seconds=yield_seconds, document=document)
    findings = compare(
        compared,
        xero_rows,
        ledger,
        xero_outside=outside,
        cin7_elsewhere=elsewhere,
        shapes=shapes,
        document=document,
    )
    findings.extend(unknown_statuses(cin7_rows, window.start, window.end))
    return _Compared(findings, len(compared), len(xero_rows), len(outside))


@dataclass
class _ComparedBills:
    findings: list[Finding]
    cin7: int
    xero: int
    cin7_credit_notes: int
    xero_credit_notes: int
    listed: int
    errors: list[str]


def _compare_bills(ctx: TenantContext, window: Window, *, yield_seconds: float) -> _ComparedBills:
    """Supplier bills and credit notes, when purchases are synced: Xero's first, as for invoices."""
    xero_bills = read_xero_bills(ctx, window, yield_seconds=yield_seconds)
    xero_notes = read_xero_supplier_credit_notes(ctx, window, yield_seconds=yield_seconds)
    read = read_cin7_purchases(ctx, window)
    findings: list[Finding] = []
    compared: list[int] = []
    for document, cin7_rows, xero_rows, statuses in (
        (BILL, read.rows, xero_bills, CIN7_COMPARED),
        (SUPPLIER_CREDIT_NOTE, read.credit_rows, xero_notes, CIN7_CREDIT_NOTES_COMPARED),
    ):
        ledger = load_ledger_view(
            ctx,
            read.purchases_read,
            [row.invoice_id for row in xero_rows],
            [],
            [row.customer_id for row in cin7_rows if row.customer_id],
            kind=document,
        )
        findings.extend(compare_bills(cin7_rows, xero_rows, ledger, window))
        compared.append(
            sum(
                1
                for row in cin7_rows
                if row.status in statuses and window.start <= (row.date or window.end) < window.end
            )
        )
    return _ComparedBills(
        findings, compared[0], len(xero_bills), compared[1], len(xero_notes), read.listed, read.errors
    )


def _alert(ctx: TenantContext, result: ReconcileResult) -> None:
    total = int(result.summary["total"])
    if total == 0:
        return
    counts = ", ".join(
        f"{count} {KIND_LABELS[Kind(kind)].lower()}" for kind, count in result.summary["counts"].items() if count
    )
    message = (
        f"{total} discrepancies between Cin7 and Xero for invoices and credit notes dated "
        f"{result.window.start.isoformat()} to {result.window.last.isoformat()} ({counts}); "
        f"report at {result.report_html}"
    )
    with ctx.sessions() as session, session.begin():
        note_problem(session, ctx.tenant_pk, "reconciliation", message)


def run_reconciliation(
    ctx: TenantContext,
    *,
    since: date | None = None,
    until: date | None = None,
    heal_findings: bool = False,
    out_dir: Path | None = None,
    yield_seconds: float = 30.0,
    today: date | None = None,
) -> ReconcileResult:
    """Compare Cin7 and Xero over the window, record the run and its report, alert, and heal if asked."""
    window = resolve_window(since, until, ctx.settings.reconcile_lookback_days, today or utcnow().date())
    with ctx.sessions() as session, session.begin():
        run = ReconciliationRun(
            tenant_id=ctx.tenant_pk,
            window_from=datetime.combine(window.start, datetime.min.time(), tzinfo=UTC),
            window_until=datetime.combine(window.end, datetime.min.time(), tzinfo=UTC),
            started_at=utcnow(),
            healed=heal_findings,
        )
        session.add(run)
        session.flush()
        run_id = run.id
    log.info("reconciliation %d: invoices and credit notes dated %s..%s", run_id, window.start, window.last)
    try:
        return _reconcile(
            ctx, run_id, window, heal_findings=heal_findings, out_dir=out_dir, yield_seconds=yield_seconds
        )
    except Exception as exc:
        # A reconciliation that could not finish is a problem of its own: it alerts (once per window).
        with ctx.sessions() as session, session.begin():
            note_problem(session, ctx.tenant_pk, "reconciliation", f"reconciliation {run_id} failed: {exc}")
        raise


def _reconcile(
    ctx: TenantContext, run_id: int, window: Window, *, heal_findings: bool, out_dir: Path | None, yield_seconds: float
) -> ReconcileResult:
    """Read both sides, compare, heal if asked, store the findings, write the report, alert."""
    # Xero first: a document written while Cin7 is read is then missing (and in flight in the ledger)
    # rather than unknown to Cin7.
    xero_invoices = read_xero_window(ctx, window, yield_seconds=yield_seconds)
    xero_credit_notes = read_xero_credit_notes(ctx, window, yield_seconds=yield_seconds)
    cin7_read = read_cin7_window(ctx, window)
    invoices = _compare_documents(ctx, window, cin7_read, xero_invoices, document=INVOICE, yield_seconds=yield_seconds)
    credit_notes = _compare_documents(
        ctx, window, cin7_read, xero_credit_notes, document=CREDIT_NOTE, yield_seconds=yield_seconds
    )
    findings = [*invoices.findings, *credit_notes.findings]
    bills = _compare_bills(ctx, window, yield_seconds=yield_seconds) if ctx.settings.sync_purchases else None
    if bills is not None:
        findings.extend(bills.findings)
    findings.sort(key=lambda f: (list(Kind).index(f.kind), f.document, f.number, f.cin7.sale_id if f.cin7 else ""))
    healed_sales = heal(ctx, findings) if heal_findings else []

    summary = summarise(findings)
    summary.update(
        {
            "window_from": window.start.isoformat(),
            "window_until": window.last.isoformat(),
            "cin7_invoices": invoices.cin7,
            "xero_invoices": invoices.xero,
            "xero_outside_window": invoices.outside,
            "cin7_credit_notes": credit_notes.cin7,
            "xero_credit_notes": credit_notes.xero,
            "xero_credit_notes_outside_window": credit_notes.outside,
            "cin7_sales_listed": cin7_read.listed,
            "cin7_sales_fetched": cin7_read.fetched,
            "cin7_sales_from_ledger": cin7_read.from_snapshot,
            "errors": cin7_read.errors + (bills.errors if bills is not None else []),
            "heal": heal_findings,
            "healed_sales": len(healed_sales),
        }
    )
    if bills is not None:
        summary.update(
            {
                "cin7_bills": bills.cin7,
                "xero_bills": bills.xero,
                "cin7_supplier_credit_notes": bills.cin7_credit_notes,
                "xero_supplier_credit_notes": bills.xero_credit_notes,
                "cin7_purchases_listed": bills.listed,
            }
        )
    report_dir = out_dir or (ctx.settings.report_dir / str(run_id))
    finished = utcnow()
    report = build_report(
        run_id=run_id,
        tenant=ctx.tenant_key,
        window_from=window.start,
        window_until=window.last,
        generated_at=finished,
        summary=summary,
        findings=[finding.as_json() for finding in findings],
    )
    # The findings are the ledger's before any file is written: a report that cannot be written (a
    # read-only disk, a full one) loses nothing, and the run still alerts.
    with ctx.sessions() as session, session.begin():
        stored = session.get(ReconciliationRun, run_id)
        assert stored is not None
        stored.finished_at = finished
        stored.summary = summary
        stored.findings = report["findings"]
        stored.report_dir = str(report_dir.resolve())
    files = {key: report_dir / name for key, name in REPORT_FILES.items()}
    try:
        files = write_report_files(report, report_dir)
    except OSError as exc:
        summary["report_error"] = f"report not written to {report_dir}: {exc}"
        log.error("reconciliation %d: %s", run_id, summary["report_error"])
        with ctx.sessions() as session, session.begin():
            note_problem(
                session,
                ctx.tenant_pk,
                "reconciliation",
                f"reconciliation {run_id} found {summary['total']} discrepancies (kept in the ledger) but its "
                f"{summary['report_error']} (is REPORT_DIR writable?)",
            )
    result = ReconcileResult(run_id, window, findings, summary, report_dir, files, healed_sales)
    _alert(ctx, result)
    log.info("reconciliation %d: %d discrepancies, report at %s", run_id, summary["total"], files["html"])
    return result

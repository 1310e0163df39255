"""`cin7xero reconcile`: compare Cin7 and Xero over an invoice-date window and write the report.

Mounted by pipeline.cli.main as `app.command("reconcile")(reconcile)`.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()


def _day(value: str | None, option: str) -> date | None:
    from pipeline.reconcile.window import parse_day

    try:
        return parse_day(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from exc


def reconcile(
    since: Annotated[
        str | None,
        typer.Option("--since", help="First invoice date, YYYY-MM-DD (default: RECONCILE_LOOKBACK_DAYS ago)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Last invoice date, YYYY-MM-DD, included (default: today, UTC).")
    ] = None,
    heal: Annotated[
        bool,
        typer.Option("--heal", help="Send what the sync can fix back through it (never writes to Xero itself)."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Directory for report.html/.csv/.json (default: REPORT_DIR/<run id>).")
    ] = None,
) -> None:
    """Compare Cin7 invoices and credit notes dated in the window with Xero's; write HTML, CSV and JSON reports."""
    from pipeline.context import tenant_context
    from pipeline.reconcile.rows import KIND_LABELS, Kind
    from pipeline.reconcile.run import run_reconciliation

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    first, last = _day(since, "--since"), _day(until, "--until")
    try:
        result = run_reconciliation(tenant_context(), since=first, until=last, heal_findings=heal, out_dir=out)
    except ValueError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    summary = result.summary
    table = Table(
        title=f"reconciliation {result.run_id}: invoices and credit notes dated {summary['window_from']} "
        f"to {summary['window_until']}"
    )
    table.add_column("discrepancy")
    table.add_column("count", justify="right")
    for kind, count in summary["counts"].items():
        table.add_row(KIND_LABELS[Kind(kind)], str(count))
    table.add_row("[bold]total[/bold]", f"[bold]{summary['total']}[/bold]")
    table.add_row("already explained (dead letters, in progress)", str(summary["known"]))
    table.add_row("fixable by the sync", str(summary["healable"]))
    if heal:
        table.add_row("sent back to the sync", str(summary["healed"]))
    console.print(table)
    console.print(
        f"compared {summary['cin7_invoices']} Cin7 invoices with {summary['xero_invoices']} Xero invoices, and "
        f"{summary.get('cin7_credit_notes', 0)} Cin7 credit notes with {summary.get('xero_credit_notes', 0)} Xero "
        "ones, each with what was paid, credited and still due "
        f"({summary['cin7_sales_fetched']} sales read from Cin7, {summary['cin7_sales_from_ledger']} from the ledger)"
    )
    for error in summary["errors"]:
        console.print(f"[yellow]{escape(error)}[/yellow]")
    console.print(f"report: {result.report_html.resolve()}")

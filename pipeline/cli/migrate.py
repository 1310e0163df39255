"""`cin7xero migrate plan | run | status`: historical migration with a test run, and a clear cutover.

Mounted by pipeline.cli.main as the `migrate` group.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from pipeline.context import TenantContext
    from pipeline.migration.plan_rows import MigrationPlan
    from pipeline.migration.run import Progress
    from pipeline.reconcile.window import Window

console = Console()
migrate_app = typer.Typer(
    help="Historical migration: a test run (plan), the cutover (run), and its progress (status).",
    no_args_is_help=True,
)

FromOption = Annotated[str, typer.Option("--from", help="First document date, YYYY-MM-DD.")]
UntilOption = Annotated[
    str | None,
    typer.Option(
        "--until",
        help="Last document date, YYYY-MM-DD, included (default: the day before SYNC_START_DATE, else today).",
    ),
]


def _window(ctx: TenantContext, since: str, until: str | None) -> Window:
    from datetime import timedelta

    from pipeline.ledger.models import utcnow
    from pipeline.reconcile.window import parse_day, resolve_window

    try:
        first, last = parse_day(since), parse_day(until)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}: dates are YYYY-MM-DD", param_hint="--from/--until") from exc
    start = ctx.settings.sync_start_date
    if last is None:
        last = start - timedelta(days=1) if start is not None else utcnow().date()
    if first is not None and last < first:
        console.print(f"[red]--from {first} is after --until {last}[/red]")
        raise typer.Exit(2)
    return resolve_window(first, last, 0, utcnow().date())


def _print_plan(plan: MigrationPlan) -> None:
    from pipeline.migration.plan_rows import FATE_LABELS, Fate

    table = Table(title=f"migration {plan.migration_id}: documents dated {plan.window_from} to {plan.window_until}")
    table.add_column("what the cutover does")
    order: tuple[str, ...] = ("invoice", "credit_note", "payment", "refund")
    order += ("bill", "supplier_credit_note", "bill_payment", "supplier_refund")
    kinds = [kind for kind in order if kind in plan.counts_by_kind()]
    for kind in kinds:
        table.add_column(kind.replace("_", " ") + "s", justify="right")
    for fate in Fate:
        table.add_row(FATE_LABELS[fate], *(str(plan.counts_by_kind()[kind][fate.value]) for kind in kinds))
    console.print(table)
    cost = plan.cost
    wall = f"{cost.hours:.1f} h" if cost.hours >= 1 else f"{cost.hours * 60:.0f} min"
    console.print(
        f"lock date: {plan.lock_date or 'none'}; the cutover will make {cost.cin7_calls} Cin7 calls and "
        f"{cost.xero_calls} Xero calls ({cost.xero_write_calls} writes): about {wall} at the configured "
        f"limits, {cost.xero_days:.2f} days of Xero's daily budget"
    )
    reads = plan.reads
    if reads:
        console.print(
            f"this test run listed {reads['sales_listed']} sales and purchases ({reads['cin7_list_calls']} list "
            f"pages) and read {reads['cin7_detail_calls']} details from Cin7 ({reads['details_from_ledger']} kept "
            f"from before; {reads['sales_without_invoice_in_window']} needed none)"
        )
    for error in plan.errors:
        console.print(f"[yellow]{escape(error)}[/yellow]")


@migrate_app.command("plan")
def plan_command(
    since: FromOption,
    until: UntilOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Directory for plan.html/.csv/.json.")] = None,
) -> None:
    """The test run: read Cin7 and Xero, map everything, write nothing to Xero; plan.html/.csv/.json."""
    from pipeline.context import tenant_context
    from pipeline.migration.plan import plan_migration

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = tenant_context()
    planned, files = plan_migration(ctx, _window(ctx, since, until), out_dir=out)
    _print_plan(planned.plan)
    console.print(f"plan: {files['html'].resolve()}")


def _show(progress: Progress, started: float, total_before: int) -> str:
    done = progress.total - progress.in_flight
    rate = (done - total_before) / max(1e-6, time.monotonic() - started)
    eta = f"ETA {progress.in_flight / rate / 60:.0f} min" if rate > 0 and progress.in_flight else "ETA -"
    paused = (
        f"; paused until {progress.paused_until:%H:%M} UTC ({progress.pause_reason})" if progress.paused_until else ""
    )
    counts = ", ".join(f"{state} {count}" for state, count in sorted(progress.states.items()))
    return f"{counts}; {eta}{paused}"


@migrate_app.command("run")
def run_command(
    since: FromOption,
    until: UntilOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Start without asking.")] = False,
    update_conflicts: Annotated[
        bool,
        typer.Option("--update-conflicts", help="Update Xero documents that differ from Cin7 (default: leave them)."),
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Give up waiting after this many seconds.")] = 7 * 86400,
) -> None:
    """The cutover: write the window through the sync's workers, oldest first; resumes where it was."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pipeline.context import tenant_context
    from pipeline.migration.plan import decide, migration_row
    from pipeline.migration.run import finish, progress, start_cutover

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = tenant_context()
    window = _window(ctx, since, until)
    if not yes:
        _print_plan(decide(ctx, window, migration_row(ctx, window)).plan)
        if not typer.confirm("Write these to Xero?"):
            raise typer.Exit(1)
    started = start_cutover(ctx, window, update_conflicts=update_conflicts)
    began = time.monotonic()
    first = progress(ctx, started.migration_id)
    assert first is not None
    settled_before = first.total - first.in_flight
    columns = (TextColumn("[bold]migrating"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"))
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=max(1, first.total))
        while True:
            now = progress(ctx, started.migration_id)
            assert now is not None
            description = _show(now, began, settled_before)
            bar.update(task, total=max(1, now.total), completed=now.total - now.in_flight, description=description)
            if now.settled:
                break
            if time.monotonic() - began > timeout:
                console.print(f"[red]still {now.in_flight} documents on their way after {timeout:.0f}s[/red]")
                raise typer.Exit(1)
            time.sleep(1.0)
    finish(ctx, started.migration_id)
    console.print(
        f"migration {started.migration_id} done: {started.adopted} adopted, {started.conflicts} conflicts; "
        f"{_show(now, began, settled_before)}"
    )


@migrate_app.command("status")
def status_command() -> None:
    """Progress of the current or last migration, and what holds it up."""
    from pipeline.context import tenant_context
    from pipeline.migration.run import progress

    ctx = tenant_context()
    found = progress(ctx)
    if found is None:
        console.print("no migration yet: start with cin7xero migrate plan --from YYYY-MM-DD")
        return
    console.print(f"migration {found.migration_id} ({found.window}): {found.state}")
    if found.plan:
        counts = ", ".join(f"{fate} {count}" for fate, count in found.plan.get("counts", {}).items() if count)
        console.print(f"last plan: {counts} (report in {found.report_dir})")
    if found.states:
        table = Table(title="its documents in the ledger")
        table.add_column("state")
        table.add_column("documents", justify="right")
        for state, count in sorted(found.states.items()):
            table.add_row(state, str(count))
        console.print(table)
    else:
        console.print("no document recorded yet: cin7xero migrate run starts the cutover")
    if found.paused_until is not None:
        console.print(
            f"held up: the tenant is paused until {found.paused_until:%Y-%m-%d %H:%M} UTC ({found.pause_reason})"
        )
    for state, why in (
        ("dead", "dead letters: cin7xero dlq list"),
        ("conflict", "conflicts: Xero differs, see the plan"),
        ("waiting", "waiting for a document that did not sync"),
    ):
        if found.states.get(state):
            console.print(f"{found.states[state]} {why}")

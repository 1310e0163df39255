"""`cin7xero`: the operator's and developer's command line."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from pipeline.cli.migrate import migrate_app
from pipeline.cli.operations import health_app, metrics_app
from pipeline.cli.reconcile import reconcile as reconcile_command
from pipeline.cli.webhooks import webhooks_app
from pipeline.settings import get_settings

if TYPE_CHECKING:
    from pipeline.context import TenantContext
    from pipeline.operations.status import LedgerCounts

app = typer.Typer(
    help="Cin7 Core -> Xero sync.",
    no_args_is_help=True,
    add_completion=False,
    # One clear line for an error, never a traceback with its locals (which may hold credentials).
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters: list, show, requeue, purge.", no_args_is_help=True)
xero_app = typer.Typer(help="Xero connection.", no_args_is_help=True)
standins_app = typer.Typer(help="Local stand-ins for Cin7 Core and Xero.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(dlq_app, name="dlq")
app.add_typer(xero_app, name="xero")
app.add_typer(standins_app, name="standins")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(migrate_app, name="migrate")
app.add_typer(metrics_app, name="metrics")
app.add_typer(health_app, name="health")
app.command("reconcile")(reconcile_command)

console = Console()


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# --- db ----------------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Create or migrate the ledger (DATABASE_URL) to the latest schema."""
    from pipeline.ledger.migrate import upgrade

    upgrade(get_settings().database_url, revision)
    console.print(f"ledger at revision [bold]{revision}[/bold]")


# --- sync and status -------------------------------------------------------------------------------------
@app.command()
def sync(
    once: Annotated[bool, typer.Option("--once", help="Run one poll through the broker.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until every discovered invoice settles.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most.")] = 900.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run a poll through the broker (workers must be running), optionally waiting for the outcome."""
    _setup_logging(verbose)
    if not once:
        console.print("continuous syncing is Celery beat's job: `celery -A pipeline.app beat`; use --once here")
        raise typer.Exit(2)
    from pipeline.app import TaskName, send
    from pipeline.context import tenant_context
    from pipeline.operations.status import ledger_counts

    ctx = tenant_context()
    before = ledger_counts(ctx)
    started = datetime.now(UTC)
    send(TaskName.POLL, ctx.tenant_key)
    console.print("poll sent")
    if not wait:
        return
    counts = _wait_with_progress(ctx, started, timeout)
    _print_summary(before, counts)


def _poll_finished_since(ctx: TenantContext, started: datetime) -> bool:
    from pipeline.discovery.poll import SALES_STREAM
    from pipeline.ledger.models import PollCursor

    with ctx.sessions() as session:
        polled = session.scalar(
            select(PollCursor.last_polled_at).where(
                PollCursor.tenant_id == ctx.tenant_pk, PollCursor.stream == SALES_STREAM
            )
        )
    return polled is not None and polled >= started


def _wait_with_progress(ctx: TenantContext, started: datetime, timeout: float) -> LedgerCounts:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pipeline.ledger.models import IN_FLIGHT_STATES
    from pipeline.operations.status import wait_until_settled

    with Progress(
        TextColumn("[bold]syncing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("", total=None)

        def show(counts: LedgerCounts) -> None:
            total = sum(counts.documents.values())
            pending = sum(counts.documents.get(s.value, 0) for s in IN_FLIGHT_STATES)
            progress.update(
                task,
                total=max(total, 1),
                completed=total - pending,
                description=f"xero calls {counts.xero_calls}, dead letters {counts.open_dead_letters}",
            )

        try:
            return wait_until_settled(
                ctx, timeout=timeout, started_after=lambda _c: _poll_finished_since(ctx, started), on_progress=show
            )
        except TimeoutError as exc:
            console.print(f"[red]{escape(str(exc))}[/red]")
            raise typer.Exit(1) from exc


def _print_summary(before: LedgerCounts, after: LedgerCounts) -> None:
    from pipeline.ledger.models import DocumentState

    table = Table(title="sync summary")
    table.add_column("what")
    table.add_column("now", justify="right")
    table.add_column("this run", justify="right")
    for state in (
        DocumentState.SYNCED,
        DocumentState.VOIDED,
        DocumentState.IGNORED,
        DocumentState.CONFLICT,
        DocumentState.DEAD,
    ):
        table.add_row(f"documents {state.value}", str(after.get(state)), f"{after.get(state) - before.get(state):+d}")
    table.add_row(
        "open dead letters", str(after.open_dead_letters), f"{after.open_dead_letters - before.open_dead_letters:+d}"
    )
    table.add_row("xero calls", str(after.xero_calls), f"{after.xero_calls - before.xero_calls:+d}")
    table.add_row("cin7 calls", str(after.cin7_calls), f"{after.cin7_calls - before.cin7_calls:+d}")
    console.print(table)


@app.command()
def status() -> None:
    """The live-sync window, whether beat and workers run, documents by state, today's API calls."""
    from pipeline.context import tenant_context
    from pipeline.operations.status import ledger_counts, live_window, liveness, usage_today

    ctx = tenant_context()
    counts = ledger_counts(ctx)
    console.print(f"live sync: {live_window(ctx).describe()}", highlight=False, markup=False)
    for line in liveness(ctx).describe():
        console.print(line, highlight=False, markup=False)
    today = usage_today(ctx)
    settings = get_settings()
    xero_today, xero_limited = today.get("xero", (0, 0))
    cin7_today, cin7_limited = today.get("cin7", (0, 0))
    console.print(
        f"today (UTC): Xero {xero_today} of {settings.xero_calls_per_day} calls ({xero_limited} answered 429), "
        f"at most {settings.xero_calls_per_window} per {settings.xero_rate_window_seconds:g} s; "
        f"Cin7 {cin7_today} calls ({cin7_limited} throttled), at most {settings.cin7_calls_per_minute} a minute",
        highlight=False,
        markup=False,
    )
    table = Table(title=f"ledger: tenant {get_settings().tenant_key}")
    kinds = [kind for kind in DOCUMENT_KINDS if kind in counts.by_kind] + sorted(
        set(counts.by_kind) - set(DOCUMENT_KINDS)
    )
    table.add_column("state")
    for kind in kinds:
        table.add_column(kind.replace("_", " ") + "s", justify="right")
    table.add_column("all documents", justify="right")
    for state_name, count in sorted(counts.documents.items()):
        table.add_row(state_name, *(str(counts.by_kind[kind].get(state_name, 0)) for kind in kinds), str(count))
    blank = [""] * len(kinds)
    table.add_row("sales awaiting detail", *blank, str(counts.sales_in_flight))
    table.add_row("open dead letters", *blank, str(counts.open_dead_letters))
    table.add_row("contact updates waiting", *blank, str(counts.contacts_to_push))
    table.add_row("contact updates Xero refused", *blank, str(counts.contact_pushes_refused))
    table.add_row("xero calls (all days)", *blank, str(counts.xero_calls))
    table.add_row("cin7 calls (all days)", *blank, str(counts.cin7_calls))
    console.print(table)


# The order status shows document kinds in: each document before what is applied to it.
DOCUMENT_KINDS = ("invoice", "credit_note", "payment", "refund", "allocation")


# --- dead letters ---------------------------------------------------------------------------------------
def _parse_since(since: str | None) -> datetime | None:
    if not since:
        return None
    parsed = datetime.fromisoformat(since)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dlq_app.command("list")
def dlq_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    error_class: Annotated[str | None, typer.Option("--error-class")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO date or datetime (UTC if no zone).")] = None,
) -> None:
    """Open dead letters with their reasons."""
    from pipeline.context import tenant_context
    from pipeline.recovery.deadletters import list_dead_letters

    ctx = tenant_context()
    with ctx.sessions() as session:
        letters = list_dead_letters(session, ctx.tenant_pk, error_class=error_class, since=_parse_since(since))
    if as_json:
        typer.echo(json.dumps([letter.as_json() for letter in letters], indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{len(letters)} open dead letters")
    for column in ("id", "document", "stage", "class", "attempts", "last failed", "reason"):
        table.add_column(column)
    for letter in letters:
        held = f" (holds {len(letter.holds)}: {', '.join(letter.holds)[:80]})" if letter.holds else ""
        # Numbers and reasons carry Cin7's and Xero's text: shown as written, never read as Rich markup.
        table.add_row(
            str(letter.id),
            escape(f"{letter.kind.replace('_', ' ')} {letter.document_number or letter.sale_id or ''}"),
            letter.stage,
            letter.error_class,
            str(letter.attempts),
            letter.last_failed_at.strftime("%Y-%m-%d %H:%M"),
            escape("; ".join(letter.messages)[:160] + held),
        )
    console.print(table)


@dlq_app.command("show")
def dlq_show(letter_id: int) -> None:
    """One dead letter in full, with the payload that was sent."""
    from pipeline.context import tenant_context
    from pipeline.recovery.deadletters import list_dead_letters

    ctx = tenant_context()
    with ctx.sessions() as session:
        letters = list_dead_letters(session, ctx.tenant_pk, ids=[letter_id])
    if not letters:
        console.print(f"no open dead letter {letter_id}", markup=False)
        raise typer.Exit(1)
    typer.echo(json.dumps(letters[0].as_json(with_payload=True), indent=2, ensure_ascii=False))


@dlq_app.command("requeue")
def dlq_requeue(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids.")] = None,
    all_: Annotated[bool, typer.Option("--all")] = False,
    error_class: Annotated[str | None, typer.Option("--error-class")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
) -> None:
    """Re-read the documents from Cin7, re-map and re-send them (fixed data or rules take effect)."""
    from pipeline.app import FETCH_TASKS, send
    from pipeline.context import tenant_context
    from pipeline.recovery.deadletters import list_dead_letters, requeue

    if not ids and not all_ and not error_class:
        console.print("name dead letter ids, or --all, or --error-class")
        raise typer.Exit(2)
    ctx = tenant_context()
    with ctx.sessions() as session, session.begin():
        letters = list_dead_letters(session, ctx.tenant_pk, error_class=error_class, ids=ids or ())
        if dry_run:
            for letter in letters:
                console.print(f"would requeue {letter.id}: {letter.document_number or letter.sale_id}", markup=False)
            return
        sale_ids = requeue(session, ctx.tenant_pk, [letter.id for letter in letters])
    for sale_id, kind in sale_ids:
        send(FETCH_TASKS[kind], ctx.tenant_key, sale_id)
    console.print(f"requeued {len(letters)} dead letters ({len(sale_ids)} sales or purchases re-read from Cin7)")


@dlq_app.command("purge")
def dlq_purge(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Close every open dead letter without retrying (the documents stay dead in the ledger)."""
    from pipeline.context import tenant_context
    from pipeline.ledger.models import DeadLetter, utcnow

    if not yes and not typer.confirm("close every open dead letter?"):
        raise typer.Exit(1)
    ctx = tenant_context()
    with ctx.sessions() as session, session.begin():
        letters = list(
            session.scalars(
                select(DeadLetter).where(DeadLetter.tenant_id == ctx.tenant_pk, DeadLetter.resolved_at.is_(None))
            )
        )
        for letter in letters:
            letter.resolved_at = utcnow()
    console.print(f"purged {len(letters)} dead letters")


# --- xero -----------------------------------------------------------------------------------------------
@xero_app.command("connect")
def xero_connect(
    callback_url: Annotated[str | None, typer.Option(help="The URL Xero redirected to after consent.")] = None,
    state: Annotated[str | None, typer.Option(help="The state printed with the consent URL.")] = None,
) -> None:
    """Authorization-code flow: print the consent URL, then store tokens from the callback URL."""
    from pipeline.context import tenant_context
    from pipeline.xero.auth import code_from_callback, configured_keys, consent_url

    settings = get_settings()
    if not configured_keys(settings):
        # Checked before the consent: Xero's code is good once, and a refresh token is never stored
        # under the key derived from the client secret.
        console.print(
            "set TOKEN_ENCRYPTION_KEYS first (a Fernet key: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'): the refresh token is stored encrypted with it",
            markup=False,
        )
        raise typer.Exit(2)
    if callback_url is None:
        url, expected_state = consent_url(settings)
        console.print("Open this URL, approve, then paste the URL you were redirected to:")
        typer.echo(url)
        callback_url = typer.prompt("callback URL")
        state = expected_state
    code = code_from_callback(callback_url, state)
    ctx = tenant_context()
    ctx.xero_tokens.exchange_code(code)
    console.print("Xero connected; refresh token stored (encrypted) in the ledger")


# --- stand-ins and demo ---------------------------------------------------------------------------------
def _interrupt(_signum: int, _frame: object) -> None:
    # SIGTERM (a supervisor, a test) stops the stand-ins like Ctrl-C does.
    raise KeyboardInterrupt


@standins_app.command("serve")
def standins_serve(
    cin7_port: int = 8082,
    xero_port: int = 8081,
    sales: int = 300,
    seed: int = 7,
    xero_minute_limit: Annotated[int | None, typer.Option(help="Calls per window; unlimited if unset.")] = None,
    window_seconds: float = 60.0,
    cin7_rate_limit: Annotated[int | None, typer.Option(help="Cin7 calls per window; unlimited if unset.")] = None,
    now: Annotated[str | None, typer.Option(help="Generate as if at this ISO time (reproducible data).")] = None,
) -> None:
    """Run both stand-ins in the foreground on one seeded dataset (Ctrl-C or SIGTERM stops them)."""
    import signal

    from pipeline.standins.cin7 import Cin7StandIn
    from pipeline.standins.generator import generate
    from pipeline.standins.serving import serve_until_signalled
    from pipeline.standins.xero import XeroStandIn

    signal.signal(signal.SIGTERM, _interrupt)
    dataset = generate(seed, sales, now=_parse_since(now) or datetime.now(UTC))
    cin7 = Cin7StandIn(
        port=cin7_port, dataset=dataset, rate_limit_per_minute=cin7_rate_limit, window_seconds=window_seconds
    ).start()
    xero = XeroStandIn(
        port=xero_port,
        seed_contacts=dataset.xero_contacts,
        minute_limit=xero_minute_limit,
        window_seconds=window_seconds,
    ).start()
    console.print(
        f"Cin7 Core stand-in: CIN7_API_URL={cin7.api_url} CIN7_ACCOUNT_ID={cin7.account_id} "
        f"CIN7_APPLICATION_KEY={cin7.application_key}"
    )
    console.print(
        f"Xero stand-in: XERO_API_URL={xero.api_url} XERO_TOKEN_URL={xero.token_url} "
        f"XERO_CONNECTIONS_URL={xero.connections_url} XERO_CLIENT_ID={xero.client_id} "
        f"XERO_CLIENT_SECRET={xero.client_secret}"
    )
    serve_until_signalled(cin7, xero)


@app.command()
def demo(
    sales: int = 300,
    seed: int = 7,
    workdir: Annotated[Path | None, typer.Option(help="Where the demo keeps its SQLite ledger.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Everything on embedded defaults: SQLite, an in-process broker, a real worker, the stand-ins."""
    from pipeline.cli.demo import run_demo

    _setup_logging(verbose)
    if not verbose:
        # Dead letters are the demo's expected outcome for hostile sales: the summary lists them.
        logging.getLogger("pipeline").setLevel(logging.ERROR)
    ok = run_demo(sales=sales, seed=seed, workdir=workdir, console=console)
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    """Console-script entry point."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        app()
    except (OperationalError, ProgrammingError) as exc:
        # Not a traceback: which ledger, what the database said, and what to do.
        url = make_url(get_settings().database_url).render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        console.print(f"[red]cannot use the ledger at {escape(url)}: {escape(reason)}[/red]")
        console.print("check DATABASE_URL, and create or migrate the ledger with `cin7xero db upgrade`")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

"""`cin7xero webhooks`: run the Cin7 webhook receiver, and register its subscriptions in Cin7."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.logs import configure_logging
from pipeline.settings import get_settings

webhooks_app = typer.Typer(
    help="Cin7 Core webhooks: the receiver and its subscriptions.", no_args_is_help=True, pretty_exceptions_enable=False
)
console = Console()


@webhooks_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (put TLS in front of it: Cin7 calls a public URL).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8780,
    max_connections: Annotated[
        int | None, typer.Option(help="Open connections before answering 503 (default WEBHOOK_MAX_CONNECTIONS).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve `POST /webhooks/cin7`, `GET /healthz`, `/readyz` and `/metrics` (uvicorn) until SIGINT/SIGTERM."""
    from pipeline.source.cin7core.webhooks import auth_configured
    from pipeline.webhooks.server import HEALTH_PATH, WebhookServer

    configure_logging(get_settings().log_format, logging.INFO if verbose else logging.WARNING)
    if not auth_configured(get_settings()):
        console.print(
            "[red]refusing to start:[/red] the receiver never runs unauthenticated. Set CIN7_WEBHOOK_TOKEN "
            "(bearer), or CIN7_WEBHOOK_USER and CIN7_WEBHOOK_PASSWORD (basic), to the credential the Cin7 "
            "subscription sends."
        )
        raise typer.Exit(2)
    server = WebhookServer(host, port, max_connections=max_connections)
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.start()
    console.print(f"webhook receiver on {server.webhook_url} (health: {server.url}{HEALTH_PATH})")
    stop.wait()
    server.stop()
    console.print("webhook receiver stopped")


@webhooks_app.command("register")
def register(
    url: Annotated[str, typer.Option("--url", help="Public URL of POST /webhooks/cin7, as Cin7 should call it.")],
    force: Annotated[bool, typer.Option(help="Update every subscription even when it looks unchanged.")] = False,
) -> None:
    """Create or update the Cin7 subscriptions for the event types we handle (idempotent)."""
    from pipeline.source.cin7core.webhooks import register_webhooks

    settings = get_settings()
    try:
        results = register_webhooks(settings, url, force=force)
    except ValueError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    table = Table(title=f"Cin7 webhooks -> {url}")
    table.add_column("event type")
    table.add_column("action")
    table.add_column("webhook id")
    table.add_column("detail")
    colours = {"created": "green", "updated": "yellow", "reactivated": "yellow", "failed": "red"}
    for result in results:
        colour = colours.get(result.action)
        action = f"[{colour}]{result.action}[/{colour}]" if colour else result.action
        detail = result.detail if result.action != "inactive (not ours)" else f"{result.url} (left as is)"
        table.add_row(escape(result.event_type), action, escape(result.webhook_id or ""), escape(detail))
    console.print(table)
    if any(result.action == "failed" for result in results):
        raise typer.Exit(1)

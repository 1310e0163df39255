"""`cin7xero metrics serve` and `cin7xero health ready | worker`: what monitoring and orchestrators call."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.console import Console

from pipeline.settings import get_settings

metrics_app = typer.Typer(help="Prometheus metrics.", no_args_is_help=True)
health_app = typer.Typer(
    help="Health checks for Docker and Kubernetes (exit 0 healthy, 1 not).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


@metrics_app.command("serve")
def metrics_serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9808,
) -> None:
    """Serve `GET /metrics` (Prometheus text) until SIGINT/SIGTERM, for deployments without the receiver."""
    from prometheus_client import start_http_server

    from pipeline.operations.metrics import pipeline_registry

    server, thread = start_http_server(port, addr=host, registry=pipeline_registry(get_settings()))
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    console.print(f"metrics on http://{host}:{server.server_port}/metrics")
    stop.wait()
    server.shutdown()
    thread.join(timeout=5)


@health_app.command("ready")
def health_ready() -> None:
    """Exit 0 when the ledger and the broker both answer, else print which does not and exit 1."""
    from pipeline.operations.health import readiness

    ready = readiness(get_settings())
    console.print(f"database {ready.database}, broker {ready.broker}", highlight=False)
    if not ready.ready:
        raise typer.Exit(1)


@health_app.command("worker")
def health_worker(
    name: Annotated[str, typer.Option(help="The worker's node name, as given to `celery worker -n` (cin7@host).")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for its answer.")] = 10.0,
) -> None:
    """Exit 0 when the named worker answers a ping through the broker within the timeout, else 1."""
    from pipeline.operations.health import worker_alive

    if not worker_alive(name, timeout):
        console.print(f"worker {name} did not answer within {timeout:g} s", highlight=False, markup=False)
        raise typer.Exit(1)
    console.print(f"worker {name} answered", highlight=False, markup=False)

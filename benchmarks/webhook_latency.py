"""Webhook receipt -> Xero commit latency at a steady webhook rate (issue 5, section 1).

    .venv/bin/python -m benchmarks.webhook_latency [--rate 10] [--duration 20] [--workers 2]

Real pieces: PostgreSQL (a fresh database, dropped afterwards), Redis, `celery worker` processes, the
receiver over HTTP in this process, and both stand-ins over HTTP, unthrottled. Each webhook is a
`Sale/InvoiceAuthorised` for one sale of the seeded dataset; latency is, per invoice, the receiver's
`received_at` to the Xero stand-in's `UpdatedDateUTC` of the created invoice (both clocks are this
machine's). Target: p95 <= 2 s.

Unthrottled, as the issue asks: the stand-ins have no limits, and the workers get a very large
XERO_CALLS_PER_WINDOW, which lifts the pipeline's own Xero pacing (60 calls a minute per tenant);
CIN7_CALLS_PER_MINUTE is raised likewise. With the real limits
(`--xero-window 60`), 10 invoices a second exceed what 60 Xero calls a minute carry in small
batches, and latency grows with the backlog; Cin7's 60 calls a minute cap webhook-driven sale reads
at one a second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests
from sqlalchemy import select

from benchmarks.harness import xero_limit_env
from pipeline.app import app
from pipeline.context import tenant_context
from pipeline.db import reset_engines
from pipeline.ledger.migrate import upgrade
from pipeline.ledger.models import WebhookEvent
from pipeline.runtime import reload_runtime
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.generator import generate
from pipeline.standins.xero import XeroStandIn
from pipeline.standins.xero.data import parse_ms_datetime
from pipeline.webhooks.server import WebhookServer
from pipeline.workerpool import WorkerPool

ROOT = Path(__file__).resolve().parent.parent


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def _answers_ping(node: str) -> bool:
    # Workers log at WARNING here, so their " ready." line is not written: ask through the broker.
    return bool(app.control.ping(destination=[node], timeout=0.5))


def run(args: argparse.Namespace) -> int:

    n_sales = int(args.rate * args.duration)
    database = f"cin7xero_bench_{uuid.uuid4().hex[:10]}"
    admin_url = args.postgres_url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    database_url = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{database}"
    redis.Redis.from_url(args.redis_url).flushdb()
    dataset = generate(args.seed, n_sales, now=datetime.now(UTC), hostile=False)
    # --real-limits: both stand-ins held to their APIs' real 60 calls per 60 s, the pipeline at its
    # default settings (its own Cin7 and Xero budgets of 60 a minute).
    minute = 60 if args.real_limits else None
    cin7 = Cin7StandIn(dataset=dataset, rate_limit_per_minute=minute).start()
    xero = XeroStandIn(seed_contacts=dataset.xero_contacts, minute_limit=minute).start()
    token = uuid.uuid4().hex
    env = {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": args.redis_url,
        "REDIS_URL": args.redis_url,
        "CIN7_API_URL": cin7.api_url,
        "CIN7_ACCOUNT_ID": cin7.account_id,
        "CIN7_APPLICATION_KEY": cin7.application_key,
        "XERO_API_URL": xero.api_url,
        "XERO_TOKEN_URL": xero.token_url,
        "XERO_CONNECTIONS_URL": xero.connections_url,
        "XERO_CLIENT_ID": xero.client_id,
        "XERO_CLIENT_SECRET": xero.client_secret,
        "CIN7_WEBHOOK_TOKEN": token,
        "POLL_INTERVAL_SECONDS": "3600",
        "TOKEN_ENCRYPTION_KEY": "",
    }
    if not args.real_limits:
        env["CIN7_CALLS_PER_MINUTE"] = "100000"  # unthrottled stand-in (see the module docstring)
    os.environ.update(env)
    reload_runtime()
    upgrade(database_url)
    logdir = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    workers = WorkerPool(
        env={**os.environ, **env, **xero_limit_env(60.0 if args.real_limits else args.xero_window or None)},
        logdir=logdir,
        processes=[],
    )

    server: WebhookServer | None = None
    try:
        for index in range(args.workers):
            workers.start(f"bench{index}", concurrency=args.concurrency, log_level=args.log_level, ready=_answers_ping)
        server = WebhookServer(max_connections=256).start()
        by_sale: dict[str, list[str]] = {}
        for expectation in dataset.expectations:
            if expectation.outcome == "synced":
                by_sale.setdefault(expectation.sale_id, []).append(expectation.invoice_number)
        sale_ids = [str(sale["ID"]) for sale in dataset.sales if str(sale["ID"]) in by_sale]
        response_times: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        local = threading.local()

        def deliver(sale_id: str) -> None:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            sale = cin7.sale(sale_id)
            body: dict[str, Any] = {
                "SaleTaskID": sale_id.upper(),
                "OrderNumber": (sale.get("Order") or {}).get("SaleOrderNumber"),
                "InvoiceNumber": (sale.get("Invoices") or [{}])[0].get("InvoiceNumber"),
                "EventType": "Sale/InvoiceAuthorised",
            }
            started = time.perf_counter()
            response = session.post(
                server.webhook_url if server else "",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            elapsed = time.perf_counter() - started
            with lock:
                response_times.append(elapsed)
                if response.status_code != 200:
                    failures.append(f"{sale_id}: {response.status_code} {response.text[:200]}")

        print(
            f"sending {len(sale_ids)} webhooks at {args.rate}/s to {args.workers} worker(s) x {args.concurrency} ...",
            flush=True,
        )
        interval = 1.0 / args.rate
        begin = time.monotonic()
        with ThreadPoolExecutor(max_workers=16) as pool:
            for index, sale_id in enumerate(sale_ids):
                delay = begin + index * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(deliver, sale_id)
        sent_in = time.monotonic() - begin
        expected = {number for numbers in by_sale.values() for number in numbers}
        deadline = time.monotonic() + args.timeout
        seen: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            seen = {str(i["InvoiceNumber"]): i for i in xero.invoices() if i["InvoiceNumber"] in expected}
            if len(seen) == len(expected):
                break
            time.sleep(0.2)

        ctx = tenant_context()
        with ctx.sessions() as session:
            received = {str(event.sale_id): event.received_at for event in session.scalars(select(WebhookEvent))}
        latencies: list[float] = []
        for sale_id, numbers in by_sale.items():
            receipt = received.get(sale_id.lower())
            for number in numbers:
                invoice = seen.get(number)
                if receipt is None or invoice is None:
                    continue
                committed = parse_ms_datetime(str(invoice["UpdatedDateUTC"]))
                latencies.append((committed - receipt).total_seconds())
        missing = len(expected) - len(seen)
        rate = len(sale_ids) / sent_in
        cin7_stats, xero_stats = cin7.stats(), xero.stats()
        print(
            f"calls used: Cin7 {cin7_stats['calls']} ({cin7_stats['throttled']} answered 429/503), "
            f"Xero {xero_stats['calls']} ({xero_stats['rate_limited']} answered 429)"
            + (" under the real 60-a-minute limits" if args.real_limits else " (stand-ins unthrottled)")
        )
        print(f"sent {len(sale_ids)} webhooks in {sent_in:.1f} s ({rate:.1f}/s); failures: {len(failures)}")
        for failure in failures[:5]:
            print("  ", failure)
        if response_times:
            print(
                f"receiver response: p50 {_percentile(response_times, 0.5) * 1000:.1f} ms, "
                f"p95 {_percentile(response_times, 0.95) * 1000:.1f} ms, max {max(response_times) * 1000:.1f} ms"
            )
        if not latencies:
            print("no invoice reached Xero; worker logs in", logdir)
            return 1
        p50, p95 = _percentile(latencies, 0.5), _percentile(latencies, 0.95)
        print(
            f"receipt -> Xero commit over {len(latencies)} invoices: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms, mean {statistics.fmean(latencies) * 1000:.0f} ms; "
            f"missing {missing}; target p95 <= 2000 ms: {'met' if p95 <= 2.0 and not missing else 'NOT met'}"
        )
        return 0 if p95 <= 2.0 and not missing else 1
    finally:
        if server is not None:
            server.stop()
        workers.stop_all(finish_tasks=True)
        cin7.stop()
        xero.stop()

        reset_engines()
        if args.keep_db:
            print("ledger kept:", database_url, "worker logs:", logdir)
        else:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main() -> None:
    """Parse options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10.0, help="webhooks per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of sending")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="prefork children per worker")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the last invoice")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="an admin connection; a scratch database is created and dropped",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"), help="flushed first"
    )
    parser.add_argument(
        "--xero-window",
        type=float,
        default=0.0,
        help="the pipeline's Xero minute in seconds: 0 lifts its own 60 calls/minute pacing (unthrottled), "
        "60 keeps Xero's real per-tenant limit",
    )
    parser.add_argument(
        "--real-limits",
        action="store_true",
        help="hold both stand-ins to 60 calls per 60 s and run the pipeline at its default limits",
    )
    parser.add_argument("--log-level", default="WARNING", help="worker log level")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch ledger for inspection")
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()

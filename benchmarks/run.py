"""`python -m benchmarks.run [--sales N] [--new-customer-share 0.3] [--out benchmarks/results/latest.json]`.

Generates N sales (non-hostile: the figures are about throughput), then on the same data:

1. the pipeline with unthrottled stand-ins: API calls per invoice/sale, orders per second end to end,
   discovery-to-Xero latency, peak RSS of every worker process;
2. the pipeline against a Xero limited to 60 calls per compressed window of W seconds: invoices per
   window as a share of the 50 x 60 = 3000 bound, and the share of calls answered 429;
3. the naive sequential sync (benchmarks/naive.py) unthrottled, and 4. throttled the same way (on the
   first sales only: it is sequential, so its rate is steady from the start).

Each run gets fresh stand-ins (so Xero starts empty), and each pipeline run a fresh PostgreSQL database,
an empty Redis database and its own worker processes. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from benchmarks.dataset import Shaping, shape_new_customers
from benchmarks.harness import ROOT, Workers, fresh_database, pick_redis_dbs, pipeline_env, redis_database
from benchmarks.naive import NaiveConfig
from benchmarks.worker import WINDOW_ENV
from pipeline.app import TaskName, send
from pipeline.context import tenant_context
from pipeline.demo import verify
from pipeline.ledger.models import ContactLink, DeadLetter, DocumentState, PollCursor, SaleRecord, SyncDocument
from pipeline.runtime import reload_runtime
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.generator import Dataset, generate
from pipeline.standins.xero import XeroStandIn
from pipeline.status import LedgerCounts, wait_until_settled

XERO_BATCH = 50
XERO_CALLS_PER_MINUTE = 60
BOUND_PER_MINUTE = XERO_BATCH * XERO_CALLS_PER_MINUTE  # 3000 invoices a minute

TARGETS = {
    "xero_calls_per_1000_invoices": ("<=", 30.0),
    "cin7_calls_per_sale": ("<=", 1.02),
    "throttled_share_of_bound": (">=", 0.90),
    "throttled_429_share": ("<=", 0.01),
    "orders_per_second": (">=", 300.0),
    "peak_worker_rss_mb": ("<", 250.0),
}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


# --- the pipeline ----------------------------------------------------------------------------------


def _ledger_facts(since: datetime) -> dict[str, Any]:
    ctx = tenant_context()
    with ctx.sessions() as session:
        rows = session.execute(
            select(SyncDocument.synced_at, SaleRecord.discovered_at)
            .join(
                SaleRecord,
                (SaleRecord.tenant_id == SyncDocument.tenant_id) & (SaleRecord.sale_id == SyncDocument.sale_id),
            )
            .where(SyncDocument.state == DocumentState.SYNCED, SyncDocument.synced_at.is_not(None))
        ).all()
        last_fetch = session.scalar(select(func.max(SaleRecord.fetched_at)))
        states = dict(session.execute(select(SyncDocument.state, func.count()).group_by(SyncDocument.state)).all())
        links = dict(session.execute(select(ContactLink.linked_by, func.count()).group_by(ContactLink.linked_by)).all())
        dead = [
            f"{d.document_number}: {'; '.join(str(m) for m in d.messages)[:200]}"
            for d in session.scalars(select(DeadLetter).where(DeadLetter.resolved_at.is_(None)).limit(10))
        ]
    synced_at = [r.synced_at for r in rows]
    end = max([*synced_at, *([last_fetch] if last_fetch else [])], default=since)
    latencies = [(r.synced_at - r.discovered_at).total_seconds() for r in rows]
    return {
        "synced": len(rows),
        "states": {str(k): int(v) for k, v in states.items()},
        "contact_links": {str(k): int(v) for k, v in links.items()},
        "elapsed": (end - since).total_seconds(),
        "latencies": latencies,
        "dead_letters": dead,
    }


def run_pipeline(
    dataset: Dataset,
    args: argparse.Namespace,
    *,
    window: float | None,
    redis_db: int,
    logdir: Path,
    console: Console,
) -> dict[str, Any]:
    """One full pipeline run on fresh services; returns raw measurements."""
    xero_limits: dict[str, Any] = {"minute_limit": XERO_CALLS_PER_MINUTE, "window_seconds": window} if window else {}
    cin7 = Cin7StandIn(dataset=dataset).start()
    xero = XeroStandIn(seed_contacts=dataset.xero_contacts, **xero_limits).start()
    saved = dict(os.environ)
    try:
        with fresh_database() as database_url, redis_database(redis_db) as redis_url:
            env = pipeline_env(database_url, redis_url, cin7, xero, batch_wait=args.batch_wait)
            # Both sides share one clock: the pipeline's Xero minute is the stand-in's (none when unlimited).
            env[WINDOW_ENV] = str(window or 0)
            os.environ.update(env)
            reload_runtime()
            workers = Workers(env={**os.environ, **env}, logdir=logdir)
            try:
                started = time.monotonic()
                for index in range(args.workers):
                    workers.start(f"w{index}", concurrency=args.concurrency, beat=index == 0)
                console.log(f"{args.workers} workers ready in {time.monotonic() - started:.1f}s; polling")
                ctx = tenant_context()

                def polled_at() -> datetime | None:
                    with ctx.sessions() as session:
                        return session.scalar(select(PollCursor.last_polled_at).where(PollCursor.stream == "sales"))

                before = polled_at()
                last_report = time.monotonic()

                def poll_done(_counts: LedgerCounts) -> bool:
                    after = polled_at()
                    return after is not None and (before is None or after > before)

                def progress(counts: LedgerCounts) -> None:
                    nonlocal last_report
                    if time.monotonic() - last_report > 5:
                        last_report = time.monotonic()
                        console.log(f"  {counts.documents} sales in flight={counts.sales_in_flight}")

                since = datetime.now(UTC)
                send(TaskName.POLL, ctx.tenant_key)
                try:
                    wait_until_settled(ctx, timeout=args.timeout, started_after=poll_done, on_progress=progress)
                except TimeoutError as exc:
                    kept = Path(tempfile.mkdtemp(prefix="cin7xero-bench-failed-"))
                    shutil.copytree(logdir, kept, dirs_exist_ok=True)
                    raise RuntimeError(f"{exc}\nworker logs kept in {kept}") from exc
                rss = workers.peak_rss()
            finally:
                workers.stop()
            facts = _ledger_facts(since)
            check = verify(dataset, cin7, xero, {})
            facts.update(
                xero_stats=xero.stats(),
                cin7_stats=cin7.stats(),
                rss=rss,
                verification_problems=check.problems[:10],
            )
            return facts
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reload_runtime()
        cin7.stop()
        xero.stop()


# --- the naive baseline ----------------------------------------------------------------------------


def run_naive(dataset: Dataset, *, window: float | None, max_sales: int | None, workdir: Path) -> dict[str, Any]:
    """The naive sync in its own process against fresh stand-ins on the same data."""
    xero_limits: dict[str, Any] = {"minute_limit": XERO_CALLS_PER_MINUTE, "window_seconds": window} if window else {}
    cin7 = Cin7StandIn(dataset=dataset).start()
    xero = XeroStandIn(seed_contacts=dataset.xero_contacts, **xero_limits).start()
    try:
        config = NaiveConfig(
            cin7_api_url=cin7.api_url,
            cin7_account_id=cin7.account_id,
            cin7_application_key=cin7.application_key,
            xero_api_url=xero.api_url,
            xero_token_url=xero.token_url,
            xero_connections_url=xero.connections_url,
            xero_client_id=xero.client_id,
            xero_client_secret=xero.client_secret,
            max_sales=max_sales,
        )
        config_path = workdir / f"naive-{window or 0}.json"
        out_path = workdir / f"naive-{window or 0}-out.json"
        config_path.write_text(json.dumps(asdict(config)))
        subprocess.run(
            [sys.executable, "-m", "benchmarks.naive", str(config_path), str(out_path)],
            cwd=ROOT,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        result: dict[str, Any] = json.loads(out_path.read_text())
        result.update(xero_stats=xero.stats(), cin7_stats=cin7.stats())
        return result
    finally:
        cin7.stop()
        xero.stop()


# --- figures ---------------------------------------------------------------------------------------


def _pipeline_figures(free: dict[str, Any], limited: dict[str, Any], sales: int, window: float) -> dict[str, Any]:
    synced = free["synced"]
    xero_calls = free["xero_stats"]["calls"]
    cin7_calls = free["cin7_stats"]["calls"]
    limited_calls = limited["xero_stats"]["calls"]
    synced_sales = synced  # refined below where the dataset is known
    peak = max(free["rss"].values(), default=0.0)
    return {
        "xero_calls_per_1000_invoices": 1000.0 * xero_calls / synced if synced else float("nan"),
        "cin7_calls_per_sale": cin7_calls / sales,
        "throttled_share_of_bound": limited["synced"] / (limited["elapsed"] / window) / BOUND_PER_MINUTE,
        "throttled_429_share": limited["xero_stats"]["rate_limited"] / limited_calls if limited_calls else 0.0,
        "orders_per_second": sales / free["elapsed"],
        "invoices_per_second": synced / free["elapsed"],
        "latency_p50_seconds": _percentile(free["latencies"], 0.50),
        "latency_p95_seconds": _percentile(free["latencies"], 0.95),
        "peak_worker_rss_mb": peak,
        "_synced_sales": synced_sales,
    }


def _naive_figures(free: dict[str, Any], limited: dict[str, Any], window: float) -> dict[str, Any]:
    synced = free["synced"]
    limited_calls = limited["xero_stats"]["calls"]
    free_elapsed = free["finished"] - free["started"]
    limited_elapsed = limited["last_synced"] - limited["started"]
    return {
        "xero_calls_per_1000_invoices": 1000.0 * free["xero_stats"]["calls"] / synced if synced else float("nan"),
        "cin7_calls_per_sale": free["cin7_stats"]["calls"] / free["sales"],
        "throttled_share_of_bound": limited["synced"] / (limited_elapsed / window) / BOUND_PER_MINUTE,
        "throttled_429_share": limited["xero_stats"]["rate_limited"] / limited_calls if limited_calls else 0.0,
        "orders_per_second": free["sales"] / free_elapsed,
        "invoices_per_second": synced / free_elapsed,
        "latency_p50_seconds": _percentile(free["latencies"], 0.50),
        "latency_p95_seconds": _percentile(free["latencies"], 0.95),
        "peak_worker_rss_mb": free["peak_rss_mb"],
    }


def _met(name: str, value: float) -> bool | None:
    target = TARGETS.get(name)
    if target is None:
        return None
    op, bound = target
    compare: dict[str, Callable[[float, float], bool]] = {
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
    }
    return compare[op](value, bound)


def _table(figures: dict[str, dict[str, Any]], console: Console) -> None:
    table = Table(title="pipeline vs naive (same data)")
    for column in ("figure", "pipeline", "naive", "pipeline / naive", "target", "met"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for name, row in figures.items():
        target = TARGETS.get(name)
        met = row.get("met")
        table.add_row(
            name,
            f"{row['pipeline']:.4g}",
            f"{row['naive']:.4g}",
            f"{row['ratio']:.3g}",
            f"{target[0]} {target[1]:g}" if target else "",
            "" if met is None else ("yes" if met else "NO"),
        )
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write the JSON report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sales", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--new-customer-share", type=float, default=0.3)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument("--xero-window", type=float, default=3.0, help="seconds the stand-in counts as a minute")
    parser.add_argument("--naive-throttled-sales", type=int, default=120, help="sales for the throttled naive run")
    parser.add_argument("--batch-wait", type=float, default=0.2, help="XERO_BATCH_WAIT_SECONDS")
    parser.add_argument(
        "--redis-db", type=int, default=None, help="first of two Redis db numbers; default: the highest empty ones"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a pipeline run may take")
    parser.add_argument("--logdir", type=Path, default=None, help="keep worker logs here (default: discarded)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latest.json")
    args = parser.parse_args(argv)
    console = Console()
    free_db, limited_db = pick_redis_dbs(2, args.redis_db)
    window: float = args.xero_window

    generated = generate(args.seed, args.sales, now=datetime.now(UTC), hostile=False)
    dataset, shaping = shape_new_customers(generated, args.new_customer_share, args.seed)
    invoices = sum(1 for e in dataset.expectations if e.outcome == "synced")
    console.log(
        f"{args.sales} sales, {invoices} invoices to sync; new-customer share {shaping.natural_share:.3f} "
        f"as generated, {shaping.expected_share:.3f} after shaping "
        f"(+{shaping.customers_added} customers, {shaping.contacts_seeded} contacts pre-seeded)"
    )
    load_before = os.getloadavg()
    if load_before[0] > 1.5:
        console.log(f"[yellow]load average {load_before[0]:.1f} on {os.cpu_count()} CPUs: figures will be low[/yellow]")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cin7xero-bench-") as tmp:
        workdir = Path(args.logdir or tmp)
        timings: dict[str, float] = {}

        def timed(label: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            console.log(f"[bold]{label}[/bold]")
            t = time.monotonic()
            result = fn()
            timings[label] = round(time.monotonic() - t, 1)
            console.log(f"{label}: {timings[label]}s")
            return result

        (workdir / "free").mkdir(parents=True, exist_ok=True)
        (workdir / "limited").mkdir(parents=True, exist_ok=True)
        pipeline_free = timed(
            "pipeline, unthrottled",
            lambda: run_pipeline(
                dataset, args, window=None, redis_db=free_db, logdir=workdir / "free", console=console
            ),
        )
        pipeline_limited = timed(
            f"pipeline, Xero 60 calls per {window:g}s",
            lambda: run_pipeline(
                dataset, args, window=window, redis_db=limited_db, logdir=workdir / "limited", console=console
            ),
        )
        naive_free = timed(
            "naive, unthrottled", lambda: run_naive(dataset, window=None, max_sales=None, workdir=workdir)
        )
        naive_limited = timed(
            f"naive, Xero 60 calls per {window:g}s (first {args.naive_throttled_sales} sales)",
            lambda: run_naive(dataset, window=window, max_sales=args.naive_throttled_sales, workdir=workdir),
        )

    pipeline = _pipeline_figures(pipeline_free, pipeline_limited, args.sales, window)
    pipeline.pop("_synced_sales")
    naive = _naive_figures(naive_free, naive_limited, window)
    figures: dict[str, dict[str, Any]] = {}
    for name, value in pipeline.items():
        other = naive[name]
        figures[name] = {
            "pipeline": value,
            "naive": other,
            "ratio": value / other if other else float("inf"),
            "met": _met(name, value),
        }
    new_created = pipeline_free["contact_links"].get("created", 0)
    measured_share = new_created / pipeline_free["synced"] if pipeline_free["synced"] else 0.0
    report: dict[str, Any] = {
        "command": "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "generated_at": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # Other work on the machine during the run (1/5/15-minute load averages).
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "settings": {
            "sales": args.sales,
            "seed": args.seed,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "xero_window_seconds": window,
            "batch_wait_seconds": args.batch_wait,
            "naive_throttled_sales": args.naive_throttled_sales,
        },
        "data": {
            "sales": args.sales,
            "invoices_to_sync": invoices,
            "new_customer_share_requested": args.new_customer_share,
            "new_customer_share_generated": shaping.natural_share,
            "new_customer_share_expected": shaping.expected_share,
            "new_customer_share_measured": measured_share,
            "shaping": asdict(shaping) if isinstance(shaping, Shaping) else {},
        },
        "figures": figures,
        "targets": {name: f"{op} {bound:g}" for name, (op, bound) in TARGETS.items()},
        "interpretation": {
            # What the throttled share could be if only one thing limited it.
            "api_bound_share": (pipeline_free["synced"] / pipeline_free["xero_stats"]["calls"]) / XERO_BATCH,
            "cpu_bound_share_in_window": pipeline["invoices_per_second"] * window / BOUND_PER_MINUTE,
            "cpu_bound_share_real_minute": pipeline["invoices_per_second"] * 60 / BOUND_PER_MINUTE,
        },
        "raw": {
            "pipeline_unthrottled": _trim(pipeline_free),
            "pipeline_throttled": _trim(pipeline_limited),
            "naive_unthrottled": _trim(naive_free),
            "naive_throttled": _trim(naive_limited),
        },
        "timings_seconds": {**timings, "total": round(time.monotonic() - started, 1)},
    }
    _table(figures, console)
    console.print(
        f"new-customer share measured {measured_share:.3f} (requested {args.new_customer_share}); "
        f"Xero window {window:g}s; total {report['timings_seconds']['total']}s"
    )
    for label, raw in (("unthrottled", pipeline_free), ("throttled", pipeline_limited)):
        if raw["verification_problems"]:
            console.print(f"[red]pipeline {label} run did not verify:[/red] {raw['verification_problems']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"wrote {args.out}")


def _trim(raw: dict[str, Any]) -> dict[str, Any]:
    """Raw measurements without the per-invoice lists."""
    return {k: v for k, v in raw.items() if k != "latencies"}


if __name__ == "__main__":
    main()

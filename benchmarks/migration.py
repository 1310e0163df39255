"""`python -m benchmarks.migration [--sizes 1000,5000,20000] [--xero-window W]`: the historical migration.

For each size, on fresh stand-ins, a fresh ledger database, an empty Redis database and real worker
processes (benchmarks.harness), a generated two-year history (generate_history: some invoices typed
into Xero already, a lock date a year back) is migrated the way an operator would:

1. `cin7xero migrate plan --from <first invoice date>` (the test run; writes nothing to Xero);
2. `cin7xero migrate run --from <first invoice date> --yes` (the cutover, through the workers),
   and then until the ledger settles (contact pushes follow the last invoice batch).

Each command runs in a process of its own (`_child`, which runs the real CLI and reports its own peak
RSS), so that its memory is not mixed with the stand-ins', which live in this process. The live sync
runs all along with SYNC_START_DATE tomorrow, so it leaves the whole history to the migration.

The figures are printed beside issue 12's targets, with met / not met, and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.harness import (
    ROOT,
    XERO_CALLS_PER_WINDOW,
    Workers,
    fresh_database,
    machine_facts,
    pick_redis_dbs,
    pipeline_env,
    redis_database,
    vm_hwm_mb,
)

# The same helper run.py uses to point this process at one run's ledger (for the settle wait).
from benchmarks.run import _environment
from benchmarks.xero_log import RecordingXeroStandIn, XeroCall
from pipeline.cli.main import app as cli_app
from pipeline.context import tenant_context
from pipeline.migration.plan_rows import PlanCost
from pipeline.migration.run import progress
from pipeline.operations.status import wait_until_settled
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.generator.history import History, generate_history

DEFAULT_SIZES = (1000, 5000, 20000)
# 60 calls per 6 s: Xero's minute compressed tenfold, so that a run of minutes meets the limit often
# enough to show whether the cutover keeps it busy. The pipeline's own limiter is set to the same.
DEFAULT_XERO_WINDOW = 6.0
# Production limits, for the plan's hours at the real Cin7 and Xero (the benchmark's own are lifted).
REAL_CIN7_PER_MINUTE = 60
REAL_XERO_PER_MINUTE = 60
REAL_XERO_PER_DAY = 5000
# "Flat" read as: the largest size's peak RSS at most this much above the smallest size's.
FLAT_RSS_GROWTH = 1.25

XERO_WRITES = ("PUT", "POST", "DELETE")


@dataclass
class ChildResult:
    """One CLI command as `_child` reported it."""

    rc: int
    seconds: float
    peak_rss_mb: float | None
    log: Path


@dataclass
class SizeResult:
    """What one size measured."""

    sales: int
    invoiced_sales: int
    plan: dict[str, Any]
    plan_child: ChildResult
    run_child: ChildResult
    run_seconds: float  # `migrate run` started -> ledger settled (contact pushes included)
    cin7_plan: dict[str, int]
    cin7_run: dict[str, int]
    xero_plan: dict[str, int]
    xero_run: dict[str, int]
    xero_run_429: int
    documents_written: dict[str, int]
    worker_rss_mb: dict[str, float]
    phases: dict[str, float]
    states: dict[str, int]
    correctness: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    # --- the figures ---

    @property
    def cin7_sale_calls(self) -> int:
        """`sale?ID=` detail reads over plan + run."""
        return self.cin7_plan.get("sale", 0) + self.cin7_run.get("sale", 0)

    @property
    def cin7_per_invoiced_sale(self) -> float | None:
        return self.cin7_sale_calls / self.invoiced_sales if self.invoiced_sales else None

    @property
    def xero_run_calls(self) -> int:
        return sum(self.xero_run.values())

    @property
    def cin7_run_calls(self) -> int:
        return sum(self.cin7_run.values())

    @property
    def docs(self) -> int:
        return sum(self.documents_written.values())

    @property
    def xero_per_1000_docs(self) -> float | None:
        return 1000.0 * self.xero_run_calls / self.docs if self.docs else None

    def busy_share(self, window: float) -> float | None:
        """Xero calls of the run / what Xero's limit allowed over the run's wall time."""
        allowed = self.run_seconds * XERO_CALLS_PER_WINDOW / window
        return self.xero_run_calls / allowed if allowed > 0 else None

    def estimate_error(self, planned: int, actual: int) -> float | None:
        return abs(planned - actual) / actual if actual else None

    @property
    def peak_rss_mb(self) -> float | None:
        values = [*self.worker_rss_mb.values(), self.plan_child.peak_rss_mb, self.run_child.peak_rss_mb]
        return max((v for v in values if v is not None), default=None)

    def as_json(self, window: float) -> dict[str, Any]:
        cost = self.plan["cost"]
        return {
            "sales": self.sales,
            "invoiced_sales": self.invoiced_sales,
            "plan_counts": self.plan["counts"],
            "plan_counts_by_kind": self.plan["counts_by_kind"],
            "plan_cost": cost,
            "plan_cost_at_real_limits": real_limits(cost).as_json(),
            "plan_seconds": self.plan_child.seconds,
            "run_seconds": self.run_seconds,
            "run_cli_seconds": self.run_child.seconds,
            "phases_seconds": self.phases,
            "cin7_calls_plan": self.cin7_plan,
            "cin7_calls_run": self.cin7_run,
            "xero_calls_plan": self.xero_plan,
            "xero_calls_run": self.xero_run,
            "xero_run_answered_429": self.xero_run_429,
            "documents_written": self.documents_written,
            "ledger_states": self.states,
            "peak_rss_mb": {
                "workers": self.worker_rss_mb,
                "plan_process": self.plan_child.peak_rss_mb,
                "run_process": self.run_child.peak_rss_mb,
            },
            "figures": {
                "cin7_sale_calls_per_invoiced_sale": self.cin7_per_invoiced_sale,
                "xero_calls_per_1000_documents": self.xero_per_1000_docs,
                "xero_busy_share": self.busy_share(window),
                "plan_xero_estimate_error": self.estimate_error(int(cost["xero_calls"]), self.xero_run_calls),
                "plan_cin7_estimate_error": self.estimate_error(int(cost["cin7_calls"]), self.cin7_run_calls),
                "peak_rss_mb": self.peak_rss_mb,
            },
            "correctness": self.correctness,
            **self.extra,
        }


def real_limits(cost: dict[str, Any]) -> PlanCost:
    """The plan's call counts at production limits (the benchmark lifts Cin7's and compresses Xero's)."""
    return PlanCost(
        cin7_list_calls=int(cost["cin7_list_calls"]),
        cin7_detail_calls=int(cost["cin7_detail_calls"]),
        xero_read_calls=int(cost["xero_read_calls"]),
        xero_write_calls=int(cost["xero_write_calls"]),
        cin7_calls_per_minute=REAL_CIN7_PER_MINUTE,
        xero_calls_per_minute=REAL_XERO_PER_MINUTE,
        xero_calls_per_day=REAL_XERO_PER_DAY,
    )


# --- one CLI command in its own process -------------------------------------------------------------


def _child(out: Path, cli_args: list[str]) -> int:
    """Run `cin7xero <cli_args>` in this process and write its wall time, exit code and VmHWM to `out`."""
    started = time.monotonic()
    code = 0
    try:
        cli_app(args=cli_args, prog_name="cin7xero")
    except SystemExit as exc:  # typer ends every command with one, success included
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    seconds = time.monotonic() - started
    out.write_text(json.dumps({"rc": code, "seconds": seconds, "peak_rss_mb": vm_hwm_mb(os.getpid())}))
    return code


def run_cli(name: str, cli_args: list[str], env: dict[str, str], workdir: Path, timeout: float) -> ChildResult:
    """`cin7xero <cli_args>` as its own process (through `_child`); its output goes to `<name>.log`."""
    out, log = workdir / f"{name}.json", workdir / f"{name}.log"
    command = [sys.executable, "-m", "benchmarks.migration", "--child", str(out), "--", *cli_args]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            process.wait(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if not out.exists():
        raise RuntimeError(f"{name} exited with {process.returncode}: {log.read_text(errors='replace')[-3000:]}")
    found = json.loads(out.read_text())
    result = ChildResult(int(found["rc"]), float(found["seconds"]), found["peak_rss_mb"], log)
    if result.rc != 0:
        raise RuntimeError(f"{name} exited with {result.rc}: {log.read_text(errors='replace')[-3000:]}")
    return result


# --- one size ---------------------------------------------------------------------------------------


def first_invoice_day(history: History) -> date:
    """Where the migration starts: the history's first invoice date."""
    return min(date.fromisoformat(str(i["InvoiceDate"])[:10]) for s in history.dataset.sales for i in s["Invoices"])


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(after) if after.get(k, 0) != before.get(k, 0)}


def _xero_day(value: Any) -> date:
    """A Xero `/Date(ms+0000)/` as a date."""
    found = re.search(r"\((-?\d+)", str(value))
    if found is None:
        raise ValueError(f"not a Xero date: {value!r}")
    millis = int(found.group(1))
    return datetime.fromtimestamp(millis / 1000, tz=UTC).date()


def check_migration(history: History, xero: RecordingXeroStandIn, plan: dict[str, Any]) -> dict[str, Any]:
    """Every create/adopt invoice in Xero exactly once; nothing the run wrote dated on or before the lock."""
    seeded = {str(i["InvoiceNumber"]) for i in history.xero_invoices}
    invoices = xero.invoices()
    in_xero = Counter(str(i.get("InvoiceNumber")) for i in invoices)
    refused = {e.invoice_number for e in history.dataset.expectations if e.outcome == "dead_xero"}
    wanted = [n for n, fate in history.fates.items() if fate in ("create", "adopt") and n not in refused]
    not_once = {n: in_xero[n] for n in wanted if in_xero[n] != 1}
    duplicated = {n: c for n, c in in_xero.items() if c > 1}
    written = [i for i in invoices if str(i.get("InvoiceNumber")) not in seeded]
    locked_written = [str(i.get("InvoiceNumber")) for i in written if _xero_day(i["Date"]) <= history.lock_date]
    notes_locked = [
        str(n.get("CreditNoteNumber")) for n in xero.credit_notes() if _xero_day(n["Date"]) <= history.lock_date
    ]
    planned = {str(d["number"]): d["fate"] for d in plan.get("documents", []) if d["kind"] == "invoice"}
    fate_mismatch = {n: (planned.get(n), f) for n, f in history.fates.items() if planned.get(n) != f}
    return {
        "create_or_adopt_invoices": len(wanted),
        "refused_by_xero_excluded": len(refused),
        "not_exactly_once": dict(list(not_once.items())[:10]),
        "not_exactly_once_count": len(not_once),
        "duplicated_numbers": len(duplicated),
        "written_on_or_before_lock_date": locked_written[:10] + notes_locked[:10],
        "written_on_or_before_lock_date_count": len(locked_written) + len(notes_locked),
        "plan_fate_mismatches": dict(list(fate_mismatch.items())[:10]),
        "plan_fate_mismatch_count": len(fate_mismatch),
        "ok": not not_once and not duplicated and not locked_written and not notes_locked,
    }


def documents_written(history: History, xero: RecordingXeroStandIn) -> dict[str, int]:
    """What is in Xero now that the bookkeeper did not type: the run is the only writer."""
    notes = xero.credit_notes()
    payments = [p for p in xero.payments() if str(p.get("Status", "")).upper() != "DELETED"]
    refunds = sum(1 for p in payments if "CreditNote" in p)
    return {
        "invoices": len(xero.invoices()) - len(history.xero_invoices),
        "credit_notes": len(notes),
        "payments": len(payments) - refunds,
        "refunds": refunds,
        "allocations": sum(len(n.get("Allocations") or []) for n in notes),
    }


def _phases(calls: list[XeroCall], run_started: float, run_ended: float) -> dict[str, float]:
    """Where the run's wall time went, from the Xero request log: before the first write, writing, after."""
    writes = [c.at for c in calls if run_started <= c.at <= run_ended and c.endpoint.split(" ")[0] in XERO_WRITES]
    if not writes:
        return {"before_first_write": run_ended - run_started}
    return {
        "before_first_write": writes[0] - run_started,
        "first_to_last_write": writes[-1] - writes[0],
        "after_last_write": run_ended - writes[-1],
    }


def run_size(sales: int, args: argparse.Namespace, *, redis_db: int, workdir: Path, console: Console) -> SizeResult:
    """Plan and run the migration of one generated history on fresh services."""
    now = datetime.now(UTC)
    history = generate_history(args.seed, sales, now=now, hostile=args.hostile)
    since = first_invoice_day(history).isoformat()
    invoiced = sum(1 for s in history.dataset.sales if s["Invoices"])
    console.log(
        f"[bold]{sales} sales[/bold]: {invoiced} with an invoice, {len(history.xero_invoices)} typed into Xero, "
        f"lock date {history.lock_date}, migrating from {since}"
    )
    cin7 = Cin7StandIn(dataset=history.dataset, rate_limit_per_minute=args.cin7_limit).start()
    xero = RecordingXeroStandIn(
        seed_contacts=history.dataset.xero_contacts,
        seed_invoices=history.xero_invoices,
        period_lock_date=history.lock_date,
        minute_limit=XERO_CALLS_PER_WINDOW,
        window_seconds=args.xero_window,
    )
    xero.start()
    try:
        with fresh_database() as database_url, redis_database(redis_db) as redis_url:
            env = pipeline_env(
                database_url, redis_url, cin7, xero, batch_wait=args.batch_wait, xero_window=args.xero_window
            )
            # The cutover is tomorrow: the live sync leaves every document to the migration, whose window
            # runs to the day before (the CLI's default --until).
            env["SYNC_START_DATE"] = (now.date() + timedelta(days=1)).isoformat()
            with _environment(env):
                child_env = dict(os.environ)
                logdir = workdir / f"size-{sales}"
                logdir.mkdir(parents=True, exist_ok=True)
                workers = Workers(env=child_env, logdir=logdir)
                try:
                    for index in range(args.workers):
                        workers.start(f"w{index}", concurrency=args.concurrency, beat=index == 0, pool=args.pool)
                    cin7_0, xero_0 = cin7.stats()["by_endpoint"], xero.stats()
                    plan_dir = logdir / "plan"
                    plan_child = run_cli(
                        "plan",
                        ["migrate", "plan", "--from", since, "--out", str(plan_dir)],
                        child_env,
                        logdir,
                        args.timeout,
                    )
                    plan = json.loads((plan_dir / "plan.json").read_text())
                    cin7_1, xero_1 = cin7.stats()["by_endpoint"], xero.stats()
                    console.log(
                        f"  plan: {plan_child.seconds:.1f}s, counts {plan['counts']}, "
                        f"Cin7 calls {_delta(cin7_1, cin7_0)}"
                    )
                    run_started = time.monotonic()
                    run_child = run_cli(
                        "run",
                        ["migrate", "run", "--from", since, "--yes", "--timeout", str(args.timeout)],
                        child_env,
                        logdir,
                        args.timeout,
                    )
                    # `migrate run` ends when every document has settled; the contact details of new
                    # customers follow in batches after the last invoice, and are part of the run's cost.
                    wait_until_settled(tenant_context(), timeout=args.timeout)
                    run_ended = time.monotonic()
                    cin7_2, xero_2 = cin7.stats()["by_endpoint"], xero.stats()
                    worker_rss = workers.peak_rss()
                finally:
                    workers.stop()
                found = progress(tenant_context())
                states = dict(found.states) if found is not None else {}
        console.log(f"  run: {run_ended - run_started:.1f}s, ledger {states}")
        return SizeResult(
            sales=sales,
            invoiced_sales=invoiced,
            plan=plan,
            plan_child=plan_child,
            run_child=run_child,
            run_seconds=run_ended - run_started,
            cin7_plan=_delta(cin7_1, cin7_0),
            cin7_run=_delta(cin7_2, cin7_1),
            xero_plan=_delta(xero_1["by_endpoint"], xero_0["by_endpoint"]),
            xero_run=_delta(xero_2["by_endpoint"], xero_1["by_endpoint"]),
            xero_run_429=int(xero_2["rate_limited"]) - int(xero_1["rate_limited"]),
            documents_written=documents_written(history, xero),
            worker_rss_mb=worker_rss,
            phases=_phases(xero.call_log(), run_started, run_ended),
            states=states,
            correctness=check_migration(history, xero, plan),
            extra={"lock_date": history.lock_date.isoformat(), "migrated_from": since},
        )
    finally:
        cin7.stop()
        xero.stop()


# --- the report -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One of issue 12's targets: how a size's figure compares with its bound."""

    name: str
    label: str
    op: str
    bound: float
    read: Callable[[SizeResult, float], float | None]

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value <= self.bound if self.op == "<=" else value >= self.bound


TARGETS: tuple[Target, ...] = (
    Target(
        "cin7_sale_calls_per_invoiced_sale",
        "Cin7 `sale` calls per invoiced sale (plan + run)",
        "<=",
        1.02,
        lambda r, _w: r.cin7_per_invoiced_sale,
    ),
    Target(
        "xero_calls_per_1000_documents",
        "Xero calls per 1000 documents written (run)",
        "<=",
        30.0,
        lambda r, _w: r.xero_per_1000_docs,
    ),
    Target("xero_busy_share", "share of Xero's limit the run kept busy", ">=", 0.90, lambda r, w: r.busy_share(w)),
    Target(
        "plan_xero_estimate_error",
        "plan's Xero estimate vs the run's calls (|error|)",
        "<=",
        0.10,
        lambda r, _w: r.estimate_error(int(r.plan["cost"]["xero_calls"]), r.xero_run_calls),
    ),
    Target(
        "plan_cin7_estimate_error",
        "plan's Cin7 estimate vs the run's calls (|error|)",
        "<=",
        0.10,
        lambda r, _w: r.estimate_error(int(r.plan["cost"]["cin7_calls"]), r.cin7_run_calls),
    ),
)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _yes(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "[red]NOT MET[/red]")


def print_report(results: list[SizeResult], window: float, console: Console) -> dict[str, Any]:
    """The tables, and the memory verdict (which compares sizes)."""
    sizes = [str(r.sales) for r in results]
    table = Table(title=f"migration vs issue 12's targets (Xero {XERO_CALLS_PER_WINDOW} calls per {window:g}s)")
    table.add_column("figure")
    for size in sizes:
        table.add_column(f"{size} sales", justify="right")
    table.add_column("target", justify="right")
    table.add_column("met", justify="right")
    verdicts: dict[str, bool | None] = {}
    for target in TARGETS:
        values = [target.read(r, window) for r in results]
        oks = [target.met(v) for v in values]
        verdict = None if all(o is None for o in oks) else all(o is not False for o in oks)
        verdicts[target.name] = verdict
        table.add_row(target.label, *map(_fmt, values), f"{target.op} {target.bound:g}", _yes(verdict))
    peaks = [r.peak_rss_mb for r in results]
    growth = peaks[-1] / peaks[0] if len(results) > 1 and peaks[0] and peaks[-1] else None
    verdicts["memory_flat"] = None if growth is None else growth <= FLAT_RSS_GROWTH
    table.add_row(
        "peak RSS, any worker or the plan/run process (MB)",
        *map(_fmt, peaks),
        f"flat (largest <= {FLAT_RSS_GROWTH:g}x smallest)",
        _yes(verdicts["memory_flat"]),
    )
    console.print(table)

    detail = Table(title="what each size did")
    detail.add_column("")
    for size in sizes:
        detail.add_column(f"{size} sales", justify="right")
    rows: list[tuple[str, Callable[[SizeResult], Any]]] = [
        ("sales with an invoice", lambda r: r.invoiced_sales),
        *(
            (f"plan: {fate}", (lambda r, fate=fate: r.plan["counts"].get(fate, 0)))
            for fate in ("create", "adopt", "conflict", "locked", "blocked", "skipped", "synced")
        ),
        (
            "plan: estimated Cin7 / Xero calls",
            lambda r: f"{r.plan['cost']['cin7_calls']} / {r.plan['cost']['xero_calls']}",
        ),
        ("plan: estimated hours (benchmark limits)", lambda r: r.plan["cost"]["hours"]),
        ("plan: estimated hours (Cin7 60/min, Xero 60/min)", lambda r: f"{real_limits(r.plan['cost']).hours:.2f}"),
        ("plan: Xero days (5000 a day)", lambda r: r.plan["cost"]["xero_days"]),
        ("plan: wall time (s)", lambda r: f"{r.plan_child.seconds:.1f}"),
        ("plan: Cin7 calls", lambda r: _calls(r.cin7_plan)),
        ("plan: Xero calls (writes must be 0)", lambda r: _calls(r.xero_plan)),
        ("run: wall time to settled (s)", lambda r: f"{r.run_seconds:.1f}"),
        ("run: before first Xero write / writing / after (s)", lambda r: _phase_text(r.phases)),
        ("run: Cin7 calls", lambda r: _calls(r.cin7_run)),
        ("run: Xero calls (429s)", lambda r: f"{r.xero_run_calls} ({r.xero_run_429})"),
        ("run: documents written", lambda r: f"{r.docs} {r.documents_written}"),
        ("run: ledger states", lambda r: r.states),
        ("peak RSS workers / plan / run (MB)", _rss_text),
        ("correct (create/adopt once, nothing locked written)", lambda r: "yes" if r.correctness["ok"] else "NO"),
        ("plan fates differing from the generator's", lambda r: r.correctness["plan_fate_mismatch_count"]),
    ]
    for label, read in rows:
        detail.add_row(label, *(str(read(r)) for r in results))
    console.print(detail)
    for r in results:
        if not r.correctness["ok"]:
            console.print(f"[red]{r.sales} sales: {r.correctness}[/red]")
        endpoints = ", ".join(f"{k} {v}" for k, v in sorted(r.xero_run.items(), key=lambda kv: -kv[1]))
        console.print(f"{r.sales} sales: run's Xero calls by endpoint: {endpoints}")
    return {**verdicts, "rss_growth_largest_over_smallest": growth}


def _calls(by_endpoint: dict[str, int]) -> str:
    return f"{sum(by_endpoint.values())} " + ", ".join(f"{k} {v}" for k, v in by_endpoint.items())


def _phase_text(phases: dict[str, float]) -> str:
    return " / ".join(
        f"{phases[k]:.1f}" for k in ("before_first_write", "first_to_last_write", "after_last_write") if k in phases
    )


def _rss_text(r: SizeResult) -> str:
    worker = max(r.worker_rss_mb.values(), default=0.0)
    return f"{worker:.0f} / {_fmt(r.plan_child.peak_rss_mb)} / {_fmt(r.run_child.peak_rss_mb)}"


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--sizes takes a comma list of numbers: {exc}") from exc
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("--sizes takes positive numbers")
    return sizes


def main(argv: list[str] | None = None) -> None:
    """Migrate each size, print the figures beside the targets, write the JSON report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        # python -m benchmarks.migration --child OUT -- <cin7xero arguments> (see run_cli)
        sys.exit(_child(Path(argv[1]), argv[3:]))
    parser = argparse.ArgumentParser(prog="python -m benchmarks.migration", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=_sizes, default=list(DEFAULT_SIZES), help="comma list of history sizes in sales"
    )
    parser.add_argument(
        "--xero-window",
        type=float,
        default=DEFAULT_XERO_WINDOW,
        help="seconds the Xero stand-in (and the pipeline's limiter) count as the 60-call minute",
    )
    parser.add_argument(
        "--cin7-limit",
        type=int,
        default=None,
        help="calls per minute the Cin7 stand-in allows (default: no limit; the pipeline's own is lifted too)",
    )
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--hostile", action="store_true", help="include the generator's hostile sales")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument("--pool", choices=["prefork", "threads"], default="prefork")
    parser.add_argument("--batch-wait", type=float, default=0.2, help="XERO_BATCH_WAIT_SECONDS")
    parser.add_argument("--redis-db", type=int, default=None, help="first Redis db number (one per size)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds the plan or the run may take")
    parser.add_argument("--logdir", type=Path, default=None, help="keep worker and CLI logs here")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "latest-migration.json", help="JSON report"
    )
    args = parser.parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    redis_dbs = pick_redis_dbs(len(args.sizes), args.redis_db)
    load_before = os.getloadavg()
    started = time.monotonic()
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="cin7xero-migration-") as tmp:
        workdir = Path(args.logdir or tmp)
        for sales, redis_db in zip(args.sizes, redis_dbs, strict=True):
            results.append(run_size(sales, args, redis_db=redis_db, workdir=workdir, console=console))
    verdicts = print_report(results, args.xero_window, console)
    report = {
        "command": "python -m benchmarks.migration " + " ".join(argv),
        "generated_at": datetime.now(UTC).isoformat(),
        "machine": machine_facts(load_before),
        "settings": {
            "sizes": args.sizes,
            "seed": args.seed,
            "hostile": args.hostile,
            "xero_calls_per_window": XERO_CALLS_PER_WINDOW,
            "xero_window_seconds": args.xero_window,
            "cin7_standin_calls_per_minute": args.cin7_limit,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "pool": args.pool,
            "batch_wait_seconds": args.batch_wait,
        },
        "targets": {t.name: f"{t.op} {t.bound:g}" for t in TARGETS} | {"memory_flat": f"<= {FLAT_RSS_GROWTH}x"},
        "met": verdicts,
        "sizes": {str(r.sales): r.as_json(args.xero_window) for r in results},
        "total_seconds": round(time.monotonic() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"total {report['total_seconds']}s; wrote {args.out}")


if __name__ == "__main__":
    main()

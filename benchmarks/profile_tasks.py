"""`python -m benchmarks.profile_tasks [--sales N] [--html DIR]`: the CPU cost of each stage per order.

Runs the pipeline's task bodies in this one process, stage by stage (poll, every fetch with the
mapping it does in the same task, the map_document messages that fetches left (retries), then the
writes), against unthrottled stand-ins, a fresh ledger and Redis, with the broker replaced by a list
(the messages are counted, not sent). For each stage it reports wall and CPU time per
order and the messages it would have sent, and (if pyinstrument is installed) where the time went.
This is a profiling aid for benchmarks/FINDINGS.md, not a measurement of the running system.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

import pipeline.app
import pipeline.discovery.poll
import tasks.sync
from benchmarks.dataset import shape_new_customers
from benchmarks.harness import fresh_database, pick_redis_dbs, pipeline_env, redis_database
from pipeline.context import tenant_context
from pipeline.runtime import reload_runtime
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.generator import generate
from pipeline.standins.xero import XeroStandIn


@dataclass
class Stage:
    """Time spent by one stage over all its calls."""

    name: str
    calls: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    statements: int = 0
    commits: int = 0
    messages: dict[str, int] = field(default_factory=dict)


@contextmanager
def _profiler(enabled: bool, name: str, html_dir: Path | None) -> Iterator[None]:
    if not enabled:
        yield
        return
    # Optional: installed only by whoever profiles (pip install pyinstrument); the benchmark runs without it.
    from pyinstrument import Profiler  # noqa: PLC0415

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False, short_mode=True)[:6000])
        if html_dir is not None:
            html_dir.mkdir(parents=True, exist_ok=True)
            (html_dir / f"{name}.html").write_text(profiler.output_html())


def main(argv: list[str] | None = None) -> None:
    """Profile each stage of the pipeline in-process."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_tasks")
    parser.add_argument("--sales", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-pyinstrument", action="store_true")
    parser.add_argument("--html", type=Path, default=None, help="write pyinstrument HTML per stage here")
    args = parser.parse_args(argv)

    dataset, _ = shape_new_customers(
        generate(args.seed, args.sales, now=datetime.now(UTC), hostile=False), 0.3, args.seed
    )
    cin7 = Cin7StandIn(dataset=dataset).start()
    xero = XeroStandIn(seed_contacts=dataset.xero_contacts).start()
    saved = dict(os.environ)
    try:
        with fresh_database() as database_url, redis_database(pick_redis_dbs(1)[0]) as redis_url:
            # xero_window=None: no Xero pacing, as the stand-in does not limit; this measures our cost.
            env = pipeline_env(database_url, redis_url, cin7, xero, batch_wait=0.0, xero_window=None)
            os.environ.update(env)

            reload_runtime()
            _profile(args, len(dataset.sales))
    finally:
        os.environ.clear()
        os.environ.update(saved)
        cin7.stop()
        xero.stop()


def _profile(args: argparse.Namespace, sales: int) -> None:

    outbox: list[tuple[str, tuple[Any, ...]]] = []

    def capture(task: Any, *task_args: Any, countdown: float | None = None) -> None:
        outbox.append((str(task), task_args))

    # Every module that imported `send` by name gets the capturing one.
    for module in (pipeline.app, pipeline.discovery.poll, tasks.sync):
        module.send = capture  # type: ignore[attr-defined]
    ctx = tenant_context()
    key = ctx.tenant_key
    stages: list[Stage] = []
    # Round trips to PostgreSQL are what the task bodies mostly pay for: count them per stage.
    counts = {"statements": 0, "commits": 0}
    engine = ctx.sessions.kw["bind"]

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(*_: Any) -> None:
        counts["statements"] += 1

    @event.listens_for(engine, "commit")
    def _commit(*_: Any) -> None:
        counts["commits"] += 1

    def run(name: str, work: list[Callable[[], object]]) -> list[tuple[str, tuple[Any, ...]]]:
        stage = Stage(name)
        outbox.clear()
        counts.update(statements=0, commits=0)
        wall, cpu = time.perf_counter(), time.process_time()
        with _profiler(not args.no_pyinstrument, name, args.html):
            for item in work:
                item()
        stage.wall, stage.cpu, stage.calls = time.perf_counter() - wall, time.process_time() - cpu, len(work)
        stage.statements, stage.commits = counts["statements"], counts["commits"]
        sent = list(outbox)
        for task, _ in sent:
            stage.messages[task] = stage.messages.get(task, 0) + 1
        stages.append(stage)
        return sent

    polled = run("poll", [lambda: tasks.sync.poll.run(key)])
    # The poll sends its sales ten to a fetch_sales message (CIN7_FETCH_GROUP_SIZE), or one each.
    fetch_tasks = {"cin7xero.fetch_sale": tasks.sync.fetch_sale, "cin7xero.fetch_sales": tasks.sync.fetch_sales}
    fetches: list[Callable[[], object]] = [
        functools.partial(fetch_tasks[task].run, *args_) for task, args_ in polled if task in fetch_tasks
    ]
    # The fetch task maps what it fetched; only what must wait comes back as map_document messages.
    fetched = run("fetch (+ map)", fetches)
    maps = [args_ for task, args_ in fetched if task.endswith("map_document")]
    mapped = run("map_document (left over)", [functools.partial(tasks.sync.map_document.run, *a) for a in maps])
    writes = [args_ for task, args_ in fetched + mapped if task.endswith("write_document")]
    # One writer drains everything; the other write messages find nothing to do (as in the workers).
    drained = run(
        "write_document (drain)", [lambda: tasks.sync.write_document.run(key, writes[0][1] if writes else None)]
    )
    run("write_document (no-op)", [functools.partial(tasks.sync.write_document.run, *a) for a in writes[1:]])
    # What the invoices' writes woke (their payments, credit notes' allocations): mapped, then written.
    woken = [args_ for task, args_ in drained if task.endswith("map_document")]
    rewoken = run("map_document (woken)", [functools.partial(tasks.sync.map_document.run, *a) for a in woken])
    if any(task.endswith("write_document") for task, _ in drained + rewoken):
        run("write_document (woken)", [lambda: tasks.sync.write_document.run(key, None)])

    print(f"\n{sales} sales; per order = stage total / {sales}")
    print(
        f"{'stage':28} {'calls':>6} {'wall s':>8} {'cpu s':>8} {'cpu ms/order':>13} {'SQL/order':>10} "
        f"{'commits/order':>14}  messages sent"
    )
    for stage in stages:
        print(
            f"{stage.name:28} {stage.calls:6d} {stage.wall:8.2f} {stage.cpu:8.2f} "
            f"{1000 * stage.cpu / sales:13.2f} {stage.statements / sales:10.2f} {stage.commits / sales:14.2f}"
            f"  {stage.messages}"
        )
    total_cpu = sum(s.cpu for s in stages)
    total_wall = sum(s.wall for s in stages)
    print(
        f"{'total':28} {'':6} {total_wall:8.2f} {total_cpu:8.2f} {1000 * total_cpu / sales:13.2f}"
        f"  => at most {2 * sales / total_cpu:.0f} orders/s on 2 cores for task bodies alone"
    )


if __name__ == "__main__":
    main()

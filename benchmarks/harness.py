"""Services for one benchmark run: a fresh ledger database, an empty Redis database, worker processes.

Mirrors what tests/conftest.py does for tests (create/migrate/drop a database, start real
`celery worker` processes and wait until they consume) without importing test code.
"""

from __future__ import annotations

import os
import platform
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

from pipeline.db import reset_engines
from pipeline.ledger.migrate import upgrade
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.env import standin_env
from pipeline.standins.xero import XeroStandIn
from pipeline.workerpool import WorkerPool

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")


def _sqlalchemy_url(database: str) -> str:
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{database}"


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, migrated PostgreSQL database (SQLAlchemy URL), dropped afterwards."""
    name = f"cin7xero_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _sqlalchemy_url(name)
    try:
        upgrade(url)
        yield url
    finally:
        reset_engines()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pick_redis_dbs(count: int, first: int | None = None) -> list[int]:
    """`count` Redis database numbers: from `first` upwards if given, else the highest empty ones.

    Each pipeline run needs its own: Celery's producer pools are cached per broker URL in the
    process, and the pool of a finished run is closed (pipeline.app.reconfigure), so a second run on
    the same URL would find it closed.
    """
    if first is not None:
        return [first + i for i in range(count)]
    found = [n for n in range(15, 0, -1) if redis.Redis.from_url(f"{REDIS_BASE}/{n}").dbsize() == 0][:count]
    if len(found) < count:
        raise RuntimeError(f"fewer than {count} empty Redis databases between 1 and 15; pass --redis-db")
    return found


@contextmanager
def redis_database(number: int) -> Iterator[str]:
    """A flushed Redis database (broker queues and rate-limit keys), flushed again afterwards."""
    url = f"{REDIS_BASE}/{number}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()


# Xero's per-tenant minute, as the stand-in counts it when a run limits Xero.
XERO_CALLS_PER_WINDOW = 60
# A limit the pipeline never reaches: an unthrottled run measures our own cost, not our pacing.
UNLIMITED_XERO_CALLS_PER_WINDOW = 1_000_000


def xero_limit_env(window_seconds: float | None) -> dict[str, str]:
    """The pipeline's own Xero limiter on the stand-in's clock: 60 calls per `window_seconds` when Xero
    is limited that way, or no pacing at all (None) when the stand-in does not limit."""
    if window_seconds:
        return {"XERO_CALLS_PER_WINDOW": str(XERO_CALLS_PER_WINDOW), "XERO_RATE_WINDOW_SECONDS": str(window_seconds)}
    return {"XERO_CALLS_PER_WINDOW": str(UNLIMITED_XERO_CALLS_PER_WINDOW), "XERO_RATE_WINDOW_SECONDS": "60"}


def pipeline_env(
    database_url: str,
    redis_url: str,
    cin7: Cin7StandIn,
    xero: XeroStandIn,
    *,
    batch_wait: float,
    xero_window: float | None = None,
) -> dict[str, str]:
    """Worker settings for one run (the same keys the pipeline tests set, tuned for throughput).

    `xero_window`: the seconds the Xero stand-in counts as a minute, or None when it does not limit.
    """
    return {
        **standin_env(database_url, redis_url, redis_url, cin7, xero),
        **xero_limit_env(xero_window),
        "CIN7_THROTTLE_WAIT_SECONDS": "1",
        # Unthrottled Cin7: the figures are about our throughput and Xero's limit.
        "CIN7_CALLS_PER_MINUTE": "1000000",
        "XERO_BATCH_WAIT_SECONDS": str(batch_wait),
        "RETRY_BASE_SECONDS": "0.5",
        "RETRY_CAP_SECONDS": "4",
        "STUCK_AFTER_SECONDS": "600",
        "SWEEP_INTERVAL_SECONDS": "60",
        # The benchmark decides when Cin7 is polled.
        "POLL_INTERVAL_SECONDS": "3600",
        "TOKEN_ENCRYPTION_KEY": "",
    }


@dataclass
class Workers(WorkerPool):
    """The tests' real `celery worker` processes, for one run (Xero pacing comes from the env:
    xero_limit_env), plus what the benchmark reads from them."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        """Warm shutdown, then SIGKILL whatever is left (each worker is its own process group)."""
        self.stop_all()

    def logs(self) -> str:
        """The tail of every worker log, for error messages."""
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.logdir.glob("*.log")))

    def peak_rss(self) -> dict[str, float]:
        """VmHWM in MB of every worker process and its children (pool processes, embedded beat)."""
        peaks: dict[str, float] = {}
        for process in self.processes:
            for pid in [process.pid, *descendants(process.pid)]:
                mb = vm_hwm_mb(pid)
                if mb is not None:
                    peaks[f"{pid}:{process_name(pid)}"] = mb
        return peaks


def _status_field(pid: int, name: str) -> str | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident set size of a process in MB (Linux VmHWM), or None if it is gone."""
    value = _status_field(pid, "VmHWM")
    if value is None:
        return None
    return int(value.split()[0]) / 1024.0


def process_name(pid: int) -> str:
    """The short command name of a process."""
    return _status_field(pid, "Name") or "?"


def descendants(pid: int) -> list[int]:
    """Every live descendant of a process (by walking /proc parent links)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        ppid = _status_field(int(entry.name), "PPid")
        if ppid is not None and ppid.isdigit():
            parents.setdefault(int(ppid), []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def machine_facts(load_before: tuple[float, float, float]) -> dict[str, object]:
    """What a report says of the machine: cores, Python, platform, and the other work on it during the
    run (1/5/15-minute load averages before and after).
    """
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }

"""Fixtures for tests that run the real thing: PostgreSQL, Redis, Celery worker processes, stand-ins over HTTP.

PostgreSQL and Redis are expected on their standard local ports (override with TEST_POSTGRES_URL and
TEST_REDIS_URL). Each pipeline test gets its own database (cloned from a migrated template) and its
own Redis database number, so tests never see each other's rows or messages.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from pipeline.ledger.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Start at a random database so that two test sessions on one machine rarely share one.
_first_db = random.randrange(1, 16)
_redis_dbs = itertools.cycle([1 + (_first_db + i) % 15 for i in range(15)])


def _sqlalchemy_url(database: str) -> str:
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{database}"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(POSTGRES_URL, autocommit=True)


@pytest.fixture(scope="session")
def ledger_template() -> Iterator[str]:
    """A migrated database that per-test databases are cloned from."""
    name = f"cin7xero_tmpl_{os.getpid()}"
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(_sqlalchemy_url(name))
    from pipeline.db import reset_engines

    reset_engines()
    yield name
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(ledger_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = f"cin7xero_t_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{ledger_template}"')
    yield _sqlalchemy_url(name)
    from pipeline.db import reset_engines

    reset_engines()
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    """An empty Redis database number for one test (broker queues and rate-limit keys)."""
    url = f"{REDIS_BASE}/{next(_redis_dbs)}"
    redis.Redis.from_url(url).flushdb()
    return url


@dataclass
class WorkerPool:
    """Celery worker processes started for a test."""

    env: dict[str, str]
    logdir: Path
    processes: list[subprocess.Popen[bytes]]

    def start(
        self,
        name: str,
        *,
        concurrency: int = 2,
        queues: str = "cin7,mapping,xero,maintenance",
        pool: str = "prefork",
        beat: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start `celery -A pipeline.app worker` (with embedded beat if asked) and wait until it consumes."""
        log = self.logdir / f"{name}.log"
        beat_args = ["-B", "-s", str(self.logdir / f"{name}-beat-schedule")] if beat else []
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "pipeline.app",
                "worker",
                "-Q",
                queues,
                "-c",
                str(concurrency),
                "-P",
                pool,
                "-n",
                f"{name}@%h",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "INFO",
                "-f",
                str(log),
                *beat_args,
            ],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.exists() and " ready." in log.read_text(errors="replace"):
                return process
            if process.poll() is not None:
                raise RuntimeError(f"worker {name} exited: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"worker {name} did not become ready: {log.read_text(errors='replace')[-3000:]}")

    def kill(self, process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Kill a worker and all its children (SIGKILL by default: a crash, not a shutdown)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        """Warm shutdown, then kill whatever is left."""
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 20
        for process in self.processes:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self.kill(process)

    def logs(self) -> str:
        """Every worker log, for failure messages."""
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.logdir.glob("*.log")))

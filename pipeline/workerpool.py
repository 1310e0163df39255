"""Real `celery worker` processes started from Python, for the test suite and the benchmarks.

Each worker is its own process group, so a test can SIGKILL one with its pool children (a crash, not a
shutdown) and a run can always stop what it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# `celery -A pipeline.app` must import the project from its checkout.
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class WorkerPool:
    """Celery worker processes started by one test or benchmark run, with their logs in `logdir`."""

    env: dict[str, str]
    logdir: Path
    processes: list[subprocess.Popen[bytes]]

    def start(
        self,
        name: str,
        *,
        concurrency: int = 2,
        queues: str | None = "cin7,mapping,xero,maintenance",
        pool: str = "prefork",
        beat: bool = False,
        log_level: str = "INFO",
        ready: Callable[[str], bool] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `celery -A pipeline.app worker` (with embedded beat if asked) and wait until it consumes.

        `queues=None` starts it without `-Q`. Readiness is read from the worker's log (its " ready." line,
        logged at INFO); a quieter worker
        needs `ready`, asked with the worker's node name (e.g. a broker ping, which only the caller's
        Celery app can send).
        """
        log = self.logdir / f"{name}.log"
        beat_args = ["-B", "-s", str(self.logdir / f"{name}-beat-schedule")] if beat else []
        process = subprocess.Popen(  # noqa: S603 - our own command line, no outside input
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "pipeline.app",
                "worker",
                # None: no -Q, as an operator might start one (it consumes the app's default queues).
                *(["-Q", queues] if queues is not None else []),
                "-c",
                str(concurrency),
                "-P",
                pool,
                "-n",
                f"{name}@%h",
                "--without-mingle",
                "--without-gossip",
                "-l",
                log_level,
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
        node = f"{name}@{socket.gethostname()}"
        while time.monotonic() < deadline:
            if ready(node) if ready is not None else log.exists() and " ready." in log.read_text(errors="replace"):
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

    def stop_all(self, *, finish_tasks: bool = False) -> None:
        """Shut down, then kill whatever is left after 20 s.

        By default every process of each worker gets SIGTERM (quick: running tasks are cut short, and
        the ledger heals them). `finish_tasks` signals each worker's main process only, which lets its
        pool finish the tasks in hand first (a benchmark's last figures).
        """
        for process in self.processes:
            if process.poll() is None:
                try:
                    if finish_tasks:
                        os.kill(process.pid, signal.SIGTERM)
                    else:
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

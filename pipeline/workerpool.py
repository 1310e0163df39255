"""Real `celery worker` processes started from Python, for the test suite and the benchmarks.

Each worker is its own process group, so a test can SIGKILL one with its pool children (a crash, not a
shutdown) and a run can always stop what it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
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
        queues: str = "cin7,mapping,xero,maintenance",
        pool: str = "prefork",
        beat: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start `celery -A pipeline.app worker` (with embedded beat if asked) and wait until it consumes."""
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

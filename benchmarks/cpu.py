"""CPU seconds used by each part of a run (workers, PostgreSQL, Redis, stand-ins), from /proc.

A throughput figure on one machine says little without knowing who spent the CPU: the pipeline's
workers, the database, the broker, or the stand-ins that play Cin7 and Xero in this same process.
`CpuMeter` reads utime + stime of every process at the start and end of a run and groups them.
It adds cutime + cstime, the CPU of children that a process has reaped: a Celery pool child is
replaced after `worker_max_tasks_per_child` tasks, and PostgreSQL starts a backend per connection,
so a long run's exited processes would otherwise vanish from the figure (a 3000-sale run lost half
the workers' CPU that way). A child alive at the start and reaped before the end counts whole,
start-up included: a small overcount. Linux only; elsewhere it reports nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import descendants

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command, parent pid, CPU seconds) of one process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command is in parentheses and may hold spaces; the fields after it are space-separated.
    command = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    parent = int(fields[1])
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return command, parent, (utime + stime + cutime + cstime) / _TICKS


def _all_processes() -> dict[int, tuple[str, int, float]]:
    found: dict[int, tuple[str, int, float]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                found[int(entry.name)] = stat
    return found


@dataclass
class CpuMeter:
    """CPU seconds by group between `start()` and `stop()`."""

    worker_pids: list[int] = field(default_factory=list)
    _before: dict[int, tuple[str, int, float]] = field(default_factory=dict)

    def start(self, worker_pids: Iterable[int]) -> None:
        """Take the first reading (after the workers have started, so start-up does not count)."""
        self.worker_pids = list(worker_pids)
        self._before = _all_processes()

    def stop(self) -> dict[str, float]:
        """CPU seconds per group since start(): workers, postgres, redis, benchmark process, other."""
        after = _all_processes()
        workers: set[int] = set(self.worker_pids)
        for pid in self.worker_pids:
            workers.update(descendants(pid))
        groups: dict[str, float] = {}
        for pid, (command, _, seconds) in after.items():
            spent = seconds - (self._before.get(pid, (command, 0, 0.0))[2] if pid in self._before else 0.0)
            if spent <= 0:
                continue
            if pid in workers:
                group = "celery workers"
            elif command.startswith("postgres") or command.startswith("postmaster"):
                group = "postgresql"
            elif command.startswith("redis"):
                group = "redis"
            elif pid == os.getpid():
                group = "stand-ins and driver (this process)"
            else:
                group = "other processes"
            groups[group] = groups.get(group, 0.0) + spent
        return dict(sorted(groups.items(), key=lambda item: -item[1]))

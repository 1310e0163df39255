"""`cin7xero` run as an operator runs it: a process of its own, from the repository root."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

from pipeline.workerpool import ROOT


def run_cli(env: Mapping[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`cin7xero ARGS` with exactly the settings `env`, its output captured as text; it may fail."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli.main", *args],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

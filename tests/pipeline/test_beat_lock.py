"""One beat, always: two beats on one Redis, and only the lock holder schedules; kill it, the other takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.conftest import ROOT
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline

SENT = "Sending due task poll-cin7"


def _beat(p: Pipeline, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **p.env, "POLL_INTERVAL_SECONDS": "1"}
    command = [sys.executable, "-m", "celery", "-A", "pipeline.app", "beat", "-l", "INFO", "-f", str(log)]
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _sent(log: Path) -> int:
    return log.read_text(errors="replace").count(SENT) if log.exists() else 0


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_a_second_beat_schedules_nothing_until_the_first_dies(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    p = make_pipeline(sales=2, workers=0)
    first_log, second_log = tmp_path / "beat-1.log", tmp_path / "beat-2.log"
    first = _beat(p, first_log)
    try:
        assert _wait_for(lambda: _sent(first_log) >= 2, 30), first_log.read_text(errors="replace")[-2000:]
        second = _beat(p, second_log)
        try:
            # Both run for a while: only the first, which holds the lock, sends the 1 s poll.
            time.sleep(6)
            assert second.poll() is None and first.poll() is None
            assert _sent(first_log) >= 6
            assert _sent(second_log) == 0, second_log.read_text(errors="replace")[-2000:]

            # The first dies without letting go: its lock lapses (BEAT_LOCK_SECONDS=3) and the second
            # takes over.
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            assert _wait_for(lambda: _sent(second_log) >= 2, 30), second_log.read_text(errors="replace")[-2000:]
        finally:
            second.terminate()
            second.wait(timeout=15)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)


def test_beat_survives_redis_losing_its_lock_and_schedule(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    p = make_pipeline(sales=2, workers=0)
    log = tmp_path / "beat.log"
    beat = _beat(p, log)
    try:
        assert _wait_for(lambda: _sent(log) >= 2, 30), log.read_text(errors="replace")[-2000:]
        # Redis restarted empty: the lock and RedBeat's schedule are gone.
        redis.Redis.from_url(p.env["REDIS_URL"]).flushdb()
        before = _sent(log)

        assert _wait_for(lambda: _sent(log) >= before + 3, 30), log.read_text(errors="replace")[-3000:]
        assert beat.poll() is None, "beat is still running"
        assert "rewriting the schedule" in log.read_text(errors="replace")
    finally:
        beat.terminate()
        beat.wait(timeout=15)

"""Flower, as an operator opens it: basic auth, named tasks from real workers, every queue incl. dead letters."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import requests

from pipeline.deadletters import mirror_dead_letter_queue
from tests.conftest import ROOT
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_flower_shows_named_tasks_and_the_dead_letter_queue_behind_basic_auth(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(sales=60, seed=5)
    port = _free_port()
    flower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "pipeline.app",
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
            "--basic-auth=ops:secret",
        ],
        env={**os.environ, **p.env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(base, timeout=1).status_code == 401:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        assert requests.get(f"{base}/api/workers", timeout=5).status_code == 401
        time.sleep(2)  # Flower subscribes to events before the work starts

        p.poll_and_wait()
        with p.ctx.sessions() as session:
            open_letters = mirror_dead_letter_queue(session, p.ctx.tenant_pk)
        assert open_letters == len(p.dead_reasons()) > 0

        auth = ("ops", "secret")
        queues = requests.get(f"{base}/api/queues/length", auth=auth, timeout=10).json()["active_queues"]
        lengths = {q["name"]: q["messages"] for q in queues}
        # Flower lists the queues its workers consume; nothing consumes dead_letter, so its entries
        # appear as `cin7xero.dead_letter` tasks (sent, never run) carrying the reason.
        assert {"cin7", "mapping", "xero", "maintenance"} <= set(lengths)

        deadline = time.monotonic() + 15
        names: set[str] = set()
        while time.monotonic() < deadline and not {"cin7xero.poll", "cin7xero.write_document"} <= names:
            tasks = requests.get(f"{base}/api/tasks", auth=auth, timeout=10).json()
            names = {str(t.get("name")) for t in tasks.values()}
            time.sleep(0.5)
        # Mapping runs inside fetch_sale; map_document messages are only for re-maps and requeues.
        assert {"cin7xero.poll", "cin7xero.fetch_sale", "cin7xero.write_document"} <= names
        letters = [t for t in tasks.values() if t.get("name") == "cin7xero.dead_letter"]
        # the sweep rebuilds the mirror too, so a letter may appear in more than one sent entry
        letter_ids = {str(t.get("args")).strip("[(").split(",")[0] for t in letters}
        assert len(letter_ids) == open_letters
        reasons = " ".join(str(t.get("args")) for t in letters)
        assert all(number in reasons for number in p.dead_reasons())
    finally:
        os.killpg(flower.pid, signal.SIGTERM)
        flower.wait(timeout=20)

"""Flower, as an operator opens it: basic auth, named tasks from real workers, every queue incl. dead letters."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from pipeline.context import shared_redis
from pipeline.recovery.deadletters import mirror_dead_letter_queue
from pipeline.settings import get_settings
from tests.browser import chromium, run_chromium
from tests.conftest import ROOT
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


AUTH = ("ops", "secret")


@contextmanager
def running_flower(p: Pipeline) -> Iterator[str]:
    """Flower behind basic auth on this pipeline's broker, subscribed to its events; yields its URL."""
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
            f"--basic-auth={AUTH[0]}:{AUTH[1]}",
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
        time.sleep(2)  # Flower subscribes to events before the work starts
        yield base
    finally:
        os.killpg(flower.pid, signal.SIGTERM)
        flower.wait(timeout=20)


def test_flower_shows_named_tasks_and_the_dead_letter_queue_behind_basic_auth(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(sales=60, seed=5)
    with running_flower(p) as base:
        assert requests.get(f"{base}/api/workers", timeout=5).status_code == 401

        p.poll_and_wait()
        with p.ctx.sessions() as session:
            open_letters = mirror_dead_letter_queue(session, p.ctx.tenant_pk)
        assert open_letters == len(p.dead_reasons()) > 0

        queues = requests.get(f"{base}/api/queues/length", auth=AUTH, timeout=10).json()["active_queues"]
        lengths = {q["name"]: q["messages"] for q in queues}
        # Flower lists the queues its workers consume; nothing consumes dead_letter, so its entries
        # appear as `cin7xero.dead_letter` tasks (sent, never run) carrying the reason.
        assert {"cin7", "mapping", "xero", "maintenance"} <= set(lengths)

        deadline = time.monotonic() + 15
        names: set[str] = set()
        while time.monotonic() < deadline and not {"cin7xero.poll", "cin7xero.write_document"} <= names:
            tasks = requests.get(f"{base}/api/tasks", auth=AUTH, timeout=10).json()
            names = {str(t.get("name")) for t in tasks.values()}
            time.sleep(0.5)
        # Mapping runs inside the fetch (a poll's sales ten to a fetch_sales task); map_document
        # messages are only for re-maps and requeues.
        assert {"cin7xero.poll", "cin7xero.write_document"} <= names
        assert {"cin7xero.fetch_sale", "cin7xero.fetch_sales"} & names
        letters = [t for t in tasks.values() if t.get("name") == "cin7xero.dead_letter"]
        # the sweep rebuilds the mirror too, so a letter may appear in more than one sent entry
        letter_ids = {str(t.get("args")).strip("[(").split(",")[0] for t in letters}
        assert len(letter_ids) == open_letters
        reasons = " ".join(str(t.get("args")) for t in letters)
        assert all(number in reasons for number in p.dead_reasons())


def test_flower_shows_each_fetch_tasks_invoices_although_results_are_not_stored(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # task_ignore_result is on and there is no result backend: Flower learns results only from the
    # workers' task-succeeded events, which carry the return value's repr all the same.
    p = make_pipeline(sales=20, seed=5)
    with running_flower(p) as base:
        p.poll_and_wait()

        numbers = {number for number in p.documents() if number and number != "None"}
        results: dict[str, str] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not numbers <= set(results):
            tasks_seen = [
                task
                for name in ("cin7xero.fetch_sale", "cin7xero.fetch_sales")
                for task in requests.get(f"{base}/api/tasks", params={"taskname": name}, auth=AUTH, timeout=10)
                .json()
                .values()
            ]
            results = {}
            for task in tasks_seen:
                if task.get("state") == "SUCCESS" and task.get("result"):
                    for number in numbers:
                        if repr(number) in str(task["result"]):
                            results[number] = str(task["result"])
            time.sleep(0.5)
        assert numbers and numbers <= set(results), sorted(numbers - set(results))
        assert all("'invoices'" in result for result in results.values())


def _mirror_now(p: Pipeline) -> int:
    """Send the mirror now, as its refresh does: a sweep may have sent it before this Flower started."""
    shared_redis(get_settings()).delete(f"cin7xero:dead_letter_mirror:{p.ctx.tenant_pk}:fresh")
    with p.ctx.sessions() as session:
        return mirror_dead_letter_queue(session, p.ctx.tenant_pk)


def _dead_letter_ids(base: str, deadline_seconds: float = 20) -> set[str]:
    """The letter ids of the `cin7xero.dead_letter` entries Flower shows, once it shows any."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        tasks = requests.get(f"{base}/api/tasks", auth=AUTH, timeout=10).json()
        letters = [t for t in tasks.values() if t.get("name") == "cin7xero.dead_letter"]
        if letters or time.monotonic() > deadline:
            return {str(t.get("args")).strip("[(").split(",")[0] for t in letters}
        time.sleep(0.5)


def test_a_restarted_flower_shows_the_dead_letters_again_when_the_mirror_refreshes(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(sales=40, seed=5)
    p.poll_and_wait()
    with running_flower(p) as base:
        open_letters = _mirror_now(p)
        assert open_letters > 0 and len(_dead_letter_ids(base)) == open_letters
    with running_flower(p) as base:
        # A new Flower knows nothing of what was sent before it started...
        assert _dead_letter_ids(base, deadline_seconds=2) == set()
        # ...until the mirror's refresh comes round (its marker expires after MIRROR_REFRESH_SECONDS).
        assert _mirror_now(p) == open_letters
        assert len(_dead_letter_ids(base)) == open_letters


def test_an_operator_sees_the_dead_letters_in_flower_in_chromium_only_with_the_password(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    binary = chromium()
    p = make_pipeline(sales=40, seed=5)
    p.poll_and_wait()
    with running_flower(p) as base:
        _mirror_now(p)
        ids = _dead_letter_ids(base)
        tasks = requests.get(f"{base}/api/tasks", auth=AUTH, timeout=10).json()
        letter = next(uuid for uuid, t in tasks.items() if t.get("name") == "cin7xero.dead_letter")
        number = next(iter(p.dead_reasons()))
        authed = base.replace("http://", f"http://{AUTH[0]}:{AUTH[1]}@")

        refused = run_chromium(binary, tmp_path / "anonymous", "--dump-dom", f"{base}/task/{letter}")
        page = run_chromium(binary, tmp_path / "operator", "--dump-dom", f"{authed}/task/{letter}")
        listing = run_chromium(
            binary, tmp_path / "listing", "--virtual-time-budget=15000", "--dump-dom", f"{authed}/tasks"
        )

    assert ids
    # Without the credential Flower shows nothing of the task.
    assert "cin7xero.dead_letter" not in refused.stdout
    # With it, the dead letter's page names the task and carries its reason.
    assert page.returncode == 0, page.stderr[-2000:]
    assert "cin7xero.dead_letter" in page.stdout
    letter_args = str(tasks[letter].get("args"))
    assert any(n in letter_args for n in p.dead_reasons()) and number
    # The Tasks tab lists the dead letters among the tasks.
    assert "cin7xero.dead_letter" in listing.stdout, listing.stdout[-3000:]

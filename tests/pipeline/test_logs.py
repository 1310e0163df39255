"""LOG_FORMAT=json: a real worker's log is JSON lines naming the task, the tenant and the document."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from pipeline.logs import JsonFormatter, log_context
from tests.pipeline.conftest import Pipeline


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("pipeline.test", logging.WARNING, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_json_line_carries_its_context_and_a_calls_extras() -> None:
    with log_context(task_id="t-1", task_name="cin7xero.fetch_sale", tenant="acme"):
        with log_context(kind="invoice"):
            line = json.loads(JsonFormatter().format(_record('quote " and ünïcode', number="INV-7")))
        outside = json.loads(JsonFormatter().format(_record("after")))

    assert line["message"] == 'quote " and ünïcode' and line["level"] == "WARNING"
    assert {k: line[k] for k in ("task_id", "task_name", "tenant", "kind", "number")} == {
        "task_id": "t-1",
        "task_name": "cin7xero.fetch_sale",
        "tenant": "acme",
        "kind": "invoice",
        "number": "INV-7",
    }
    # Inner contexts end with their block, and nothing leaks past the outer one either.
    assert "kind" not in outside and "task_id" in outside


@pytest.mark.pipeline
def test_a_workers_log_is_json_lines_naming_tasks_tenants_and_documents(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(sales=40, seed=11, workers=1, settings={"LOG_FORMAT": "json"})
    p.poll_and_wait()
    p.workers.stop_all()

    lines = [line for line in (p.workers.logdir / "w0.log").read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is JSON

    assert parsed
    in_tasks = [line for line in parsed if "task_id" in line]
    # A poll's sales go ten to a fetch_sales task.
    assert {line["task_name"] for line in in_tasks} >= {"cin7xero.fetch_sales"}
    assert all(line["tenant"] == p.ctx.tenant_key for line in in_tasks)
    letters = [line for line in parsed if line["message"].startswith("dead letter:")]
    assert letters, "the dataset's hostile sales leave dead letters"
    assert all(line.get("kind") and line.get("number") for line in letters)

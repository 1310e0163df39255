"""Alerts end to end: a flush sent through the broker, run by a real worker, reaches the webhook sink once."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from pipeline.app import TaskName, send
from pipeline.errors import ErrorClass
from pipeline.ledger.models import DeadLetter
from pipeline.operations.alerts import note_problem
from tests.pipeline.conftest import Pipeline
from tests.pipeline.operations.test_alerts import HttpSink

pytestmark = pytest.mark.pipeline


def test_a_worker_flush_delivers_one_alert_for_many_dead_letters(
    make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    with HttpSink() as sink:
        # make_pipeline hands os.environ to the workers.
        monkeypatch.setenv("ALERT_CHANNELS", "log,slack")
        monkeypatch.setenv("ALERT_SLACK_WEBHOOK_URL", sink.url)
        monkeypatch.setenv("ALERT_WINDOW_SECONDS", "600")
        pipeline = make_pipeline(sales=1, workers=1, concurrency=2)
        ctx = pipeline.ctx
        with ctx.sessions() as session, session.begin():
            for n in range(12):
                message = f"SO-{n}: no Xero tax type for Cin7 tax rule 'GST on Imports'"
                session.add(
                    DeadLetter(
                        tenant_id=ctx.tenant_pk, stage="map", error_class=ErrorClass.MAPPING.value, messages=[message]
                    )
                )
                note_problem(session, ctx.tenant_pk, ErrorClass.MAPPING, message)

        for _ in range(3):  # duplicates of the beat's message change nothing
            send(TaskName.FLUSH_ALERTS, ctx.tenant_key)
        deadline = time.monotonic() + 30
        while not sink.bodies and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # room for a wrongly duplicated alert to arrive

        assert len(sink.bodies) == 1, pipeline.workers.logs()
        assert "12 mapping errors" in sink.texts()[0]

"""The writer's drain stays inside a task's time limit: past DRAIN_SECONDS it hands on to a new message."""

from __future__ import annotations

import pytest

import tasks.sync
from pipeline.ledger.models import DocumentState
from pipeline.writer import drain
from tests.pipeline.inprocess import InProcess

pytestmark = pytest.mark.pipeline


def test_a_writer_past_its_drain_time_hands_on_to_a_fresh_message_and_the_next_one_carries_on(
    inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    for args in inproc.messages("cin7xero.fetch_sale"):
        tasks.sync.fetch_sale.run(*args)
    ready = [doc.id for doc in inproc.documents() if doc.state == DocumentState.READY]
    assert ready
    inproc.sent.clear()
    with monkeypatch.context() as patched:
        # As if the drain had run its time already (under Xero's limit a backlog outlasts a task's limit).
        patched.setattr(drain, "DRAIN_SECONDS", -1.0)
        result = tasks.sync.write_document.run(inproc.ctx.tenant_key, None)
    assert result["claimed"] == 0
    continuation = [m for m in inproc.sent if m.task == "cin7xero.write_document"]
    assert [(m.args, m.countdown) for m in continuation] == [((inproc.ctx.tenant_key, None), 0.0)]
    # It let go of the lease: the message it sent drains everything.
    tasks.sync.write_document.run(*continuation[0].args)
    assert all(inproc.document(doc_id).state == DocumentState.SYNCED for doc_id in ready)

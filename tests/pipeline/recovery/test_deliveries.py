"""Poison counting: deliveries that never finish end as a dead letter; waits and finished work do not count.

The task bodies run in this process against the stand-ins, a fresh ledger and Redis, with the broker
replaced by a list. A delivery that "kills its worker" is a BaseException from inside the work: no
except clause in the task sees it, exactly as when the process dies, so only the count taken before
the work is left. Both ways of counting are covered: Redis (production) and the ledger (no Redis).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

import tasks.sync
from pipeline.discovery import fetch
from pipeline.ledger.models import DocumentState, SaleRecord, SaleState
from pipeline.mapping import document
from pipeline.operations.pauses import TenantPaused
from tests.pipeline.inprocess import MAX_ATTEMPTS, InProcess, deliver, die, first_sale

pytestmark = pytest.mark.pipeline


def test_a_sale_whose_fetch_keeps_killing_workers_becomes_a_poison_dead_letter(
    inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    sale_id = first_sale(inproc)
    with monkeypatch.context() as patched:
        patched.setattr(fetch, "read_sale", die)
        for _ in range(MAX_ATTEMPTS):
            assert not deliver(tasks.sync.fetch_sale.run, inproc.ctx.tenant_key, sale_id)
    calls: list[str] = []
    monkeypatch.setattr(fetch, "read_sale", lambda _ctx, sid: calls.append(sid) or ([], None))
    assert deliver(tasks.sync.fetch_sale.run, inproc.ctx.tenant_key, sale_id)

    assert calls == []  # the poison delivery does not try again
    (letter,) = inproc.letters()
    assert (letter.kind, letter.stage, letter.error_class, letter.attempts) == ("sale", "fetch", "poison", 4)
    assert "started 4 times without finishing" in letter.messages[0]
    with inproc.ctx.sessions() as session:
        sale = session.scalar(select(SaleRecord).where(SaleRecord.sale_id == sale_id))
        assert sale is not None and sale.state == SaleState.DEAD
    assert inproc.redis_count("sale", sale_id) == 0


def test_a_finished_fetch_resets_its_sales_count(inproc: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    sale_id = first_sale(inproc)
    with monkeypatch.context() as patched:
        patched.setattr(fetch, "read_sale", die)
        for _ in range(MAX_ATTEMPTS - 1):
            assert not deliver(tasks.sync.fetch_sale.run, inproc.ctx.tenant_key, sale_id)
    assert inproc.redis_count("sale", sale_id) == (MAX_ATTEMPTS - 1 if inproc.uses_redis else 0)
    assert deliver(tasks.sync.fetch_sale.run, inproc.ctx.tenant_key, sale_id)
    assert inproc.redis_count("sale", sale_id) == 0
    assert inproc.letters() == []


def _fetched_document(p: InProcess, monkeypatch: pytest.MonkeyPatch) -> int:
    """Fetch the first sale without mapping it; return its first pending document."""
    fetched = fetch.fetch_sale(p.ctx, first_sale(p))
    assert fetched and fetched[0].needs_map
    return fetched[0].doc_id


def test_a_document_whose_mapping_keeps_killing_workers_becomes_a_poison_dead_letter(
    inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc_id = _fetched_document(inproc, monkeypatch)
    with monkeypatch.context() as patched:
        patched.setattr(document, "map_documents", die)
        for _ in range(MAX_ATTEMPTS):
            assert not deliver(tasks.sync.map_document.run, inproc.ctx.tenant_key, doc_id)
        assert tasks.sync.map_document.run(inproc.ctx.tenant_key, doc_id) is False

    (letter,) = inproc.letters()
    assert (letter.document_id, letter.stage, letter.error_class, letter.attempts) == (doc_id, "map", "poison", 4)
    assert inproc.document(doc_id).state == DocumentState.DEAD
    assert inproc.redis_count("document", doc_id) == 0


def test_deliveries_that_only_waited_for_a_tenant_pause_do_not_count(
    inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc_id = _fetched_document(inproc, monkeypatch)

    def paused(*_args: Any, **_kwargs: Any) -> bool:
        raise TenantPaused("tenant paused (day limit); mapping waits", retry_after=30.0)

    with monkeypatch.context() as patched:
        patched.setattr(document, "map_documents", paused)
        for _ in range(MAX_ATTEMPTS + 3):
            assert tasks.sync.map_document.run(inproc.ctx.tenant_key, doc_id) is False
    assert inproc.letters() == []
    assert inproc.redis_count("document", doc_id) == 0
    assert inproc.document(doc_id).attempts == 0
    assert inproc.document(doc_id).state == DocumentState.PENDING

    # ...while deliveries that died still do, and a finished map resets them.
    with monkeypatch.context() as patched:
        patched.setattr(document, "map_documents", die)
        for _ in range(MAX_ATTEMPTS - 1):
            assert not deliver(tasks.sync.map_document.run, inproc.ctx.tenant_key, doc_id)
    if inproc.uses_redis:
        assert inproc.redis_count("document", doc_id) == MAX_ATTEMPTS - 1
    else:
        assert inproc.document(doc_id).attempts == MAX_ATTEMPTS - 1
    assert tasks.sync.map_document.run(inproc.ctx.tenant_key, doc_id) is True
    assert inproc.redis_count("document", doc_id) == 0
    doc = inproc.document(doc_id)
    assert (doc.state, doc.attempts) == (DocumentState.READY, 0)
    assert inproc.messages("cin7xero.write_document") == [(inproc.ctx.tenant_key, doc_id)]

"""The fetch stage maps in the same task: one message per changed sale, not one per stage per invoice.

In-process tests reach inside the task (failures, pauses, mappings that kill the worker). That an
operator finds each invoice's fetch task in Flower by its number is tested in test_flower.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

import tasks.sync
from pipeline.discovery import fetch
from pipeline.errors import ErrorClass, SyncError
from pipeline.ledger.models import AlertState, DocumentState
from pipeline.mapping import document
from pipeline.operations.pauses import TenantPaused
from pipeline.policy import MAX_COUNTDOWN_SECONDS
from pipeline.ratelimit import RateLimitTimeout
from tests.pipeline.inprocess import MAX_ATTEMPTS, InProcess, WorkerDied, die, first_sale

pytestmark = pytest.mark.pipeline


def _fetch_all(p: InProcess) -> list[dict[str, Any]]:
    return [tasks.sync.fetch_sale.run(*args) for args in p.messages("cin7xero.fetch_sale")]


def test_the_fetch_task_maps_its_invoices_and_names_each_in_its_result(inproc: InProcess) -> None:
    results = _fetch_all(inproc)

    assert inproc.messages("cin7xero.map_document") == []
    # At most one write message per sale; with Redis, one for the tenant until a writer starts.
    writes = len(inproc.messages("cin7xero.write_document"))
    assert writes == (1 if inproc.uses_redis else len(results))
    docs = inproc.documents()
    assert docs and all(doc.state == DocumentState.READY for doc in docs)
    named = {number: state for result in results for number, state in result["invoices"].items()}
    assert named == {doc.document_number: "ready" for doc in docs}
    sale_ids = {str(args[1]) for args in inproc.messages("cin7xero.fetch_sale")}
    assert {result["sale"] for result in results} == sale_ids

    # A second delivery of the same sales finds nothing changed and says so.
    again = tasks.sync.fetch_sale.run(inproc.ctx.tenant_key, first_sale(inproc))
    assert again["invoices"] and set(again["invoices"].values()) == {"ready"}
    assert len(inproc.messages("cin7xero.write_document")) == writes


def test_a_retryable_failure_while_mapping_goes_on_as_a_map_message_with_a_countdown(
    inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_args: Any, **_kwargs: Any) -> bool:
        raise SyncError(ErrorClass.TRANSIENT, "Xero's chart of accounts could not be read", api="xero", retry_after=2)

    monkeypatch.setattr(document, "map_documents", unavailable)
    result = tasks.sync.fetch_sale.run(inproc.ctx.tenant_key, first_sale(inproc))

    assert set(result["invoices"].values()) == {"retry"}
    maps = [m for m in inproc.sent if m.task == "cin7xero.map_document"]
    assert len(maps) == len(result["invoices"])
    assert all(m.countdown is not None and 2 <= m.countdown <= MAX_COUNTDOWN_SECONDS for m in maps)
    assert inproc.messages("cin7xero.write_document") == []
    assert inproc.letters() == []
    assert all(doc.state == DocumentState.PENDING for doc in inproc.documents())


@pytest.mark.parametrize(("pause", "sends"), [(30.0, True), (3600.0, False)], ids=["short", "long"])
def test_a_tenant_pause_while_mapping_waits_without_counting(
    inproc: InProcess, monkeypatch: pytest.MonkeyPatch, pause: float, sends: bool
) -> None:
    def paused(*_args: Any, **_kwargs: Any) -> bool:
        raise TenantPaused("tenant paused (day limit); mapping waits", retry_after=pause)

    monkeypatch.setattr(document, "map_documents", paused)
    sale_id = first_sale(inproc)
    for _ in range(MAX_ATTEMPTS + 2):
        result = tasks.sync.fetch_sale.run(inproc.ctx.tenant_key, sale_id)
        assert set(result["invoices"].values()) == {"paused"}

    maps = [m for m in inproc.sent if m.task == "cin7xero.map_document"]
    # A short pause is a countdown; a long one waits in the ledger for the sweep.
    assert bool(maps) is sends
    assert all(m.countdown == pause for m in maps)
    assert inproc.letters() == []
    for doc in inproc.documents():
        if doc.state == DocumentState.PENDING:
            assert doc.attempts == 0
            assert inproc.redis_count("document", doc.id) == 0


def test_a_mapping_that_keeps_killing_the_fetch_worker_becomes_a_poison_dead_letter(
    inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    sale_id = first_sale(inproc)
    died = 0
    with monkeypatch.context() as patched:
        patched.setattr(document, "map_documents", die)
        while True:
            try:
                result = tasks.sync.fetch_sale.run(inproc.ctx.tenant_key, sale_id)
                break
            except WorkerDied:
                died += 1
                assert died <= MAX_ATTEMPTS + 1, "the redelivered fetch never gave up on the document"

    # With Redis a first delivery does not count documents (it cannot be poison yet): one more death.
    assert died == MAX_ATTEMPTS + (1 if inproc.uses_redis else 0)
    assert set(result["invoices"].values()) == {"poison"}
    letters = inproc.letters()
    assert letters and {(letter.stage, letter.error_class) for letter in letters} == {("map", "poison")}
    assert all(doc.state == DocumentState.DEAD for doc in inproc.documents() if doc.sale_id == sale_id)
    assert inproc.redis_count("sale", sale_id) == 0
    # The poison delivery finished: the next one finds nothing to do.
    again = tasks.sync.fetch_sale.run(inproc.ctx.tenant_key, sale_id)
    assert set(again["invoices"].values()) == {"dead"}


def test_an_unknown_cin7_status_is_recorded_and_alerted_never_skipped_in_silence(inproc: InProcess) -> None:
    sale_id = first_sale(inproc)
    sale = inproc.cin7.sale(sale_id)
    sale["Invoices"][0]["Status"] = "CREDITED"
    inproc.cin7.put_sale(sale)

    result = tasks.sync.fetch_sale.run(inproc.ctx.tenant_key, sale_id)

    number = sale["Invoices"][0]["InvoiceNumber"]
    assert result["invoices"][number] == "ignored"
    doc = next(d for d in inproc.documents() if d.document_number == number)
    assert doc.state == DocumentState.IGNORED and doc.cin7_status == "CREDITED"
    assert doc.last_error == "unknown Cin7 status 'CREDITED': not sent to Xero"
    with inproc.ctx.sessions() as session:
        alert = session.scalar(select(AlertState).where(AlertState.error_class == ErrorClass.MAPPING.value))
    assert alert is not None and alert.pending_count == 1
    assert any("unknown Cin7 status 'CREDITED'" in str(example) for example in alert.examples or [])


def _sale_ids(p: InProcess) -> list[str]:
    return [str(args[1]) for args in p.messages("cin7xero.fetch_sale")]


def test_a_group_of_sales_is_fetched_and_mapped_in_one_task_each_sale_named_in_its_result(
    inproc: InProcess,
) -> None:
    sale_ids = _sale_ids(inproc)
    inproc.sent.clear()
    result = tasks.sync.fetch_sales.run(inproc.ctx.tenant_key, sale_ids)

    if not inproc.uses_redis:
        # Without Redis to count a group's deliveries, the group goes on one sale to a message.
        assert result["sales"] == dict.fromkeys(sale_ids, "sent on alone")
        assert _sale_ids(inproc) == sale_ids
        return
    assert result["sales"] == dict.fromkeys(sale_ids, "fetched")
    numbers = {doc.document_number for doc in inproc.documents() if doc.kind == "invoice"}
    assert numbers and numbers <= set(result["invoices"])
    assert set(result["invoices"].values()) == {"ready"}
    assert all(doc.state == DocumentState.READY for doc in inproc.documents() if doc.kind == "invoice")
    assert inproc.messages("cin7xero.fetch_sale") == []
    assert all(inproc.redis_count("sale", sale_id) == 0 for sale_id in sale_ids)


def test_a_group_delivered_again_goes_on_one_sale_to_a_message(
    inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not inproc.uses_redis:
        pytest.skip("without Redis a group always goes on one sale to a message (previous test)")
    sale_ids = _sale_ids(inproc)
    inproc.sent.clear()
    with monkeypatch.context() as patched:
        # The third sale kills the worker: the first two were fetched, the group never finished.
        calls: list[str] = []

        def third_dies(ctx: Any, sale_id: str, **kwargs: Any) -> Any:
            calls.append(sale_id)
            if len(calls) == 3:
                raise WorkerDied
            return real_read_sale(ctx, sale_id, **kwargs)

        real_read_sale = fetch.read_sale
        patched.setattr(fetch, "read_sale", third_dies)
        with pytest.raises(WorkerDied):
            tasks.sync.fetch_sales.run(inproc.ctx.tenant_key, sale_ids)

    again = tasks.sync.fetch_sales.run(inproc.ctx.tenant_key, sale_ids)

    assert again["sales"] == dict.fromkeys(sale_ids, "sent on alone")
    assert _sale_ids(inproc) == sale_ids
    # The sale that died keeps its count for its own message; the ones that finished do not.
    assert inproc.redis_count("sale", sale_ids[2]) == 1
    assert inproc.redis_count("sale", sale_ids[0]) == 0


def test_a_group_hands_its_sales_on_alone_when_cin7s_minute_has_no_slot_free(
    inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not inproc.uses_redis:
        pytest.skip("only a group counted in Redis reads without waiting")
    sale_ids = _sale_ids(inproc)
    inproc.sent.clear()
    waits: list[bool] = []

    def budget_spent_after_two(ctx: Any, sale_id: str, *, wait: bool = True) -> Any:
        waits.append(wait)
        if len(waits) > 2:
            raise RateLimitTimeout("cin7: no slot within 0s")
        return real_read_sale(ctx, sale_id, wait=wait)

    real_read_sale = fetch.read_sale
    monkeypatch.setattr(fetch, "read_sale", budget_spent_after_two)
    result = tasks.sync.fetch_sales.run(inproc.ctx.tenant_key, sale_ids)

    assert waits == [False, False, False]
    assert result["sales"] == {
        **dict.fromkeys(sale_ids[:2], "fetched"),
        **dict.fromkeys(sale_ids[2:], "sent on alone (Cin7's minute is busy)"),
    }
    fetched = {doc.document_number for doc in inproc.documents() if doc.sale_id in {s.lower() for s in sale_ids[:2]}}
    assert fetched and set(result["invoices"]) == fetched
    assert _sale_ids(inproc) == sale_ids[2:]
    # Nothing was read for them: no count, no attempt, still waiting for their fetch.
    assert all(inproc.redis_count("sale", sale_id) == 0 for sale_id in sale_ids)

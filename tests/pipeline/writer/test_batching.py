"""Batched Xero writes: partial failures, a lost response, and batches split to fit Xero's size cap."""

from __future__ import annotations

import copy
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from xero_python.api_client.serializer import serialize

from mappings import Cin7Customer, Cin7Sale, OrgReference, canonical_json, load_rules, map_invoice
from pipeline.ledger.models import DocumentState, SyncDocument
from pipeline.standins.generator import format_timestamp, generate
from pipeline.writer.batches import split_by_size
from pipeline.xero.sdk import to_sdk
from tests.pipeline.conftest import Pipeline

# No Xero to read reference data from: only the rounding line needs an account.
ROUNDING_ONLY = OrgReference(rounding_account="860")

pytestmark = pytest.mark.pipeline

# The stand-in answers from localhost faster than mapping makes rows ready; real Xero takes about
# half a second a call. This much latency per call lets ready rows gather the way they do in
# production, so that batches are full rather than a handful each.
XERO_LATENCY = {"latency_seconds": 0.4}


@dataclass
class InvoiceWrite:
    """One PUT/POST /Invoices request as the Xero stand-in received it."""

    method: str
    elements: int
    body_bytes: int
    numbers: tuple[str, ...] = ()


def spy_on_invoice_writes(p: Pipeline) -> list[InvoiceWrite]:
    """Record every invoice write request (method, element count, body size) the stand-in handles."""
    writes: list[InvoiceWrite] = []
    original = p.xero._write_invoices

    def recording(request: Any) -> Any:
        try:
            invoices = json.loads(request.body or b"{}").get("Invoices") or []
        except (ValueError, AttributeError):
            invoices = []
        numbers = tuple(str(i.get("InvoiceNumber")) for i in invoices if isinstance(i, dict))
        writes.append(InvoiceWrite(request.method, len(invoices), len(request.body), numbers))
        return original(request)

    # The stand-in looks its handlers up on the instance per request, so this sees every call.
    p.xero._write_invoices = recording  # type: ignore[method-assign]
    return writes


def _numbers(p: Pipeline, outcome: str) -> list[str]:
    return [e.invoice_number for e in p.dataset.expectations if e.outcome == outcome]


def _xero_count_by_number(p: Pipeline) -> dict[str, int]:
    counts: dict[str, int] = {}
    for invoice in p.xero.invoices():
        if invoice["Type"] == "ACCREC":
            counts[str(invoice["InvoiceNumber"])] = counts.get(str(invoice["InvoiceNumber"]), 0) + 1
    return counts


def test_a_rejected_invoice_is_dead_lettered_alone_while_the_rest_of_its_batch_lands(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(sales=120, seed=21)
    p.xero.set_faults(**XERO_LATENCY)
    writes = spy_on_invoice_writes(p)

    p.poll_and_wait()

    rejected = [e for e in p.dataset.expectations if e.outcome == "dead_xero"]
    assert rejected, "the hostile data always holds JPY invoices"
    verification = p.verify()
    assert verification.ok, verification.problems
    reasons = p.dead_reasons()
    for expectation in rejected:
        messages = reasons[expectation.invoice_number]
        text = " ".join(messages).lower()
        # Xero's own message for this element, and only this element's.
        assert "jpy" in text or "lock date" in text, messages
        others = set(_numbers(p, "synced")) | {e.invoice_number for e in rejected if e is not expectation}
        assert not any(number in text for number in {n.lower() for n in others}), messages
    documents = p.documents()
    assert all(documents[e.invoice_number].state == DocumentState.DEAD for e in rejected)
    assert all(documents[n].state == DocumentState.SYNCED for n in _numbers(p, "synced"))
    # Each rejected invoice went to Xero inside a batch whose other invoices landed from that same call.
    creates = [w for w in writes if w.method == "PUT"]
    assert sum(w.elements for w in creates) >= len(_numbers(p, "synced")) + len(rejected)
    synced = set(_numbers(p, "synced"))
    for expectation in rejected:
        carrying = [w for w in creates if expectation.invoice_number in w.numbers]
        assert carrying, f"{expectation.invoice_number} never reached Xero"
        assert any(synced & set(w.numbers) for w in carrying), [w.numbers for w in carrying]
    assert len(creates) < len(synced) / 4, [w.elements for w in creates]


def _clone_sales_for_known_customers(p: Pipeline, count: int) -> list[str]:
    """Put `count` new single-invoice sales into Cin7 for customers already synced; their invoice numbers."""
    now = datetime.now(UTC)
    sources = [
        e
        for e in p.dataset.expectations
        if e.outcome == "synced"
        and len(p.cin7.sale(e.sale_id)["Invoices"]) == 1
        # A clone would share the source's Cin7 payment ids and credit its invoice: unsettled sources only.
        and e.amount_paid == 0
        and not p.cin7.sale(e.sale_id)["CreditNotes"]
    ][:count]
    numbers: list[str] = []
    for index, expectation in enumerate(sources, start=1):
        sale = copy.deepcopy(p.cin7.sale(expectation.sale_id))
        sale["ID"] = str(uuid.uuid4())
        sale["LastModifiedOn"] = format_timestamp(now)
        invoice = sale["Invoices"][0]
        invoice["TaskID"] = str(uuid.uuid4())
        invoice["InvoiceNumber"] = f"INV-LOST-{index:03d}"
        sale["Order"]["SaleOrderNumber"] = f"SO-LOST-{index:03d}"
        p.cin7.put_sale(sale)
        numbers.append(invoice["InvoiceNumber"])
    return numbers


def test_a_batch_whose_response_was_lost_lands_every_invoice_exactly_once(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(sales=40, seed=23)
    p.poll_and_wait()
    # New orders from customers Xero already knows: the next write is a pure invoice batch.
    numbers = _clone_sales_for_known_customers(p, 12)
    writes = spy_on_invoice_writes(p)
    before = p.xero.stats()["by_endpoint"]
    p.xero.set_faults(drop_response_after_commit_next=1)

    p.poll_and_wait()

    after = p.xero.stats()
    assert after["dropped_responses"] == 1
    # No contact was written in this round, so the write whose response was lost is the first
    # invoice batch (created in Xero, answer never received).
    for endpoint in ("PUT /Contacts", "POST /Contacts"):
        assert after["by_endpoint"].get(endpoint, 0) == before.get(endpoint, 0)
    assert writes[0].method == "PUT" and writes[0].elements > 1
    in_xero = _xero_count_by_number(p)
    assert {n: in_xero.get(n, 0) for n in numbers} == {n: 1 for n in numbers}
    documents = p.documents()
    assert all(documents[n].state == DocumentState.SYNCED for n in numbers)
    assert not set(numbers) & set(p.dead_reasons())
    assert p.verify().ok


def test_a_batch_larger_than_xeros_size_cap_is_split_and_every_invoice_lands_once(
    make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 8000
    # Read by make_pipeline from this process's environment when it starts the workers.
    monkeypatch.setenv("XERO_MAX_REQUEST_BYTES", str(cap))
    p = make_pipeline(sales=60, seed=25)
    p.xero.set_faults(**XERO_LATENCY)
    writes = spy_on_invoice_writes(p)

    p.poll_and_wait()

    verification = p.verify()
    assert verification.ok, verification.problems
    creates = [w for w in writes if w.method == "PUT"]
    sent = sum(w.elements for w in creates)
    expected = _numbers(p, "synced")
    assert sent >= len(expected)
    in_xero = _xero_count_by_number(p)
    assert all(in_xero.get(n) == 1 for n in expected)
    # More calls than 50-per-batch would need, each near the cap: a batch of 50 would be six times
    # it. The split measures canonical JSON, the SDK sends up to ~1.35x that (see the xfail below).
    assert len(creates) > math.ceil(sent / 50)
    assert max(w.body_bytes for w in creates) <= cap * 1.4, [w.body_bytes for w in creates]
    assert max(w.elements for w in creates) < 50


def _canonical_size(payload: dict[str, Any]) -> int:
    return len(canonical_json(payload).encode()) + 1


def _doc(number: int) -> SyncDocument:
    return SyncDocument(id=number, document_number=f"INV-{number:05d}")


def _payload(size: int) -> dict[str, Any]:
    """A payload whose canonical JSON is exactly `size` bytes."""
    base = len(canonical_json({"X": ""}).encode())
    return {"X": "a" * (size - base)}


def test_split_by_size_keeps_order_and_every_chunk_under_the_cap() -> None:
    items = [(_doc(i), _payload(size)) for i, size in enumerate([300, 300, 300, 500, 100, 999, 1])]

    chunks = split_by_size(items, 1000, measure=_canonical_size)

    assert [item for chunk in chunks for item in chunk] == items
    for chunk in chunks:
        # Each element costs its JSON plus one separator byte.
        assert sum(len(canonical_json(p).encode()) + 1 for _, p in chunk) <= 1000
    assert [len(chunk) for chunk in chunks] == [3, 2, 1, 1]


def test_split_by_size_sends_an_element_larger_than_the_cap_alone() -> None:
    items = [(_doc(1), _payload(100)), (_doc(2), _payload(5000)), (_doc(3), _payload(100))]

    chunks = split_by_size(items, 1000, measure=_canonical_size)

    assert [[d.id for d, _ in chunk] for chunk in chunks] == [[1], [2], [3]]


def test_split_by_size_keeps_a_batch_that_fits_whole_and_returns_nothing_for_nothing() -> None:
    items = [(_doc(i), _payload(100)) for i in range(50)]

    assert split_by_size(items, 3_000_000) == [items]
    assert split_by_size([], 1000) == []


def _realistic_payloads(count: int) -> list[dict[str, Any]]:
    dataset = generate(3, count, now=datetime.now(UTC), hostile=False)
    customers = {c["ID"]: c for c in dataset.customers}
    rules = load_rules(None)
    payloads: list[dict[str, Any]] = []
    for raw in dataset.sales:
        sale = Cin7Sale.model_validate(json.loads(json.dumps(raw, default=str)))
        customer = Cin7Customer.model_validate(json.loads(json.dumps(customers[raw["CustomerID"]], default=str)))
        for invoice in sale.invoices:
            if str(invoice.status).upper() in ("AUTHORISED", "PAID"):
                payload = map_invoice(sale, invoice, customer=customer, rules=rules, reference=ROUNDING_ONLY).to_json()
                payloads.append({**payload, "Contact": {"ContactID": str(uuid.UUID(int=len(payloads)))}})
    return payloads


def test_split_chunks_stay_under_the_cap_as_the_sdk_sends_them() -> None:
    cap = 8000
    items = [(_doc(i), p) for i, p in enumerate(_realistic_payloads(60))]

    chunks = split_by_size(items, cap)

    sizes = [len(json.dumps(serialize(to_sdk("Invoices", {"Invoices": [p for _, p in c]}))).encode()) for c in chunks]
    assert max(sizes) <= cap, sizes

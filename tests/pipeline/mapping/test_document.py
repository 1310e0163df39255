"""Mapping a sale's documents together: one transaction, and no second look where none is needed.

A fetch maps every changed document of its sale at once, from the sale it has just parsed. A payment
mapped with its invoice waits for it; no writer can take that invoice before the mapping commits, so
the payment needs no second look. A payment whose invoice was mapped earlier does get one: the
invoice's write may have committed in between. What a write wakes is mapped by the writer itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, update

import tasks.sync
from pipeline.ledger.models import DocumentState, SyncDocument
from pipeline.mapping import document
from tests.pipeline.inprocess import InProcess

pytestmark = pytest.mark.pipeline


@contextmanager
def _commits(p: InProcess) -> Iterator[list[int]]:
    """Count the ledger commits made inside the block."""
    counted = [0]
    engine = p.ctx.sessions.kw["bind"]

    def commit(*_: object) -> None:
        counted[0] += 1

    event.listen(engine, "commit", commit)
    try:
        yield counted
    finally:
        event.remove(engine, "commit", commit)


def _sale_with_a_payment(p: InProcess) -> tuple[str, SyncDocument, SyncDocument]:
    """The last discovered sale, paid in full in Cin7 and fetched: (sale id, its invoice, its payment)."""
    sale_id = str(p.messages("cin7xero.fetch_sale")[-1][1])
    sale = p.cin7.sale(sale_id)
    (invoice,) = sale["Invoices"]
    total = str(invoice["Total"])
    invoice.update(Status="PAID", Paid=total)
    invoice["Payments"] = [
        {
            "ID": str(uuid.uuid4()),
            "Reference": "EFT 1",
            "Amount": total,
            "DatePaid": invoice["InvoiceDate"],
            "Account": "090",
            "CurrencyRate": "1",
        }
    ]
    p.cin7.put_sale(sale)
    tasks.sync.fetch_sale.run(p.ctx.tenant_key, sale_id)
    docs = [d for d in p.documents() if d.sale_id == sale_id.lower()]
    return (
        sale_id,
        next(d for d in docs if d.kind == "invoice"),
        next(d for d in docs if d.kind == "payment"),
    )


def test_a_sales_invoice_and_payment_are_mapped_in_one_transaction_and_the_writer_maps_the_woken_payment(
    inproc: InProcess,
) -> None:
    first, second = (str(args[1]) for args in inproc.messages("cin7xero.fetch_sale")[:2])
    # The first mapping in a process reads the tenant's reference data; the next ones have it.
    tasks.sync.fetch_sale.run(inproc.ctx.tenant_key, first)
    with _commits(inproc) as commits:
        tasks.sync.fetch_sale.run(inproc.ctx.tenant_key, second)
    # The fetch's own transaction and the mapping's (without Redis, delivery counts are ledger writes too).
    if inproc.uses_redis:
        assert commits[0] == 2

    _, invoice, payment = _sale_with_a_payment(inproc)
    assert inproc.document(invoice.id).state == DocumentState.READY
    assert inproc.document(payment.id).state == DocumentState.WAITING
    assert inproc.messages("cin7xero.map_document") == []

    inproc.sent.clear()
    tasks.sync.write_document.run(inproc.ctx.tenant_key, invoice.id)
    assert inproc.document(invoice.id).state == DocumentState.SYNCED
    # The write woke the payment and mapped it in the same task: ready, and a writer asked for, no map message.
    assert inproc.document(payment.id).state == DocumentState.READY
    assert inproc.messages("cin7xero.map_document") == []
    assert inproc.messages("cin7xero.write_document")

    tasks.sync.write_document.run(inproc.ctx.tenant_key, payment.id)
    assert inproc.document(payment.id).state == DocumentState.SYNCED


def test_a_payment_mapped_after_its_invoice_looks_again_once_it_has_committed_its_wait(inproc: InProcess) -> None:
    _, invoice, payment = _sale_with_a_payment(inproc)
    # As if the invoice had been mapped by an earlier fetch and the payment were new: mapped alone.
    with inproc.ctx.sessions() as session, session.begin():
        session.execute(update(SyncDocument).where(SyncDocument.id == payment.id).values(state=DocumentState.PENDING))
    with _commits(inproc) as commits:
        settled = document.map_documents(inproc.ctx, [payment.id])
    assert settled == {payment.id: DocumentState.WAITING}
    # The mapping, then the second look (the invoice was not its to hold back from a writer).
    assert commits[0] == 2
    assert inproc.messages("cin7xero.map_document") == []

    # The invoice's write commits between the payment's read and its WAITING: the second look finds it.
    with inproc.ctx.sessions() as session, session.begin():
        session.execute(update(SyncDocument).where(SyncDocument.id == payment.id).values(state=DocumentState.PENDING))
    real_unmet = document.dependencies.unmet

    def unmet_then_invoice_written(*args: object, **kwargs: object) -> document.dependencies.Waits:
        waits = real_unmet(*args, **kwargs)  # type: ignore[arg-type]
        if waits.reason is not None and not getattr(unmet_then_invoice_written, "wrote", False):
            unmet_then_invoice_written.wrote = True  # type: ignore[attr-defined]
            tasks.sync.write_document.run(inproc.ctx.tenant_key, invoice.id)
        return waits

    inproc.sent.clear()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(document.dependencies, "unmet", unmet_then_invoice_written)
        settled = document.map_documents(inproc.ctx, [payment.id])
    assert inproc.document(invoice.id).state == DocumentState.SYNCED
    assert settled == {payment.id: DocumentState.WAITING}
    # Woken by its own second look, since the invoice's writer found nothing waiting to wake.
    assert inproc.document(payment.id).state == DocumentState.PENDING
    assert inproc.messages("cin7xero.map_document") == [(inproc.ctx.tenant_key, payment.id)]

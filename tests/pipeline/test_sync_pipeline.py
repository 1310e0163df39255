"""The pipeline end to end: real worker processes, Redis, PostgreSQL, and stand-ins over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests

from pipeline.ledger.models import DocumentState
from pipeline.standins.generator import edit_invoice, void_invoice
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline


def _expected(p: Pipeline, outcome: str) -> list[str]:
    return [e.invoice_number for e in p.dataset.expectations if e.outcome == outcome]


def test_every_good_sale_becomes_exactly_one_invoice_with_cin7_totals(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(sales=80, seed=5, workers=2)
    counts = p.poll_and_wait()

    verification = p.verify()
    assert verification.ok, verification.problems
    synced = _expected(p, "synced")
    assert counts.get(DocumentState.SYNCED, "invoice") == len(synced)
    in_xero = [i for i in p.xero.invoices() if i["Type"] == "ACCREC"]
    assert sorted(str(i["InvoiceNumber"]) for i in in_xero) == sorted(synced)
    for invoice in in_xero:
        expectation = next(e for e in p.dataset.expectations if e.invoice_number == invoice["InvoiceNumber"])
        assert Decimal(str(invoice["Total"])) == expectation.total
        assert Decimal(str(invoice["TotalTax"])) == expectation.total_tax
        assert Decimal(str(invoice["SubTotal"])) == expectation.subtotal


def test_rejected_invoices_are_dead_letters_with_the_reason(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(sales=80, seed=5)
    p.poll_and_wait()

    reasons = p.dead_reasons()
    mapping = [e for e in p.dataset.expectations if e.outcome == "dead_mapping"]
    rejected_by_xero = [e for e in p.dataset.expectations if e.outcome == "dead_xero"]
    assert mapping and rejected_by_xero
    for expectation in mapping:
        text = " ".join(reasons[expectation.invoice_number])
        assert any(
            reason in text
            for reason in ("Zero Rated Imports", "'999'", "is 0% but maps to Xero tax type OUTPUT at 10%")
        ), text
    for expectation in rejected_by_xero:
        text = " ".join(reasons[expectation.invoice_number]).lower()
        # Xero's own validation message, verbatim
        assert "jpy" in text or "lock date" in text, text
    documents = p.documents()
    assert all(documents[e.invoice_number].state == DocumentState.DEAD for e in mapping + rejected_by_xero)
    # Dated before Xero's lock date: never sent, no dead letter, the reason on the row.
    locked = [e for e in p.dataset.expectations if e.outcome == "locked"]
    assert locked
    for expectation in locked:
        row = documents[expectation.invoice_number]
        assert row.state == DocumentState.LOCKED and "lock date 2020-06-30" in (row.last_error or "")
        assert expectation.invoice_number not in reasons


def test_one_contact_per_customer_and_name_clashes_get_a_readable_variant(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(sales=80, seed=5)
    p.poll_and_wait()

    contacts = p.xero.contacts()
    numbers = [str(c.get("ContactNumber") or "").lower() for c in contacts if c.get("ContactNumber")]
    assert len(numbers) == len(set(numbers))
    smiths = [c for c in contacts if str(c["Name"]).startswith("Smith Trading")]
    customers_named_smith = {c["ID"] for c in p.dataset.customers if c["Name"].strip() == "Smith Trading"}
    synced_customers = {e.customer_id for e in p.dataset.expectations if e.outcome == "synced"}
    assert len(smiths) == len(customers_named_smith & synced_customers)
    if len(smiths) == 2:
        names = sorted(str(c["Name"]) for c in smiths)
        assert names[0] == "Smith Trading" and names[1].startswith("Smith Trading (")
    # Never a contact search per order: one bulk read of Xero's contacts on the first run.
    assert p.xero.stats()["by_endpoint"].get("GET /Contacts", 0) <= 2
    # the archived contact with a customer's exact name was never adopted
    archived = [c for c in contacts if c.get("ContactStatus") == "ARCHIVED"]
    assert archived and all(not c.get("ContactNumber") for c in archived)


def test_the_same_sync_twice_creates_and_updates_nothing(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(sales=40, seed=8)
    first = p.poll_and_wait()
    writes = p.xero_writes()
    invoices = len(p.xero.invoices())

    second = p.poll_and_wait()

    assert p.xero_writes() == writes
    assert len(p.xero.invoices()) == invoices
    assert second.documents == first.documents


def test_a_cin7_edit_updates_and_a_void_voids_the_xero_invoice(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(sales=40, seed=9)
    p.poll_and_wait()
    docs = p.documents()
    candidates = [
        e
        for e in p.dataset.expectations
        if e.outcome == "synced"
        and docs[e.invoice_number].xero_status == "AUTHORISED"
        and len(p.cin7.sale(e.sale_id)["Invoices"]) == 1
        # Cin7 lets only an invoice without payments or credit notes be edited or voided.
        and not p.cin7.sale(e.sale_id)["Invoices"][0]["Payments"]
        and not p.cin7.sale(e.sale_id)["CreditNotes"]
    ]
    edited, voided, paid = candidates[0], candidates[1], candidates[2]
    now = datetime.now(UTC)
    p.cin7.put_sale(edit_invoice(p.cin7.sale(edited.sale_id), edited.task_id, now=now, quantity_delta=3))
    p.cin7.put_sale(void_invoice(p.cin7.sale(voided.sale_id), voided.task_id, now=now))
    paid_id = docs[paid.invoice_number].xero_id
    requests.post(f"{p.xero.url}/_standin/invoices/{paid_id}/pay", timeout=10).raise_for_status()
    p.cin7.put_sale(edit_invoice(p.cin7.sale(paid.sale_id), paid.task_id, now=now, quantity_delta=1))

    p.poll_and_wait()

    by_number = {str(i["InvoiceNumber"]): i for i in p.xero.invoices()}
    new_total = next(i for i in p.cin7.sale(edited.sale_id)["Invoices"])["Total"]
    assert Decimal(str(by_number[edited.invoice_number]["Total"])) == Decimal(str(new_total))
    assert Decimal(str(new_total)) != edited.total
    assert by_number[voided.invoice_number]["Status"] == "VOIDED"
    assert by_number[paid.invoice_number]["Status"] == "PAID"
    assert Decimal(str(by_number[paid.invoice_number]["Total"])) == paid.total  # never modified
    after = p.documents()
    assert after[edited.invoice_number].state == DocumentState.SYNCED
    assert after[voided.invoice_number].state == DocumentState.VOIDED
    assert after[paid.invoice_number].state == DocumentState.CONFLICT
    assert p.verify(conflicts={paid.invoice_number}).ok

"""Suppliers and purchase bills end to end: real workers, real queues, the Cin7 and Xero stand-ins over HTTP."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pipeline.ledger.models import ContactLink, DocumentState
from pipeline.reconcile.run import run_reconciliation
from pipeline.recovery.deadletters import list_dead_letters
from pipeline.standins.generator import generate, generate_purchases, with_purchases
from pipeline.standins.generator.purchase_documents import make_purchase_credit_note
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline


def _links(p: Pipeline) -> dict[str, str]:
    with p.ctx.sessions() as session:
        return {link.cin7_customer_id: link.xero_contact_id for link in session.scalars(select(ContactLink))}


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def test_suppliers_become_one_contact_each_and_bills_reach_xero_once_with_cin7_totals(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    now = datetime.now(UTC)
    sales = generate(41, 20, now=now, hostile=False)
    purchases = generate_purchases(41, 30, now=now, customers=sales.customers)
    p = make_pipeline(dataset=with_purchases(sales, purchases), workers=2, settings={"SYNC_PURCHASES": "true"})

    counts = p.poll_and_wait()

    synced = [b for b in purchases.bills if b.outcome == "synced"]
    assert synced and any(b.outcome == "ignored" for b in purchases.bills), "the dataset covers both outcomes"
    assert counts.get(DocumentState.SYNCED, "bill") == len(synced)
    with p.ctx.sessions() as session:
        letters = list_dead_letters(session, p.ctx.tenant_pk)
    assert not letters, [(letter.kind, letter.document_number, letter.messages) for letter in letters]
    links = _links(p)
    bills = [i for i in p.xero.invoices() if i["Type"] == "ACCPAY"]
    # Xero keeps bill numbers unique per nothing: count by (supplier's contact, number).
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for bill in bills:
        by_key.setdefault((bill["Contact"]["ContactID"], bill["InvoiceNumber"]), []).append(bill)
    assert len(bills) == len(synced)
    for expected in synced:
        found = by_key.get((links[expected.supplier_id], expected.invoice_number), [])
        assert len(found) == 1, (expected.invoice_number, found)
        bill = found[0]
        assert (_money(bill["SubTotal"]), _money(bill["TotalTax"]), _money(bill["Total"])) == (
            expected.subtotal,
            expected.total_tax,
            expected.total,
        ), expected.invoice_number
        assert bill["CurrencyCode"] == expected.currency
        assert str(bill["DateString"])[:10] == expected.date.isoformat()

    # Each supplier payment once, on its bill, and the bill's balance as Cin7's.
    bill_ids = {(row.sale_id, row.task_id): str(row.xero_id).lower() for row in p.rows("bill")}
    live = [pay for pay in p.xero.payments() if pay["Status"] != "DELETED"]
    supplier_payments = [e for e in purchases.payments if e.kind == "payment"]
    assert supplier_payments and counts.get(DocumentState.SYNCED, "bill_payment") == len(supplier_payments)
    for payment in supplier_payments:
        bill_id = bill_ids[(payment.purchase_id, payment.document_task_id)]
        on_bill = [pay for pay in live if str((pay.get("Invoice") or {}).get("InvoiceID")).lower() == bill_id]
        assert [_money(pay["Amount"]) for pay in on_bill].count(payment.amount) >= 1, payment
    in_xero = {str(i["InvoiceID"]).lower(): i for i in bills}
    for expected in synced:
        bill = in_xero[bill_ids[(expected.purchase_id, expected.task_id)]]
        assert (_money(bill["AmountPaid"]), _money(bill["AmountDue"]), bill["Status"]) == (
            expected.amount_paid,
            expected.amount_due,
            expected.status,
        ), expected.invoice_number

    # Supplier credit notes once, as ACCPAYCREDIT with Cin7's totals, what is left of them as Cin7's,
    # and each refund on its credit note.
    credited = [c for c in purchases.credit_notes if c.outcome == "synced"]
    assert credited and counts.get(DocumentState.SYNCED, "supplier_credit_note") == len(credited)
    note_ids = {(row.sale_id, row.task_id): str(row.xero_id).lower() for row in p.rows("supplier_credit_note")}
    notes = {str(n["CreditNoteID"]).lower(): n for n in p.xero.credit_notes() if n["Type"] == "ACCPAYCREDIT"}
    assert len(notes) == len(credited)
    for expected_note in credited:
        note = notes[note_ids[(expected_note.purchase_id, expected_note.task_id)]]
        assert (_money(note["Total"]), _money(note["RemainingCredit"])) == (
            expected_note.total,
            expected_note.remaining_credit,
        ), expected_note.credit_note_number
    refunds = [e for e in purchases.payments if e.kind == "refund"]
    assert counts.get(DocumentState.SYNCED, "supplier_refund") == len(refunds)
    for refund in refunds:
        note_id = note_ids[(refund.purchase_id, refund.document_task_id)]
        on_note = [pay for pay in live if str((pay.get("CreditNote") or {}).get("CreditNoteID")).lower() == note_id]
        assert [_money(pay["Amount"]) for pay in on_note].count(refund.amount) >= 1, refund

    contacts = {c["ContactID"]: c for c in p.xero.contacts()}
    with p.ctx.sessions() as session:
        left_out = {link.cin7_customer_id: link.people_left_out for link in session.scalars(select(ContactLink))}
    checked_people = 0
    billed_suppliers = {b.supplier_id for b in synced}
    for expected_contact in purchases.contacts:
        if expected_contact.supplier_id not in billed_suppliers:
            continue
        contact = contacts[links[expected_contact.supplier_id]]
        if expected_contact.customer_id is None:
            assert (contact.get("TaxNumber") or "") == expected_contact.tax_number
            assert contact["Name"] == expected_contact.name
            # Its people: the Default one in the contact's own fields, the next five as ContactPersons,
            # and everyone else named on the link.
            assert (contact.get("EmailAddress") or "") == expected_contact.email
            persons = [str(person.get("EmailAddress") or "") for person in contact.get("ContactPersons") or []]
            assert persons == [person.email for person in expected_contact.contact_persons]
            noted = " ".join(left_out.get(expected_contact.supplier_id) or [])
            assert all(name in noted for name in expected_contact.left_out), (noted, expected_contact.left_out)
            checked_people += bool(expected_contact.contact_persons)
        else:
            # Joined to the customer's contact: its TaxNumber is as the customer's side typed it.
            assert "".join(str(contact.get("TaxNumber") or "").split()) == expected_contact.tax_number
    assert checked_people, "a billed supplier has people beyond its primary one"
    # One company that is both a customer and a supplier is one Xero contact.
    merges = [m for m in purchases.merges if m.supplier_id in billed_suppliers and m.customer_id in links]
    assert merges, "the dataset has a billed supplier that is also an invoiced customer"
    for merge in merges:
        assert links[merge.supplier_id] == links[merge.customer_id], merge
    assert len({links[s] for s in billed_suppliers}) == len(billed_suppliers)

    writes = p.xero_writes()
    p.poll_and_wait()
    assert p.xero_writes() == writes


def test_bills_whose_answers_are_lost_after_the_idempotency_window_are_found_not_sent_again(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    now = datetime.now(UTC)
    sales = generate(42, 3, now=now, hostile=False)
    purchases = generate_purchases(42, 25, now=now, customers=sales.customers)
    # Xero forgets idempotency keys at once: only the ledger and the lookup by number and supplier remain.
    p = make_pipeline(
        dataset=with_purchases(sales, purchases),
        xero={"idempotency_ttl_seconds": 0.5},
        settings={"SYNC_PURCHASES": "true", "XERO_BATCH_SIZE": "4"},
    )
    p.xero.set_faults(drop_response_after_commit_next=4)

    p.poll_and_wait()

    stats = p.xero.stats()
    assert stats["dropped_responses"] == 4
    # Bills whose answer was lost were found in Xero and adopted (then sent once more as an update).
    assert stats["by_endpoint"].get("POST /Invoices", 0) > 0, stats["by_endpoint"]
    synced = [b for b in purchases.bills if b.outcome == "synced"]
    links = _links(p)
    bills = [i for i in p.xero.invoices() if i["Type"] == "ACCPAY"]
    keys = [(b["Contact"]["ContactID"], b["InvoiceNumber"]) for b in bills]
    assert len(keys) == len(set(keys)) == len(synced)
    assert set(keys) == {(links[b.supplier_id], b.invoice_number) for b in synced}
    # An archived contact may share an active one's name; no two active ones do, and none is a variant
    # ("Name (2)") made to get round a contact a lost answer had already created.
    names = [str(c["Name"]).casefold() for c in p.xero.contacts() if c.get("ContactStatus") != "ARCHIVED"]
    assert len(names) == len(set(names)), names
    supplier_names = {str(s["Name"]).strip().casefold() for s in purchases.suppliers}
    assert not [n for n in names if n.endswith(")") and n.rsplit(" (", 1)[0] in supplier_names], names


def test_a_supplier_credit_note_is_allocated_to_its_unpaid_bill_and_a_void_takes_it_off_first(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    now = datetime.now(UTC)
    sales = generate(43, 2, now=now, hostile=False)
    purchases = generate_purchases(43, 12, now=now)
    p = make_pipeline(dataset=with_purchases(sales, purchases), settings={"SYNC_PURCHASES": "true"})
    p.poll_and_wait()
    unpaid = next(b for b in purchases.bills if b.outcome == "synced" and b.amount_paid == 0 and b.total > 0)
    bill_id = next(
        str(r.xero_id) for r in p.rows("bill") if (r.sale_id, r.task_id) == (unpaid.purchase_id, unpaid.task_id)
    )

    def change(status: str | None = None) -> dict[str, Any]:
        purchase = copy.deepcopy(p.cin7.purchase(unpaid.purchase_id))
        notes = purchase["CreditNote"] if isinstance(purchase["CreditNote"], list) else []
        if status is None:
            bill = next(i for i in _invoices(purchase) if i["TaskID"].lower() == unpaid.task_id)
            notes.append(
                make_purchase_credit_note(
                    random.Random(5),
                    bill,
                    number="CR-ALLOC-1",
                    status="AUTHORISED",
                    tax_calculation=purchase["TaxCalculation"],
                    refunded=False,
                    latest=now,
                )
            )
        else:
            next(n for n in notes if n["CreditNoteNumber"] == "CR-ALLOC-1")["Status"] = status
        purchase["CreditNote"] = notes
        purchase["LastUpdatedDate"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        p.cin7.put_purchase(purchase)
        return purchase

    purchase = change()
    p.poll_and_wait()

    note = next(n for n in p.xero.credit_notes() if n["CreditNoteNumber"] == "CR-ALLOC-1")
    cin7_note = next(n for n in purchase["CreditNote"] if n["CreditNoteNumber"] == "CR-ALLOC-1")
    bill = next(i for i in p.xero.invoices() if i["InvoiceID"] == bill_id)
    assert note["Type"] == "ACCPAYCREDIT" and _money(note["Total"]) == _money(cin7_note["Total"])
    assert _money(note["RemainingCredit"]) == 0
    assert _money(bill["AmountCredited"]) == _money(cin7_note["Total"])
    assert _money(bill["AmountDue"]) == unpaid.total - _money(cin7_note["Total"])

    change(status="VOIDED")
    p.poll_and_wait()

    note = next(n for n in p.xero.credit_notes() if n["CreditNoteNumber"] == "CR-ALLOC-1")
    bill = next(i for i in p.xero.invoices() if i["InvoiceID"] == bill_id)
    assert note["Status"] == "VOIDED"
    assert _money(bill["AmountDue"]) == unpaid.total and _money(bill["AmountCredited"]) == 0


def _invoices(purchase: dict[str, Any]) -> list[dict[str, Any]]:
    raw = purchase["Invoice"]
    return [raw] if isinstance(raw, dict) else list(raw)


def test_reconciliation_finds_nothing_on_clean_bills_and_names_a_bill_changed_in_cin7(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    # Enough purchases for the generator to cover supplier credit notes too.
    purchases = generate_purchases(44, 20, now=now)
    p = make_pipeline(
        dataset=with_purchases(generate(44, 2, now=now, hostile=False), purchases), settings={"SYNC_PURCHASES": "true"}
    )
    p.poll_and_wait()
    since = min(b.date for b in purchases.bills)
    synced = [b for b in purchases.bills if b.outcome == "synced"]
    notes = [n for n in purchases.credit_notes if n.outcome == "synced"]
    assert notes, "the dataset has supplier credit notes in Xero"

    clean = run_reconciliation(p.ctx, since=since, out_dir=tmp_path / "clean", yield_seconds=0)

    assert clean.findings == [], [f.as_json() for f in clean.findings]
    assert clean.summary["cin7_bills"] >= len(synced) and clean.summary["xero_bills"] == len(synced)
    assert clean.summary["xero_supplier_credit_notes"] == len(notes) <= clean.summary["cin7_supplier_credit_notes"]

    # Cin7 changes a synced bill's total and a supplier credit note's after the sync read them (no poll
    # since): reconciliation says so, for each.
    changed = next(b for b in synced if b.amount_paid == 0)
    purchase = copy.deepcopy(p.cin7.purchase(changed.purchase_id))
    bill = next(i for i in _invoices(purchase) if i["TaskID"].lower() == changed.task_id)
    bill["Total"] = float(Decimal(str(bill["Total"])) + Decimal("10.00"))
    purchase["LastUpdatedDate"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    p.cin7.put_purchase(purchase)
    credited = notes[0]
    purchase = copy.deepcopy(p.cin7.purchase(credited.purchase_id))
    raw = purchase["CreditNote"]
    note = next(n for n in ([raw] if isinstance(raw, dict) else raw) if n["TaskID"] == credited.task_id)
    note["Total"] = float(Decimal(str(note["Total"])) + Decimal("10.00"))
    purchase["LastUpdatedDate"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    p.cin7.put_purchase(purchase)

    found = run_reconciliation(p.ctx, since=since, out_dir=tmp_path / "changed", yield_seconds=0)

    expected = [
        ("mismatch", "bill", changed.invoice_number),
        ("mismatch", "supplier_credit_note", credited.credit_note_number),
    ]
    assert sorted((f.kind.value, f.document, f.number) for f in found.findings) == sorted(expected), [
        f.as_json() for f in found.findings
    ]
    page = found.report_html.read_text(encoding="utf-8")
    assert "bill" in page and credited.credit_note_number in page

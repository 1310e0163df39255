"""The Xero stand-in's payments, credit notes and allocations, over real HTTP with the official xero-python SDK."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from xero_python.accounting import (
    Account,
    Allocation,
    Allocations,
    Contact,
    CreditNote,
    CreditNotes,
    CurrencyCode,
    Invoice,
    Invoices,
    LineItem,
    Payment,
    PaymentDelete,
    Payments,
)
from xero_python.exceptions import AccountingBadRequestException, HTTPStatusException, NotFoundException

from pipeline.standins.xero import XeroStandIn
from tests.pipeline.standins.test_xero import Sdk, bearer, http, invoice, line, new_contact, validate

# The main stand-in tests' fixtures (a stand-in, an SDK client on it, the OpenAPI spec, the SDK's token URLs
# restored), re-exported by the redundant aliases so that pytest finds them here.
from tests.pipeline.standins.test_xero import _restore_token_urls as _restore_token_urls  # noqa: PLC0414
from tests.pipeline.standins.test_xero import openapi as openapi  # noqa: PLC0414
from tests.pipeline.standins.test_xero import sdk as sdk  # noqa: PLC0414
from tests.pipeline.standins.test_xero import standin as standin  # noqa: PLC0414

DAY = dt.date(2024, 3, 11)
CUSTOMER = "Acme Pty Ltd"
NOT_AUTHORISED = "Payments can only be made against Authorised documents"
EXCEEDS = "Payment amount exceeds the amount outstanding on this document"


def new_invoice(sdk: Sdk, *lines: LineItem, status: str = "AUTHORISED", **extra: Any) -> Invoice:
    """An invoice to the one customer of these tests (found or created by name)."""
    doc = invoice("", *lines, status=status)
    doc.contact = Contact(name=CUSTOMER)
    for key, value in extra.items():
        setattr(doc, key, value)
    result = sdk.api.create_invoices(sdk.tenant, Invoices(invoices=[doc]), summarize_errors=False).invoices[0]
    assert result.status_attribute_string == "OK", result.validation_errors
    return result


def credit_note(contact_id: str, *lines: LineItem, **fields: Any) -> CreditNote:
    fields.setdefault("type", "ACCRECCREDIT")
    fields.setdefault("status", "AUTHORISED")
    return CreditNote(
        contact=Contact(contact_id=contact_id), date=DAY, line_items=list(lines) or [line(unit="5.00")], **fields
    )


def create_credit_note(sdk: Sdk, contact_id: str, *lines: LineItem, **fields: Any) -> CreditNote:
    result = sdk.api.create_credit_notes(
        sdk.tenant, CreditNotes(credit_notes=[credit_note(contact_id, *lines, **fields)]), summarize_errors=False
    ).credit_notes[0]
    assert result.status_attribute_string == "OK", result.validation_errors
    return result


def payment(doc: Invoice | CreditNote, amount: str, code: str = "090", **extra: Any) -> Payment:
    target = {"invoice": Invoice(invoice_id=doc.invoice_id)} if isinstance(doc, Invoice) else {}
    if isinstance(doc, CreditNote):
        target = {"credit_note": CreditNote(credit_note_id=doc.credit_note_id)}
    extra.setdefault("date", DAY)
    return Payment(account=Account(code=code), amount=Decimal(amount), **target, **extra)


def pay(sdk: Sdk, *items: Payment, key: str | None = None) -> list[Payment]:
    kwargs: dict[str, Any] = {"idempotency_key": key} if key else {}
    return list(
        sdk.api.create_payments(sdk.tenant, Payments(payments=list(items)), summarize_errors=False, **kwargs).payments
    )


def allocate(sdk: Sdk, note: CreditNote, inv: Invoice, amount: str) -> Allocation:
    body = Allocations(
        allocations=[Allocation(invoice=Invoice(invoice_id=inv.invoice_id), amount=Decimal(amount), date=DAY)]
    )
    return sdk.api.create_credit_note_allocation(
        sdk.tenant, note.credit_note_id, body, summarize_errors=False
    ).allocations[0]


def errors_of(element: Any) -> list[str]:
    return [e.message for e in element.validation_errors or []]


def get_invoice(sdk: Sdk, inv: Invoice) -> Invoice:
    return sdk.api.get_invoice(sdk.tenant, inv.invoice_id).invoices[0]


def get_note(sdk: Sdk, note: CreditNote) -> CreditNote:
    return sdk.api.get_credit_note(sdk.tenant, note.credit_note_id, unitdp=4).credit_notes[0]


# -------------------------------------------------------------------------------------------- payments


def test_payments_settle_an_invoice_and_deleting_one_restores_it(standin: XeroStandIn, sdk: Sdk) -> None:
    inv = new_invoice(sdk)  # 10.00 + GST = 11.00
    first = pay(sdk, payment(inv, "5.00", reference="first"))[0]
    assert first.status_attribute_string == "OK" and first.status == "AUTHORISED"
    assert first.payment_type == "ACCRECPAYMENT" and first.is_reconciled is False
    assert first.account.code == "090" and first.invoice.invoice_id == inv.invoice_id
    partly = get_invoice(sdk, inv)
    assert (partly.status, partly.amount_paid, partly.amount_due) == ("AUTHORISED", Decimal("5"), Decimal("6"))
    assert [(p.payment_id, p.amount, p.reference) for p in partly.payments] == [
        (first.payment_id, Decimal("5"), "first")
    ]
    by_number = Payment(
        invoice=Invoice(invoice_number=inv.invoice_number), account=Account(code="090"), amount=Decimal("6"), date=DAY
    )
    assert pay(sdk, by_number)[0].status_attribute_string == "OK"
    paid = get_invoice(sdk, inv)
    assert paid.status == "PAID" and paid.amount_due == 0 and paid.fully_paid_on_date == DAY

    deleted = sdk.api.delete_payment(sdk.tenant, first.payment_id, PaymentDelete(status="DELETED")).payments[0]
    assert deleted.status == "DELETED"
    restored = get_invoice(sdk, inv)
    assert (restored.status, restored.amount_paid, restored.amount_due) == ("AUTHORISED", Decimal("6"), Decimal("5"))
    assert restored.fully_paid_on_date is None and len(restored.payments) == 1
    listed = sdk.api.get_payments(sdk.tenant, where=f'Invoice.InvoiceID==guid("{inv.invoice_id}")', page=1)
    assert sorted(p.status for p in listed.payments) == ["AUTHORISED", "DELETED"]
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.api.delete_payment(sdk.tenant, first.payment_id, PaymentDelete(status="DELETED"))
    assert err.value.reason == "Payment has already been deleted."
    again = pay(sdk, payment(inv, "5.00"))[0]
    assert again.status_attribute_string == "OK" and get_invoice(sdk, inv).status == "PAID"
    # Oldest update first: the deletion moved the first payment behind the second.
    assert [p["Status"] for p in standin.payments()] == ["AUTHORISED", "DELETED", "AUTHORISED"]
    assert all(isinstance(p["Amount"], Decimal) for p in standin.payments())


def test_each_bad_payment_element_is_answered_with_its_own_error(standin: XeroStandIn, sdk: Sdk) -> None:
    inv = new_invoice(sdk)
    draft = new_invoice(sdk, status="DRAFT")
    unknown = Invoice(invoice_id="3f1c0a52-0d3e-4a7f-9c55-1b2d3e4f5a6b")
    results = pay(
        sdk,
        payment(draft, "1.00"),
        payment(inv, "11.01"),
        payment(inv, "1.00", code="200"),
        payment(inv, "1.00", code="999"),
        payment(inv, "0"),
        Payment(invoice=Invoice(invoice_id=inv.invoice_id), account=Account(code="090"), amount=Decimal("1")),
        Payment(invoice=unknown, account=Account(code="090"), amount=Decimal("1"), date=DAY),
        payment(inv, "2.00"),
    )
    assert [r.status_attribute_string for r in results] == ["ERROR"] * 7 + ["OK"]
    assert [errors_of(r) for r in results[:7]] == [
        [NOT_AUTHORISED],
        [EXCEEDS],
        ["Account code '200' is not a bank account or enabled for payments"],
        ["Account code '999' could not be found."],
        ["The payment amount must be greater than zero."],
        ["The payment date must be specified."],
        [f"The invoice with InvoiceID {unknown.invoice_id} could not be found."],
    ]
    assert len(standin.payments()) == 1
    body = json.dumps(
        {
            "Payments": [
                {"Invoice": {"InvoiceID": inv.invoice_id}, "Account": {"Code": "090"}, "Date": "soon", "Amount": 1}
            ]
        }
    ).encode()
    headers = {**bearer(sdk), "Content-Type": "application/json"}
    status, _, raw = http("PUT", standin.api_url + "/Payments?summarizeErrors=false", body, headers)
    assert status == 200
    assert json.loads(raw)["Payments"][0]["ValidationErrors"] == [{"Message": "The Date 'soon' is not a valid date."}]


def test_without_summarize_errors_one_bad_payment_rejects_the_batch(standin: XeroStandIn, sdk: Sdk) -> None:
    inv = new_invoice(sdk)
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.api.create_payments(sdk.tenant, Payments(payments=[payment(inv, "6.00"), payment(inv, "6.00")]))
    # Each is within what the invoice owes; together they are not, and nothing is saved.
    assert err.value.error_data["Type"] == "ValidationException" and err.value.reason == EXCEEDS
    assert standin.payments() == [] and get_invoice(sdk, inv).amount_paid == 0


def test_a_foreign_currency_payment_takes_the_documents_rate_unless_given_one(sdk: Sdk) -> None:
    inv = new_invoice(sdk, currency_code=CurrencyCode.USD, currency_rate=Decimal("0.65"))
    own, given = pay(sdk, payment(inv, "5.00"), payment(inv, "6.00", currency_rate=Decimal("0.7")))
    assert own.currency_rate == Decimal("0.65") and given.currency_rate == Decimal("0.7")
    assert get_invoice(sdk, inv).status == "PAID"


def test_a_reconciled_payment_cannot_be_deleted(standin: XeroStandIn, sdk: Sdk) -> None:
    inv = new_invoice(sdk)
    made = pay(sdk, payment(inv, "11.00"))[0]
    status, _, raw = http("POST", f"{standin.url}/_standin/payments/{made.payment_id}/reconcile")
    assert status == 200 and json.loads(raw)["IsReconciled"] is True
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.api.delete_payment(sdk.tenant, made.payment_id, PaymentDelete(status="DELETED"))
    assert err.value.reason == "Payment cannot be deleted as it has been reconciled."
    assert get_invoice(sdk, inv).status == "PAID"
    created_reconciled = pay(sdk, payment(new_invoice(sdk), "1.00", is_reconciled=True))[0]
    assert created_reconciled.is_reconciled is True
    assert http("POST", f"{standin.url}/_standin/payments/{inv.invoice_id}/reconcile")[0] == 404


def test_payment_filters_and_pages_of_one_hundred(sdk: Sdk) -> None:
    big = new_invoice(sdk, line(quantity="200", unit="1.00", tax="EXEMPTOUTPUT"))
    other = new_invoice(sdk)
    results = pay(sdk, *[payment(big, "1.00", reference=f"R{i}") for i in range(101)])
    assert {r.status_attribute_string for r in results} == {"OK"}
    late = pay(sdk, payment(other, "11.00", reference="late", date=dt.date(2024, 4, 2)))[0]
    page1 = sdk.api.get_payments(sdk.tenant, where=f'Invoice.InvoiceID==guid("{big.invoice_id}")', page=1)
    page2 = sdk.api.get_payments(sdk.tenant, where=f'Invoice.InvoiceID==guid("{big.invoice_id}")', page=2)
    assert (len(page1.payments), len(page2.payments)) == (100, 1)

    def ids(where: str) -> set[str]:
        return {str(p.payment_id) for p in sdk.api.get_payments(sdk.tenant, where=where, page=1).payments}

    assert ids('Reference=="late"') == {str(late.payment_id)}
    assert ids("Date>=DateTime(2024, 4, 1)") == {str(late.payment_id)}
    assert ids('Reference=="R7" OR Reference=="late"') == {str(results[7].payment_id), str(late.payment_id)}
    assert len(ids('Status=="AUTHORISED" AND PaymentType=="ACCRECPAYMENT"')) == 100  # page 1 of 102
    assert ids('PaymentType=="ARCREDITPAYMENT"') == set()
    assert sdk.api.get_payment(sdk.tenant, late.payment_id).payments[0].reference == "late"
    with pytest.raises(NotFoundException):
        sdk.api.get_payment(sdk.tenant, big.invoice_id)


def test_an_idempotent_replay_of_put_payments_pays_once(standin: XeroStandIn, sdk: Sdk) -> None:
    inv = new_invoice(sdk)
    first = pay(sdk, payment(inv, "4.00"), key="pay-once")[0]
    replay = pay(sdk, payment(inv, "4.00"), key="pay-once")[0]
    assert replay.payment_id == first.payment_id and len(standin.payments()) == 1
    assert get_invoice(sdk, inv).amount_paid == Decimal("4")
    assert standin.stats()["idempotent_replays"] == 1


def test_pay_invoice_and_the_admin_pay_go_through_the_payment_path(standin: XeroStandIn, sdk: Sdk) -> None:
    inv = new_invoice(sdk)
    pay(sdk, payment(inv, "1.00"))
    status, _, raw = http("POST", f"{standin.url}/_standin/invoices/{inv.invoice_id}/pay")
    paid = json.loads(raw)
    assert status == 200 and paid["Status"] == "PAID" and paid["AmountPaid"] == "11.00"
    assert [p["Amount"] for p in paid["Payments"]] == ["1.00", "10.00"]
    admin = json.loads(http("GET", f"{standin.url}/_standin/payments")[2])
    assert [(p["Account"]["Code"], p["Amount"]) for p in admin] == [("090", "1.00"), ("090", "10.00")]
    with pytest.raises(ValueError, match=NOT_AUTHORISED):
        standin.pay_invoice(inv.invoice_id)
    with pytest.raises(KeyError):
        standin.pay_invoice("3f1c0a52-0d3e-4a7f-9c55-1b2d3e4f5a6b")


# ---------------------------------------------------------------------------------------- credit notes


def test_credit_notes_are_numbered_unique_and_validated_like_invoices(standin: XeroStandIn, sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    made = create_credit_note(sdk, contact_id, line(unit="1.23456"), credit_note_number="CN-A")
    assert (made.total, made.remaining_credit, made.status) == (Decimal("1.35"), Decimal("1.35"), "AUTHORISED")
    assert made.line_items[0].unit_amount == Decimal("1.23")
    four_dp = sdk.api.create_credit_notes(
        sdk.tenant,
        CreditNotes(credit_notes=[credit_note(contact_id, line(unit="1.23456"))]),
        summarize_errors=False,
        unitdp=4,
    ).credit_notes[0]
    assert four_dp.credit_note_number == "CN-0001" and four_dp.line_items[0].unit_amount == Decimal("1.2346")
    results = sdk.api.create_credit_notes(
        sdk.tenant,
        CreditNotes(
            credit_notes=[
                credit_note(contact_id, credit_note_number="cn-a"),
                credit_note(contact_id, line(discount_rate=Decimal("10"))),
                credit_note(contact_id, line(tax="INPUT")),
                CreditNote(type="ACCRECCREDIT", contact=Contact(name="Brand New Co"), line_items=[line()]),
                credit_note(contact_id, line(tax="INPUT"), type="ACCPAYCREDIT", credit_note_number="SUP-1"),
                credit_note(contact_id, line(tax="INPUT"), type="ACCPAYCREDIT", credit_note_number="SUP-1"),
            ]
        ),
        summarize_errors=False,
    ).credit_notes
    assert [r.status_attribute_string for r in results] == ["ERROR", "ERROR", "ERROR", "OK", "OK", "OK"]
    assert "must be unique" in errors_of(results[0])[0]
    assert errors_of(results[1]) == [
        "Discounts are only supported on ACCREC invoices and quotes. Credit notes in Xero do not support discounts."
    ]
    assert errors_of(results[2]) == [
        "The TaxType code 'INPUT' does not exist or cannot be used for this type of transaction."
    ]
    assert results[3].contact.name == "Brand New Co" and results[3].status == "DRAFT"
    assert any(c["Name"] == "Brand New Co" for c in standin.contacts())

    def numbers(where: str) -> list[str]:
        found = sdk.api.get_credit_notes(sdk.tenant, where=where, page=1, unitdp=4).credit_notes
        return sorted(str(n.credit_note_number) for n in found)

    assert numbers('CreditNoteNumber=="CN-A" OR CreditNoteNumber=="CN-0001"') == ["CN-0001", "CN-A"]
    assert numbers('Type=="ACCPAYCREDIT"') == ["SUP-1", "SUP-1"]
    assert numbers(f'CreditNoteID==guid("{made.credit_note_id}")') == ["CN-A"]
    assert numbers(f'Contact.ContactID==guid("{contact_id}") AND Status=="AUTHORISED"') == [
        "CN-0001",
        "CN-A",
        "SUP-1",
        "SUP-1",
    ]
    assert get_note(sdk, made).line_items[0].description == "Widget"
    with pytest.raises(NotFoundException):
        sdk.api.get_credit_note(sdk.tenant, contact_id)


def test_post_credit_notes_updates_voids_and_deletes(sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    made = create_credit_note(sdk, contact_id, credit_note_number="CN-U")
    by_number = CreditNote(credit_note_number="CN-U", reference="changed", line_items=[line(unit="7.00")])
    updated = sdk.api.update_or_create_credit_notes(
        sdk.tenant, CreditNotes(credit_notes=[by_number]), summarize_errors=False, unitdp=4
    ).credit_notes[0]
    assert updated.credit_note_id == made.credit_note_id and updated.total == Decimal("7.7")
    assert updated.reference == "changed"
    voided = sdk.api.update_or_create_credit_notes(
        sdk.tenant, CreditNotes(credit_notes=[CreditNote(credit_note_id=made.credit_note_id, status="VOIDED")])
    ).credit_notes[0]
    assert voided.status == "VOIDED" and voided.remaining_credit == 0
    draft = create_credit_note(sdk, contact_id, status="DRAFT")
    deleted = sdk.api.update_or_create_credit_notes(
        sdk.tenant, CreditNotes(credit_notes=[CreditNote(credit_note_id=draft.credit_note_id, status="DELETED")])
    ).credit_notes[0]
    assert deleted.status == "DELETED"
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.api.create_credit_notes(
            sdk.tenant, CreditNotes(credit_notes=[credit_note(contact_id, credit_note_number="CN-U")])
        )
    assert "must be unique" in err.value.reason


# ----------------------------------------------------------------------------------------- allocations


def test_an_allocation_moves_credit_to_the_invoice_and_its_undo_moves_it_back(standin: XeroStandIn, sdk: Sdk) -> None:
    inv = new_invoice(sdk)
    note = create_credit_note(sdk, inv.contact.contact_id, credit_note_number="CN-1")  # 5.50
    made = allocate(sdk, note, inv, "5.50")
    assert made.status_attribute_string == "OK" and made.is_deleted is False
    assert made.invoice.invoice_id == inv.invoice_id and made.credit_note.credit_note_number == "CN-1"
    credited = get_invoice(sdk, inv)
    assert (credited.amount_credited, credited.amount_due, credited.status) == (
        Decimal("5.5"),
        Decimal("5.5"),
        "AUTHORISED",
    )
    assert [(c.credit_note_number, c.applied_amount, c.total) for c in credited.credit_notes] == [
        ("CN-1", Decimal("5.5"), Decimal("5.5"))
    ]
    used = get_note(sdk, note)
    assert (used.remaining_credit, used.status) == (0, "PAID")
    assert [(a.allocation_id, a.amount) for a in used.allocations] == [(made.allocation_id, Decimal("5.5"))]

    undone = sdk.api.delete_credit_note_allocations(sdk.tenant, note.credit_note_id, made.allocation_id)
    assert undone.is_deleted is True and undone.allocation_id == made.allocation_id
    restored = get_invoice(sdk, inv)
    assert (restored.amount_credited, restored.amount_due, restored.credit_notes) == (0, Decimal("11"), [])
    back = get_note(sdk, note)
    assert (back.remaining_credit, back.status, back.allocations) == (Decimal("5.5"), "AUTHORISED", [])
    again = sdk.api.delete_credit_note_allocations(sdk.tenant, note.credit_note_id, made.allocation_id)
    assert again.is_deleted is True and get_note(sdk, note).remaining_credit == Decimal("5.5")
    assert allocate(sdk, note, inv, "2.00").status_attribute_string == "OK"
    pay(sdk, payment(inv, "9.00"))
    assert get_invoice(sdk, inv).status == "PAID" and get_note(sdk, note).remaining_credit == Decimal("3.5")
    with pytest.raises(NotFoundException):
        sdk.api.delete_credit_note_allocations(sdk.tenant, note.credit_note_id, inv.invoice_id)


def test_allocation_errors_use_xeros_messages(sdk: Sdk) -> None:
    inv = new_invoice(sdk)
    contact_id = inv.contact.contact_id
    note = create_credit_note(sdk, contact_id, line(unit="20.00"))  # 22.00, more than the invoice owes
    bill = sdk.api.create_invoices(
        sdk.tenant,
        Invoices(
            invoices=[
                Invoice(
                    type="ACCPAY",
                    contact=Contact(contact_id=contact_id),
                    date=DAY,
                    status="AUTHORISED",
                    line_items=[line(tax="INPUT")],
                )
            ]
        ),
    ).invoices[0]
    paid = new_invoice(sdk)
    pay(sdk, payment(paid, "11.00"))
    draft_invoice = new_invoice(sdk, status="DRAFT")
    usd = new_invoice(sdk, currency_code=CurrencyCode.USD)
    results = [
        allocate(sdk, note, inv, "11.01"),
        allocate(sdk, note, bill, "1.00"),
        allocate(sdk, note, paid, "1.00"),
        allocate(sdk, note, draft_invoice, "1.00"),
        allocate(sdk, note, usd, "1.00"),
    ]
    assert [errors_of(r) for r in results] == [
        ["Credit Note cannot be allocated as amount is greater than amount outstanding"],
        ["Credit Note cannot be allocated to an incorrect invoice type"],
        ["The invoice you are trying to allocate to has already been paid off"],
        ["Credit Note can only be allocated to an Authorised invoice."],
        ["Credit Note cannot be allocated to an invoice in a different currency"],
    ]
    draft_note = create_credit_note(sdk, contact_id, status="DRAFT")
    assert errors_of(allocate(sdk, draft_note, inv, "1.00")) == [
        "Credit Note must be Authorised before it can be allocated."
    ]
    with pytest.raises(AccountingBadRequestException) as err:
        body = Allocations(
            allocations=[Allocation(invoice=Invoice(invoice_id=inv.invoice_id), amount=Decimal("12"), date=DAY)]
        )
        sdk.api.create_credit_note_allocation(sdk.tenant, note.credit_note_id, body)
    assert err.value.reason.startswith("Credit Note cannot be allocated as amount")
    assert get_note(sdk, note).remaining_credit == Decimal("22")


def test_a_settled_credit_note_or_invoice_cannot_be_changed_or_voided(sdk: Sdk) -> None:
    inv = new_invoice(sdk)
    note = create_credit_note(sdk, inv.contact.contact_id)
    allocate(sdk, note, inv, "1.00")

    def post(change: CreditNote) -> list[str]:
        change.credit_note_id = note.credit_note_id
        result = sdk.api.update_or_create_credit_notes(
            sdk.tenant, CreditNotes(credit_notes=[change]), summarize_errors=False
        ).credit_notes[0]
        return errors_of(result)

    assert post(CreditNote(line_items=[line(unit="9.00")])) == [
        "This document cannot be edited as it has a payment or credit note allocated to it."
    ]
    assert post(CreditNote(status="VOIDED")) == [
        "This document cannot be voided as it has a payment or credit note allocated to it."
    ]
    assert post(CreditNote(reference="still fine", line_items=[line(unit="5.00")])) == []
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.api.update_invoice(
            sdk.tenant, inv.invoice_id, Invoices(invoices=[Invoice(invoice_id=inv.invoice_id, status="VOIDED")])
        )
    assert err.value.reason.startswith("This document cannot be edited")
    allocation_id = get_note(sdk, note).allocations[0].allocation_id
    sdk.api.delete_credit_note_allocations(sdk.tenant, note.credit_note_id, allocation_id)
    assert post(CreditNote(status="VOIDED")) == []


def test_a_refund_is_a_payment_on_the_credit_note(sdk: Sdk) -> None:
    note = create_credit_note(sdk, new_contact(sdk), credit_note_number="CN-R")
    refund = pay(sdk, payment(note, "2.50"))[0]
    assert refund.payment_type == "ARCREDITPAYMENT" and refund.credit_note.credit_note_number == "CN-R"
    after = get_note(sdk, note)
    assert after.remaining_credit == Decimal("3") and [p.amount for p in after.payments] == [Decimal("2.5")]
    too_much = Payment(
        credit_note=CreditNote(credit_note_number="CN-R"), account=Account(code="090"), amount=Decimal("3.01"), date=DAY
    )
    assert errors_of(pay(sdk, too_much)[0]) == [EXCEEDS]
    assert pay(sdk, payment(note, "3.00"))[0].status_attribute_string == "OK"
    assert get_note(sdk, note).status == "PAID"
    found = sdk.api.get_payments(sdk.tenant, where=f'CreditNote.CreditNoteID==guid("{note.credit_note_id}")', page=1)
    assert len(found.payments) == 2


# --------------------------------------------------------------------------------- gate, admin, schemas


def test_the_api_gate_applies_to_the_new_endpoints(standin: XeroStandIn, sdk: Sdk) -> None:
    inv = new_invoice(sdk)
    standin.set_faults(server_error_next=1)
    with pytest.raises(HTTPStatusException) as err:
        pay(sdk, payment(inv, "1.00"))
    assert err.value.status == 500 and standin.payments() == []
    # urllib3 retries a PUT whose answer was lost; the Idempotency-Key replays it rather than paying twice.
    standin.set_faults(drop_response_after_commit_next=1)
    made = pay(sdk, payment(inv, "1.00"), key="drop-pay")[0]
    assert [p["PaymentID"] for p in standin.payments()] == [made.payment_id]
    assert standin.stats()["dropped_responses"] == 1 and standin.stats()["idempotent_replays"] == 1
    by_endpoint = standin.stats()["by_endpoint"]
    assert by_endpoint["PUT /Payments"] == 3 and by_endpoint["PUT /Invoices"] == 1
    sdk.api.get_credit_notes(sdk.tenant, page=1)
    assert standin.stats()["by_endpoint"]["GET /CreditNotes"] == 1


def test_admin_views_and_reset_cover_payments_and_credit_notes(standin: XeroStandIn, sdk: Sdk) -> None:
    inv = new_invoice(sdk)
    note = create_credit_note(sdk, inv.contact.contact_id)
    allocate(sdk, note, inv, "1.00")
    notes = json.loads(http("GET", f"{standin.url}/_standin/credit-notes")[2])
    assert [(n["RemainingCredit"], n["Allocations"][0]["Amount"]) for n in notes] == [("4.50", "1.00")]
    assert standin.credit_notes()[0]["RemainingCredit"] == Decimal("4.50")
    standin.reset()
    assert standin.credit_notes() == [] and standin.payments() == [] and standin.invoices() == []


def test_responses_validate_against_the_openapi_payment_credit_note_and_allocation_schemas(
    openapi: dict[str, Any], standin: XeroStandIn, sdk: Sdk
) -> None:
    inv = new_invoice(sdk)
    note = create_credit_note(sdk, inv.contact.contact_id)
    headers = {**bearer(sdk), "Content-Type": "application/json"}

    def call(method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        body = json.dumps(payload).encode() if payload is not None else None
        status, _, raw = http(method, standin.api_url + path, body, headers)
        return status, json.loads(raw)

    pay_body = {
        "Payments": [
            {
                "Invoice": {"InvoiceID": inv.invoice_id},
                "Account": {"Code": "090"},
                "Date": "2024-03-11",
                "Amount": 1,
                "Reference": "schema",
            },
            {"Invoice": {"InvoiceID": inv.invoice_id}, "Account": {"Code": "200"}, "Date": "2024-03-11", "Amount": 1},
        ]
    }
    status, put = call("PUT", "/Payments?summarizeErrors=false", pay_body)
    assert status == 200
    validate(openapi, "Payments", put)
    payment_id = put["Payments"][0]["PaymentID"]
    alloc_body = {
        "Allocations": [
            {"Invoice": {"InvoiceID": inv.invoice_id}, "Amount": 1, "Date": "2024-03-11"},
            {"Invoice": {"InvoiceID": inv.invoice_id}, "Amount": 99, "Date": "2024-03-11"},
        ]
    }
    status, allocated = call("PUT", f"/CreditNotes/{note.credit_note_id}/Allocations?summarizeErrors=false", alloc_body)
    assert status == 200
    validate(openapi, "Allocations", allocated)
    cn_body = {
        "CreditNotes": [
            {
                "Type": "ACCRECCREDIT",
                "Contact": {"Name": "Schema CN"},
                "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 2, "AccountCode": "200"}],
            },
            {
                "Type": "ACCRECCREDIT",
                "Contact": {"Name": "Schema CN"},
                "LineItems": [{"Description": "x", "DiscountRate": 5}],
            },
        ]
    }
    status, notes = call("PUT", "/CreditNotes?summarizeErrors=false", cn_body)
    assert status == 200
    validate(openapi, "CreditNotes", notes)
    for path, schema in (
        ("/Payments?page=1", "Payments"),
        (f"/Payments/{payment_id}", "Payments"),
        ("/CreditNotes?page=1", "CreditNotes"),
        (f"/CreditNotes/{note.credit_note_id}", "CreditNotes"),
        (f"/Invoices/{inv.invoice_id}", "Invoices"),
    ):
        status, payload = call("GET", path)
        assert status == 200, path
        validate(openapi, schema, payload)
    status, deleted = call("POST", f"/Payments/{payment_id}", {"Status": "DELETED"})
    assert status == 200
    validate(openapi, "Payments", deleted)
    status, refused = call("POST", f"/Payments/{payment_id}", {"Status": "DELETED"})
    assert status == 400
    validate(openapi, "Error", refused)
    allocation_id = allocated["Allocations"][0]["AllocationID"]
    status, undone = call("DELETE", f"/CreditNotes/{note.credit_note_id}/Allocations/{allocation_id}")
    assert status == 200 and undone["IsDeleted"] is True
    validate(openapi, "Allocation", undone)
    status, batch = call("PUT", "/Payments", pay_body)
    assert status == 400
    validate(openapi, "Error", batch)

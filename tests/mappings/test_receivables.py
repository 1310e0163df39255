"""Credit notes, payments, refunds and allocations: Cin7 figures in, Xero payloads out, to the cent."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from mappings import (
    Cin7Payment,
    Cin7Sale,
    MappingError,
    MappingRules,
    OrgReference,
    XeroCreditNote,
    XeroDocumentRef,
    XeroPayment,
    credit_allocations,
    map_allocation,
    map_credit_note,
    map_payment,
    xero_totals,
)

D = Decimal
INVOICE_ID = "11111111-1111-4111-8111-111111111111"
NOTE_ID = "22222222-2222-4222-8222-222222222222"
REFERENCE = OrgReference(
    account_codes=frozenset({"200", "260", "860", "090"}),
    payment_account_codes=frozenset({"090"}),
    base_currency="AUD",
    rounding_account="860",
)


def _payment(
    pid: str, amount: str, day: str = "2024-03-20", account: str = "090", ref: str = "EFT 1"
) -> dict[str, Any]:
    return {
        "ID": pid,
        "Amount": amount,
        "DatePaid": f"{day}T00:00:00",
        "Account": account,
        "Reference": ref,
        "CurrencyRate": 1,
    }


def _note(
    task: str,
    number: str,
    total_lines: list[dict[str, Any]],
    *,
    status: str = "AUTHORISED",
    day: str = "2024-03-18",
    refunds: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    subtotal = sum(D(str(line["Total"])) for line in total_lines)
    tax = sum(D(str(line["Tax"])) for line in total_lines)
    return {
        "TaskID": task,
        "CreditNoteNumber": number,
        "CreditNoteInvoiceNumber": "INV-00039",
        "CreditNoteDate": f"{day}T00:00:00",
        "CreditNoteConversionRate": 1,
        "Status": status,
        "Lines": total_lines,
        "AdditionalCharges": [],
        "Refunds": refunds or [],
        "TotalBeforeTax": str(subtotal),
        "Tax": str(tax),
        "Total": str(subtotal + tax),
    }


CAKE = {
    "SKU": "CAKE-12",
    "Name": "Birthday Cake",
    "Quantity": 4,
    "Price": 19.99,
    "Discount": 12.5,
    "Tax": 7.0,
    "Total": 69.97,
    "TaxRule": "GST on Income",
    "Account": "200",
}
FLOUR = {
    "SKU": "FLR-KG",
    "Name": "Flour (kg)",
    "Quantity": 2.5,
    "Price": 7.2,
    "Discount": 0,
    "Tax": 1.8,
    "Total": 18.0,
    "TaxRule": "Tax on Sales",
    "Account": "260",
}


def _sale(base: dict[str, Any], *, payments: list[dict[str, Any]] = (), notes: list[dict[str, Any]] = ()) -> Cin7Sale:
    data = copy.deepcopy(base)
    data["Invoices"][0]["Payments"] = list(payments)
    data["CreditNotes"] = list(notes)
    return Cin7Sale.model_validate(data)


def _credit_note(sale: Cin7Sale, rules: MappingRules) -> XeroCreditNote:
    return map_credit_note(sale, sale.credit_notes[0], customer=None, rules=rules, reference=REFERENCE)


def _pay(
    payment: Cin7Payment, sale: Cin7Sale, rules: MappingRules, *, target: XeroDocumentRef, document: str
) -> XeroPayment:
    return map_payment(payment, sale=sale, target=target, document=document, rules=rules, reference=REFERENCE)


def _pay_invoice(sale: Cin7Sale, rules: MappingRules) -> XeroPayment:
    """The first payment of the sale's invoice, as the pipeline names it."""
    return _pay(
        sale.invoices[0].payments[0],
        sale,
        rules,
        target=XeroDocumentRef(invoice_id=INVOICE_ID),
        document="payment p1 of invoice INV-00039",
    )


def test_credit_note_folds_the_discount_into_the_price_and_keeps_cin7s_totals(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    sale = _sale(exclusive_sale_json, notes=[_note("c1", "CR-00001", [CAKE, FLOUR])])
    payload = _credit_note(sale, rules)
    lines = payload.line_items or []
    assert payload.type == "ACCRECCREDIT" and payload.credit_note_number == "CR-00001"
    assert payload.reference == "INV-00039"
    assert all(line.discount_rate is None for line in lines)
    # 19.99 less 12.5% is 17.49125: Xero keeps 4 dp, and the line is 4 x 17.4913 = 69.97.
    assert lines[0].unit_amount == D("17.4913") and lines[0].line_amount == D("69.97")
    totals = xero_totals(payload)
    assert (totals.subtotal, totals.total_tax, totals.total) == (D("87.97"), D("8.80"), D("96.77"))
    assert payload.to_json()["Status"] == "AUTHORISED"


def test_credit_note_with_more_quantity_gets_a_rounding_line_for_what_folding_loses(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    # 333 x 19.99 less 12.5% = 5824.586..., Cin7's total; 333 x 17.4913 = 5824.60: two cents apart.
    line = {**CAKE, "Quantity": 333, "Total": "5824.5863", "Tax": "582.4586"}
    sale = _sale(exclusive_sale_json, notes=[_note("c1", "CR-00002", [line])])
    payload = _credit_note(sale, rules)
    totals = xero_totals(payload)
    assert totals.total == D("6407.04")  # Cin7's 5824.5863 + 582.4586 = 6407.0449, to the cent
    assert (payload.line_items or [])[-1].description == "Rounding"


def test_credit_note_in_a_foreign_currency_takes_the_inverted_rate(
    inclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    data = copy.deepcopy(inclusive_sale_json)
    invoice = data["Invoices"][0]
    data["CreditNotes"] = [
        {
            **_note("c9", "CR-00009", invoice["Lines"][:1]),
            "CreditNoteConversionRate": "1.5331",
            "CreditNoteInvoiceNumber": invoice["InvoiceNumber"],
        }
    ]
    note_line = invoice["Lines"][0]
    data["CreditNotes"][0]["TotalBeforeTax"] = str(D(str(note_line["Total"])) - D(str(note_line["Tax"])))
    data["CreditNotes"][0]["Total"] = str(note_line["Total"])
    sale = Cin7Sale.model_validate(data)
    payload = map_credit_note(
        sale, sale.credit_notes[0], customer=None, rules=rules, reference=OrgReference(base_currency="AUD")
    )
    assert payload.currency_code == "USD" and payload.currency_rate == D("0.652273")


def test_credit_note_problems_name_the_note_and_field(exclusive_sale_json: dict[str, Any], rules: MappingRules) -> None:
    note = _note("c1", "CR-00003", [{**FLOUR, "TaxRule": "Mystery Tax"}])
    note["CreditNoteDate"] = None
    sale = _sale(exclusive_sale_json, notes=[note])
    with pytest.raises(MappingError) as caught:
        _credit_note(sale, rules)
    messages = [p.message for p in caught.value.problems]
    assert any("credit note CR-00003 has no CreditNoteDate" in m for m in messages)
    assert any("'Mystery Tax'" in m and "credit note CR-00003" in m for m in messages)


def test_payment_goes_to_the_mapped_bank_account_with_cin7s_reference(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    sale = _sale(exclusive_sale_json, payments=[_payment("p1", "100.00", account="718")])
    mapped_rules = rules.model_copy(update={"payment_accounts": {"718": "090"}})
    payload = _pay_invoice(sale, mapped_rules).to_json()
    assert payload == {
        "Invoice": {"InvoiceID": INVOICE_ID},
        "Account": {"Code": "090"},
        "Date": "2024-03-20",
        "Amount": "100.00",
        "Reference": "EFT 1",
    }


def test_payment_to_a_non_bank_account_or_of_nothing_is_a_problem_naming_it(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    sale = _sale(exclusive_sale_json, payments=[_payment("p1", "0", account="200")])
    with pytest.raises(MappingError) as caught:
        _pay_invoice(sale, rules)
    messages = " | ".join(p.message for p in caught.value.problems)
    assert "Xero account '200' of payment p1 of invoice INV-00039 is not a bank account" in messages
    assert "must be positive" in messages


def test_refund_pays_the_credit_note_back(exclusive_sale_json: dict[str, Any], rules: MappingRules) -> None:
    refund = _payment("r1", "96.77", day="2024-03-25")
    sale = _sale(exclusive_sale_json, notes=[_note("c1", "CR-00001", [CAKE, FLOUR], refunds=[refund])])
    payload = _pay(
        sale.credit_notes[0].refunds[0],
        sale,
        rules,
        target=XeroDocumentRef(credit_note_id=NOTE_ID),
        document="refund r1 of credit note CR-00001",
    ).to_json()
    assert payload["CreditNote"] == {"CreditNoteID": NOTE_ID} and "Invoice" not in payload


@pytest.mark.parametrize(
    ("payments", "refunds", "expected"),
    [
        ([], [], D("96.77")),  # credited: the whole credit note goes against the invoice
        ([_payment("p1", "100.00")], [], D("96.77")),  # part-paid, rest credited
        ([_payment("p1", "150.00")], [], D("59.01")),  # credit exceeds what is owed: only what is owed
        ([_payment("p1", "209.01")], [_payment("r1", "96.77")], D("0.00")),  # paid in full, refunded
    ],
)
def test_allocation_is_what_cin7s_figures_leave_owing(
    exclusive_sale_json: dict[str, Any], payments: list[dict[str, Any]], refunds: list[dict[str, Any]], expected: D
) -> None:
    sale = _sale(
        exclusive_sale_json, payments=payments, notes=[_note("c1", "CR-00001", [CAKE, FLOUR], refunds=refunds)]
    )
    allocation = credit_allocations(sale)["c1"]
    assert allocation.amount == expected and allocation.invoice.invoice_number == "INV-00039"


def test_earlier_credit_notes_allocate_first_and_voided_ones_not_at_all(exclusive_sale_json: dict[str, Any]) -> None:
    big = {**FLOUR, "Quantity": 25, "Total": 180, "Tax": 18}  # 198.00
    notes = [
        _note("late", "CR-00012", [CAKE], day="2024-03-19"),  # 76.97
        _note("early", "CR-00011", [big], day="2024-03-17"),
        _note("void", "CR-00010", [CAKE], status="VOIDED", day="2024-03-16"),
    ]
    allocations = credit_allocations(_sale(exclusive_sale_json, notes=notes))
    assert allocations["early"].amount == D("198.00")
    assert allocations["late"].amount == D("11.01")  # 209.01 - 198.00
    assert "void" not in allocations


def test_allocation_is_dated_when_both_documents_exist(exclusive_sale_json: dict[str, Any]) -> None:
    sale = _sale(exclusive_sale_json, notes=[_note("c1", "CR-00001", [CAKE], day="2024-03-01")])
    allocation = credit_allocations(sale)["c1"]
    payload = map_allocation(sale.credit_notes[0], allocation, invoice_id=INVOICE_ID, credit_note_id=NOTE_ID).to_json()
    assert payload == {
        "Invoice": {"InvoiceID": INVOICE_ID},
        "CreditNote": {"CreditNoteID": NOTE_ID},
        "Amount": "76.97",
        "Date": "2024-03-15",
    }

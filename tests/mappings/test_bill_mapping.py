"""map_bill and map_purchase_credit_note: Cin7 purchases to Xero ACCPAY bills and ACCPAYCREDIT notes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from mappings import (
    Cin7Purchase,
    Cin7Supplier,
    LineAmountTypes,
    MappingError,
    MappingRules,
    OrgReference,
    XeroBill,
    XeroInvoiceStatus,
    XeroLineItem,
    XeroTaxType,
    map_bill,
    map_purchase_credit_note,
    xero_totals,
)

from .conftest import load_json

EXPENSE_ACCOUNTS = frozenset({"300", "310", "429", "860"})


def _reference(**changes: Any) -> OrgReference:
    values: dict[str, Any] = {
        "account_codes": EXPENSE_ACCOUNTS,
        "rounding_account": "860",
        "base_currency": "AUD",
        "xero_tax_rates": {"INPUT": Decimal(10), "EXEMPTEXPENSES": Decimal(0), "BASEXCLUDED": Decimal(0)},
        "cin7_tax_rules": {"gst on expenses": Decimal(10), "gst free expenses": Decimal(0)},
    }
    values.update(changes)
    return OrgReference(**values)


@pytest.fixture
def simple_json() -> dict[str, Any]:
    return load_json("purchase_simple_aud.json")


@pytest.fixture
def advanced() -> Cin7Purchase:
    return Cin7Purchase.model_validate(load_json("purchase_advanced_usd.json"))


@pytest.fixture
def supplier() -> Cin7Supplier:
    return Cin7Supplier.model_validate(load_json("supplier.json"))


def _bill(
    purchase_json: dict[str, Any],
    rules: MappingRules,
    supplier: Cin7Supplier | None = None,
    reference: OrgReference | None = None,
) -> XeroBill:
    purchase = Cin7Purchase.model_validate(purchase_json)
    return map_bill(purchase, purchase.invoices[0], supplier=supplier, rules=rules, reference=reference or _reference())


def _error(purchase_json: dict[str, Any], rules: MappingRules, reference: OrgReference | None = None) -> MappingError:
    with pytest.raises(MappingError) as info:
        _bill(purchase_json, rules, reference=reference)
    return info.value


def test_simple_purchase_becomes_an_authorised_accpay_bill(
    simple_json: dict[str, Any], rules: MappingRules, supplier: Cin7Supplier
) -> None:
    body = _bill(simple_json, rules, supplier).to_json()
    assert body["Type"] == "ACCPAY"
    assert body["Contact"] == {"ContactNumber": "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e"}
    assert body["InvoiceNumber"] == "SUP-4411"  # the supplier's number, read from the misspelt key
    assert "Reference" not in body
    assert body["Date"] == "2024-03-04"
    assert body["Status"] == "AUTHORISED"
    assert body["LineAmountTypes"] == "Exclusive"
    assert "CurrencyRate" not in body
    assert [line["AccountCode"] for line in body["LineItems"]] == ["310", "310", "429", "860"]
    assert [line["TaxType"] for line in body["LineItems"][:3]] == ["INPUT"] * 3
    assert body["LineItems"][2]["Description"] == "Freight"


def test_due_date_comes_from_the_purchase_terms_else_the_supplier_term(
    simple_json: dict[str, Any], rules: MappingRules, supplier: Cin7Supplier
) -> None:
    assert _bill(simple_json, rules, supplier).due_date == date(2024, 3, 19)  # supplier: 15 days
    simple_json["Terms"] = "7 days"
    assert _bill(simple_json, rules, supplier).due_date == date(2024, 3, 11)
    simple_json["Invoice"]["InvoiceDueDate"] = "2024-04-01T00:00:00"
    assert _bill(simple_json, rules, supplier).due_date == date(2024, 4, 1)


def test_bill_totals_equal_cin7_to_the_cent_with_one_rounding_line(
    simple_json: dict[str, Any], rules: MappingRules
) -> None:
    bill = _bill(simple_json, rules)
    totals = xero_totals(bill)
    assert (totals.subtotal, totals.total_tax, totals.total) == (Decimal("72.35"), Decimal("7.23"), Decimal("79.58"))
    rounding = [line for line in bill.line_items or [] if line.description == "Rounding"]
    assert len(rounding) == 1
    assert rounding[0].line_amount == Decimal("0.01")
    assert rounding[0].tax_type is XeroTaxType.BASEXCLUDED


def test_bill_needs_no_rounding_line_when_the_lines_already_add_up(advanced: Cin7Purchase, rules: MappingRules) -> None:
    bill = map_bill(advanced, advanced.invoices[0], supplier=None, rules=rules, reference=_reference())
    assert all(line.description != "Rounding" for line in bill.line_items or [])
    totals = xero_totals(bill)
    assert bill.line_amount_types is LineAmountTypes.INCLUSIVE
    assert (totals.subtotal, totals.total_tax, totals.total) == (Decimal("167.50"), Decimal("14.75"), Decimal("182.25"))


def test_discounts_are_folded_into_the_unit_price(simple_json: dict[str, Any], rules: MappingRules) -> None:
    first = (_bill(simple_json, rules).line_items or [])[0]
    assert first.discount_rate is None
    assert first.unit_amount == Decimal("11.1110")  # 12.3456 less 10 %, at Xero's 4 dp
    assert first.line_amount == Decimal("33.33")
    assert "DiscountRate" not in first.to_json()


def test_a_bill_refuses_a_line_discount() -> None:
    line = XeroLineItem(description="x", quantity=Decimal(1), unit_amount=Decimal(10), discount_rate=Decimal(5))
    with pytest.raises(ValueError, match="DiscountRate"):
        XeroBill(line_items=[line])


def test_foreign_currency_rate_is_inverted_and_an_invoice_may_carry_its_own(
    advanced: Cin7Purchase, rules: MappingRules
) -> None:
    first = map_bill(advanced, advanced.invoices[0], supplier=None, rules=rules, reference=_reference())
    second = map_bill(advanced, advanced.invoices[1], supplier=None, rules=rules, reference=_reference())
    assert first.currency_code == "USD"
    assert first.currency_rate == Decimal("0.689988")  # 1 / 1.4493, from the purchase
    assert second.currency_rate == Decimal("0.666667")  # 1 / 1.5, the invoice's own rate
    assert first.to_json()["CurrencyRate"] == "0.689988"


def test_a_foreign_bill_at_rate_one_is_a_problem(simple_json: dict[str, Any], rules: MappingRules) -> None:
    simple_json["SupplierCurrency"] = "NZD"
    error = _error(simple_json, rules)
    assert any(p.field == "CurrencyRate" and "NZD" in p.message for p in error.problems)


def test_an_unknown_purchase_tax_rule_names_the_rule_the_line_and_the_table(
    simple_json: dict[str, Any], rules: MappingRules
) -> None:
    simple_json["Invoice"]["Lines"][0]["TaxRule"] = "GST on Income"  # a sales rule: not in purchase_tax_types
    error = _error(simple_json, rules)
    problem = next(p for p in error.problems if p.field == "Lines[1].TaxRule")
    assert problem.value == "GST on Income"
    assert "line 1 (SKU APL-GS)" in problem.message
    assert "purchase_tax_types" in problem.message
    assert "bill SUP-4411 of purchase PO-00131" in problem.message


def test_a_purchase_tax_rate_that_differs_from_xeros_names_the_rule_and_the_line(
    simple_json: dict[str, Any], rules: MappingRules
) -> None:
    reference = _reference(cin7_tax_rules={"gst on expenses": Decimal(15), "gst free expenses": Decimal(0)})
    error = _error(simple_json, rules, reference)
    lines = sorted(p.field for p in error.problems)
    assert lines == ["Lines[1].TaxRule", "Lines[2].TaxRule", "Lines[3].TaxRule"]
    first = next(p for p in error.problems if p.field == "Lines[1].TaxRule")
    assert "'GST on Expenses'" in first.message and "15%" in first.message and "INPUT at 10%" in first.message


def test_an_inactive_xero_purchase_tax_type_is_a_problem(simple_json: dict[str, Any], rules: MappingRules) -> None:
    error = _error(simple_json, rules, _reference(xero_tax_rates={"BASEXCLUDED": Decimal(0)}))
    assert all("not an active tax rate" in p.message for p in error.problems)


def test_a_line_without_account_is_a_problem_unless_the_rules_give_a_default(
    simple_json: dict[str, Any], rules: MappingRules, supplier: Cin7Supplier
) -> None:
    simple_json["Invoice"]["Lines"][1]["Account"] = ""
    with pytest.raises(MappingError) as info:
        _bill(simple_json, rules, supplier)  # the supplier's AccountPayable (800) is not a line account
    problem = info.value.problem
    assert (problem.field, problem.value) == ("Lines[2].Account", None)
    assert "default_expense_account" in problem.message and "SUP-4411" in problem.message

    with_default = rules.model_copy(update={"default_expense_account": "300"})
    bill = _bill(simple_json, with_default, supplier)
    assert [line.account_code for line in bill.line_items or []][:2] == ["310", "300"]


def test_a_line_account_xero_does_not_have_is_a_problem(simple_json: dict[str, Any], rules: MappingRules) -> None:
    simple_json["Invoice"]["AdditionalCharges"][0]["Account"] = "999"
    problem = _error(simple_json, rules).problem
    assert (problem.field, problem.value) == ("Lines[3].Account", "999")


def test_every_problem_comes_in_one_error_naming_purchase_invoice_and_field(
    simple_json: dict[str, Any], rules: MappingRules
) -> None:
    simple_json["SupplierID"] = None
    simple_json["TaxCalculation"] = "Sideways"
    simple_json["Invoice"]["InvoiceDate"] = None
    simple_json["Invoice"]["Lines"][0]["TaxRule"] = "Mystery"
    error = _error(simple_json, rules)
    fields = {p.field for p in error.problems}
    assert {"SupplierID", "TaxCalculation", "InvoiceDate", "Lines[1].TaxRule"} <= fields
    assert "PO-00131" in str(error)
    assert all("SUP-4411" in p.message or "PO-00131" in p.message for p in error.problems)


def test_a_bill_without_the_suppliers_number_is_a_problem(simple_json: dict[str, Any], rules: MappingRules) -> None:
    simple_json["Invoice"]["InvocieNumber"] = " "
    problem = _error(simple_json, rules).problem
    assert problem.field == "InvoiceNumber" and "purchase PO-00131" in problem.message


def test_totals_that_differ_by_more_than_rounding_are_a_problem(
    simple_json: dict[str, Any], rules: MappingRules
) -> None:
    simple_json["Invoice"]["Total"] = 80.5774
    simple_json["Invoice"]["TotalBeforeTax"] = 73.3431
    error = _error(simple_json, rules)
    assert {p.field for p in error.problems} == {"SubTotal", "Total"}


def test_a_purchase_credit_note_becomes_an_authorised_accpaycredit(advanced: Cin7Purchase, rules: MappingRules) -> None:
    note = map_purchase_credit_note(
        advanced, advanced.credit_notes[0], supplier=None, rules=rules, reference=_reference()
    )
    body = note.to_json()
    assert body["Type"] == "ACCPAYCREDIT"
    assert body["CreditNoteNumber"] == "CR-00012"
    assert "Reference" not in body
    assert note.status is XeroInvoiceStatus.AUTHORISED
    assert body["Date"] == "2024-04-19"
    assert body["CurrencyRate"] == "0.689988"
    line = body["LineItems"][0]
    assert (line["UnitAmount"], line["LineAmount"], line["TaxType"]) == ("9.9000", "19.80", "INPUT")
    assert "DiscountRate" not in line
    totals = xero_totals(note)
    assert (totals.subtotal, totals.total_tax, totals.total) == (Decimal("18.00"), Decimal("1.80"), Decimal("19.80"))


def test_a_purchase_credit_note_without_number_or_date_is_a_problem(
    advanced: Cin7Purchase, rules: MappingRules
) -> None:
    note = advanced.credit_notes[0].model_copy(update={"credit_note_number": "", "credit_note_date": None})
    with pytest.raises(MappingError) as info:
        map_purchase_credit_note(advanced, note, supplier=None, rules=rules, reference=_reference())
    assert {p.field for p in info.value.problems} == {"CreditNoteNumber", "CreditNoteDate"}


def test_the_tax_rule_falls_back_to_the_purchase_then_the_supplier(
    simple_json: dict[str, Any], rules: MappingRules, supplier: Cin7Supplier
) -> None:
    simple_json["TaxRule"] = ""
    simple_json["Invoice"]["Lines"][1]["TaxRule"] = None
    bill = _bill(simple_json, rules, supplier)  # the supplier's TaxRule: GST on Expenses
    assert (bill.line_items or [])[1].tax_type is XeroTaxType.INPUT
    problem = _error(simple_json, rules).problem  # no supplier: nothing to fall back on
    assert problem.field == "Lines[2].TaxRule" and "missing Cin7 tax rule" in problem.message


def test_base_currency_must_be_the_organisations(simple_json: dict[str, Any], rules: MappingRules) -> None:
    problem = _error(simple_json, rules, _reference(base_currency="NZD")).problem
    assert problem.field == "BaseCurrency" and "purchase PO-00131 (8e1a2b3c-" in problem.message

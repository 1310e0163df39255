"""map_invoice: Cin7 sale invoices to Xero ACCREC payloads that show Cin7's totals to the cent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from mappings import (
    Cin7Customer,
    Cin7Sale,
    LineAmountTypes,
    MappingError,
    MappingRules,
    OrgReference,
    XeroInvoice,
    XeroTaxType,
    map_invoice,
    xero_totals,
)

from .conftest import REVENUE_ACCOUNTS


def _map(
    sale: Cin7Sale,
    rules: MappingRules,
    customer: Cin7Customer | None = None,
    valid_accounts: frozenset[str] | None = REVENUE_ACCOUNTS,
    reference: OrgReference | None = None,
) -> XeroInvoice:
    reference = reference or OrgReference(account_codes=valid_accounts, rounding_account="860")
    return map_invoice(sale, sale.invoices[0], customer=customer, rules=rules, reference=reference)


def _error(sale_json: dict[str, Any], rules: MappingRules) -> MappingError:
    sale = Cin7Sale.model_validate(sale_json)
    with pytest.raises(MappingError) as info:
        _map(sale, rules)
    return info.value


def _line_error(sale_json: dict[str, Any], rules: MappingRules, index: int, **changes: object) -> MappingError:
    """The error of the sale once line `index` of its first invoice carries `changes`."""
    sale_json["Invoices"][0]["Lines"][index].update(changes)
    return _error(sale_json, rules)


@pytest.mark.parametrize(
    ("sale_fixture", "amount_types", "expected"),
    [
        ("exclusive_sale", LineAmountTypes.EXCLUSIVE, (Decimal("195.01"), Decimal("14.00"), Decimal("209.01"))),
        ("inclusive_sale", LineAmountTypes.INCLUSIVE, (Decimal("409.17"), Decimal("15.37"), Decimal("424.54"))),
    ],
    ids=["exclusive", "inclusive"],
)
def test_invoice_totals_match_cin7_to_the_cent(
    request: pytest.FixtureRequest,
    rules: MappingRules,
    sale_fixture: str,
    amount_types: LineAmountTypes,
    expected: tuple[Decimal, Decimal, Decimal],
) -> None:
    payload = _map(request.getfixturevalue(sale_fixture), rules)
    totals = xero_totals(payload)
    assert payload.line_amount_types is amount_types
    assert (totals.subtotal, totals.total_tax, totals.total) == expected


def test_exclusive_invoice_serialises_to_xero_json(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    body = _map(exclusive_sale, rules).to_json()
    assert body["Type"] == "ACCREC"
    assert body["InvoiceNumber"] == "INV-00039"
    assert body["Contact"] == {"ContactNumber": "74de0528-3f1b-4c2d-8e9a-0b1c2d3e4f50"}
    assert body["Status"] == "AUTHORISED"
    assert body["Date"] == "2024-03-15"
    assert body["DueDate"] == "2024-04-14"
    assert body["LineAmountTypes"] == "Exclusive"
    assert body["CurrencyCode"] == "AUD"
    assert "CurrencyRate" not in body
    assert body["LineItems"][0] == {
        "Description": "BRD-001 Baked Bread",
        "Quantity": "3",
        "UnitAmount": "12.3456",
        "AccountCode": "200",
        "TaxType": "OUTPUT",
        "TaxAmount": "3.70",
        "LineAmount": "37.04",
    }


def test_four_decimal_place_prices_are_kept_and_line_amount_is_cin7s(
    exclusive_sale: Cin7Sale, rules: MappingRules
) -> None:
    line = _map(exclusive_sale, rules).line_items or []
    assert line[0].unit_amount == Decimal("12.3456")
    assert line[0].quantity == Decimal(3)
    assert line[0].line_amount == Decimal("37.04")


def test_discount_of_twelve_and_a_half_percent_rounds_half_up(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    cake = (_map(exclusive_sale, rules).line_items or [])[1]
    assert cake.discount_rate == Decimal("12.5")
    assert cake.line_amount == Decimal("69.97")  # 4 x 19.99 x 0.875 = 69.965
    assert cake.to_json()["DiscountRate"] == "12.5"


def test_zero_discount_is_omitted_from_the_payload(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    first = (_map(exclusive_sale, rules).line_items or [])[0]
    assert "DiscountRate" not in first.to_json()


def test_fractional_quantities_are_sent_unchanged(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    flour = (_map(exclusive_sale, rules).line_items or [])[2]
    assert flour.quantity == Decimal("2.5")
    assert flour.to_json()["Quantity"] == "2.5"
    assert flour.line_amount == Decimal("18.00")


def test_line_comment_is_appended_on_a_new_line(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    flour = (_map(exclusive_sale, rules).line_items or [])[2]
    assert flour.description == "FLR-KG Flour (kg)\nStone-ground"


def test_line_account_from_cin7_is_used_as_the_account_code(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    flour = (_map(exclusive_sale, rules).line_items or [])[2]
    assert flour.account_code == "260"


def test_zero_quantity_zero_total_lines_are_dropped(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    descriptions = [li.description for li in _map(exclusive_sale, rules).line_items or []]
    assert not any("SAMPLE" in d for d in descriptions)
    assert len(descriptions) == 6  # 6 product lines - 1 dropped + 1 freight


def test_zero_quantity_line_with_a_total_is_reported_not_dropped(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    error = _line_error(exclusive_sale_json, rules, 4, Total=5)
    assert any(p.field == "Lines[5].Total" and p.value == "5.00" for p in error.problems)


def test_freight_is_an_additional_charge_line(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    freight = (_map(exclusive_sale, rules).line_items or [])[-1]
    assert freight.description == "Freight"
    assert freight.line_amount == Decimal(15)
    assert freight.tax_amount == Decimal("1.5")
    assert freight.tax_type is XeroTaxType.OUTPUT
    assert freight.account_code == "200"


def test_item_code_is_never_sent(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    for line in _map(exclusive_sale, rules).to_json()["LineItems"]:
        assert "ItemCode" not in line


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("GST on Income", XeroTaxType.OUTPUT),
        ("GST Free Income", XeroTaxType.EXEMPTOUTPUT),
        ("GST Free Exports", XeroTaxType.EXEMPTEXPORT),
        ("BAS Excluded", XeroTaxType.BASEXCLUDED),
        ("Tax on Sales", XeroTaxType.OUTPUT),
        ("Tax Exempt", XeroTaxType.EXEMPTOUTPUT),
        ("  gst ON income ", XeroTaxType.OUTPUT),
    ],
)
def test_every_default_tax_rule_maps_to_its_xero_tax_type(
    exclusive_sale_json: dict[str, Any], rules: MappingRules, rule: str, expected: XeroTaxType
) -> None:
    # A zero-rated line whose totals do not depend on the rate, so only the tax type varies.
    invoice = exclusive_sale_json["Invoices"][0]
    invoice["Lines"] = [invoice["Lines"][3] | {"TaxRule": rule}]
    invoice["AdditionalCharges"] = []
    invoice.update({"TotalBeforeTax": 45, "Tax": 0, "Total": 45})
    payload = _map(Cin7Sale.model_validate(exclusive_sale_json), rules)
    assert [li.tax_type for li in payload.line_items or []] == [expected]


def test_line_without_tax_rule_uses_the_sale_tax_rule(inclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    carton = (_map(inclusive_sale, rules).line_items or [])[2]
    assert carton.tax_type is XeroTaxType.EXEMPTEXPORT


def test_unknown_tax_rule_raises_mapping_error_naming_the_rule(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    error = _line_error(exclusive_sale_json, rules, 1, TaxRule="Zero Rated Imports")
    assert error.value == "Zero Rated Imports"
    assert error.field == "Lines[2].TaxRule"
    assert error.message == (
        "unknown Cin7 tax rule 'Zero Rated Imports' on line 2 (SKU CAKE-12) of invoice INV-00039: "
        "add it to the tax_types table in the rules file"
    )
    assert "Zero Rated Imports" in str(error)


def test_unknown_account_raises_mapping_error_naming_the_code(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    error = _line_error(exclusive_sale_json, rules, 0, Account="4999")
    assert error.value == "4999"
    assert "'4999'" in error.message
    assert "line 1 (SKU BRD-001)" in error.message


def test_unknown_tax_rule_and_unknown_account_are_both_reported_at_once(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    lines = exclusive_sale_json["Invoices"][0]["Lines"]
    lines[1]["TaxRule"] = "Zero Rated Imports"
    lines[2]["Account"] = "4999"
    error = _error(exclusive_sale_json, rules)
    assert [(p.field, p.value) for p in error.problems] == [
        ("Lines[2].TaxRule", "Zero Rated Imports"),
        ("Lines[3].Account", "4999"),
    ]
    assert "Zero Rated Imports" in str(error)
    assert "4999" in str(error)


def test_accounts_are_not_checked_when_no_chart_is_given(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    exclusive_sale_json["Invoices"][0]["Lines"][0]["Account"] = "4999"
    payload = _map(Cin7Sale.model_validate(exclusive_sale_json), rules, valid_accounts=None)
    assert (payload.line_items or [])[0].account_code == "4999"


def test_account_codes_table_overrides_the_cin7_account(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    remapped = rules.model_copy(update={"account_codes": {"260": "200"}})
    flour = (_map(exclusive_sale, remapped).line_items or [])[2]
    assert flour.account_code == "200"


def test_line_without_account_uses_the_customer_revenue_account(
    inclusive_sale: Cin7Sale, rules: MappingRules, customer: Cin7Customer
) -> None:
    paperwork = (_map(inclusive_sale, rules, customer=customer).line_items or [])[3]
    assert paperwork.account_code == "260"


def test_line_without_account_and_no_customer_uses_the_default_revenue_account(
    inclusive_sale: Cin7Sale, rules: MappingRules
) -> None:
    paperwork = (_map(inclusive_sale, rules).line_items or [])[3]
    assert paperwork.account_code == "200"


def test_description_falls_back_to_the_name_when_sku_is_blank(inclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    paperwork = (_map(inclusive_sale, rules).line_items or [])[3]
    assert paperwork.description == "Customs paperwork"


def test_description_is_never_empty_and_at_most_4000_characters(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    lines = exclusive_sale_json["Invoices"][0]["Lines"]
    lines[0].update({"SKU": None, "Name": "", "Comment": None})
    lines[1]["Comment"] = "x" * 5000
    items = _map(Cin7Sale.model_validate(exclusive_sale_json), rules).line_items or []
    assert items[0].description == "(no description)"
    assert len(items[1].description) == 4000
    assert items[1].description.startswith("CAKE-12 Birthday Cake\nxxx")


def test_foreign_currency_rate_is_inverted_from_cin7s_direction_to_xeros(
    inclusive_sale: Cin7Sale, rules: MappingRules
) -> None:
    # An AUD company selling in USD: Cin7 says 1.4493 AUD for one USD; Xero wants USD for one AUD.
    body = _map(inclusive_sale, rules).to_json()
    assert body["CurrencyCode"] == "USD"
    assert body["CurrencyRate"] == "0.689988"


def test_foreign_currency_falls_back_to_the_sale_rate(inclusive_sale_json: dict[str, Any], rules: MappingRules) -> None:
    inclusive_sale_json["Invoices"][0]["CurrencyConversionRate"] = None
    body = _map(Cin7Sale.model_validate(inclusive_sale_json), rules).to_json()
    assert body["CurrencyRate"] == "0.652273"  # 1 / 1.5331


@pytest.mark.parametrize(
    ("rate", "shown"), [(None, "no currency rate"), (0, "rate 0"), (1, "rate 1"), (-1.2, "rate -1.2")]
)
def test_a_suspicious_foreign_rate_is_a_mapping_problem_naming_it(
    inclusive_sale_json: dict[str, Any], rules: MappingRules, rate: float | None, shown: str
) -> None:
    inclusive_sale_json["Invoices"][0]["CurrencyConversionRate"] = rate
    inclusive_sale_json["CurrencyRate"] = rate
    error = _error(inclusive_sale_json, rules)
    assert error.field in ("CurrencyConversionRate", "CurrencyRate")
    assert "invoice INV-00101 is in USD (base AUD)" in error.message
    assert shown in error.message


def test_a_base_currency_invoice_with_a_rate_other_than_one_is_a_mapping_problem(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    exclusive_sale_json["Invoices"][0]["CurrencyConversionRate"] = 1.45
    error = _error(exclusive_sale_json, rules)
    assert (error.field, error.value) == ("CurrencyConversionRate", "1.45")


def test_base_currency_invoice_has_no_currency_rate(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    payload = _map(exclusive_sale, rules)
    assert payload.currency_code == "AUD"
    assert payload.currency_rate is None


def test_due_date_comes_from_invoice_due_date_when_present(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    assert _map(exclusive_sale, rules).due_date == date(2024, 4, 14)


def test_due_date_is_computed_from_sale_terms_when_cin7_has_none(inclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    # 2024-01-31 on "20th of following month"
    assert _map(inclusive_sale, rules).due_date == date(2024, 2, 20)


def test_due_date_uses_customer_payment_term_when_the_sale_has_no_terms(
    inclusive_sale_json: dict[str, Any], rules: MappingRules, customer: Cin7Customer
) -> None:
    inclusive_sale_json["Terms"] = ""
    sale = Cin7Sale.model_validate(inclusive_sale_json)
    payload = _map(sale, rules, customer=customer)  # customer terms: 30 days
    assert payload.due_date == date(2024, 3, 1)


def test_unknown_payment_terms_raise_mapping_error_naming_them(
    inclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    inclusive_sale_json["Terms"] = "When the cows come home"
    error = _error(inclusive_sale_json, rules)
    assert error.field == "Terms"
    assert error.value == "When the cows come home"
    assert "'When the cows come home'" in error.message


def test_reference_falls_back_to_the_order_number(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    assert _map(exclusive_sale, rules).reference == "SO-00092"


def test_reference_is_the_customer_reference_when_present(inclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    assert _map(inclusive_sale, rules).reference == "PO-7781"


def test_invoice_status_follows_the_rules(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    drafts = rules.model_copy(update={"invoice_status": "DRAFT"})
    assert _map(exclusive_sale, drafts).to_json()["Status"] == "DRAFT"


def test_unknown_tax_calculation_is_a_mapping_error(exclusive_sale_json: dict[str, Any], rules: MappingRules) -> None:
    exclusive_sale_json["TaxCalculation"] = "Compound"
    error = _error(exclusive_sale_json, rules)
    assert error.field == "TaxCalculation"
    assert error.value == "COMPOUND"


def test_cin7_header_a_cent_from_the_lines_gets_one_rounding_line(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    invoice = exclusive_sale_json["Invoices"][0]
    invoice["Tax"] = 14.01
    invoice["Total"] = 209.02
    payload = _map(Cin7Sale.model_validate(exclusive_sale_json), rules)
    totals = xero_totals(payload)
    assert (totals.subtotal, totals.total_tax, totals.total) == (Decimal("195.01"), Decimal("14.01"), Decimal("209.02"))
    rounding = (payload.line_items or [])[-1]
    assert (rounding.description, rounding.account_code) == ("Rounding", "860")
    assert (rounding.line_amount, rounding.tax_amount) == (Decimal("0.00"), Decimal("0.01"))
    # The cent of tax goes with the tax type that carries the tax, so the BAS shows Cin7's GST.
    assert rounding.tax_type is XeroTaxType.OUTPUT


def test_four_dp_lines_are_sent_at_two_and_a_rounding_line_matches_all_three_totals(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    invoice = exclusive_sale_json["Invoices"][0]
    # Three 4-dp lines whose 2-dp roundings add up to 2 cents less than Cin7's own subtotal.
    line = {
        "Name": "Part",
        "Quantity": 1,
        "Price": "10.0049",
        "Discount": 0,
        "Tax": "1.0005",
        "Total": "10.0049",
        "TaxRule": "GST on Income",
        "Account": "200",
    }
    invoice["Lines"] = [{**line, "SKU": f"P{i}"} for i in range(3)]
    invoice["AdditionalCharges"] = []
    invoice.update({"TotalBeforeTax": "30.0147", "Tax": "3.0015", "Total": "33.0162"})
    payload = _map(Cin7Sale.model_validate(exclusive_sale_json), rules)
    items = payload.line_items or []
    assert [(i.line_amount, i.tax_amount) for i in items[:3]] == [(Decimal("10.00"), Decimal("1.00"))] * 3
    totals = xero_totals(payload)
    assert (totals.subtotal, totals.total_tax, totals.total) == (Decimal("30.02"), Decimal("3.00"), Decimal("33.02"))
    assert (items[3].description, items[3].line_amount, items[3].tax_type) == (
        "Rounding",
        Decimal("0.02"),
        XeroTaxType.BASEXCLUDED,
    )


def test_totals_further_apart_than_rounding_are_a_mapping_problem(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    invoice = exclusive_sale_json["Invoices"][0]
    invoice["TotalBeforeTax"] = 195.11
    invoice["Total"] = 209.11
    error = _error(exclusive_sale_json, rules)
    fields = {p.field: p for p in error.problems}
    assert set(fields) == {"SubTotal", "Total"}
    assert "195.01" in fields["SubTotal"].message and "195.11" in fields["SubTotal"].message
    assert "max_rounding_difference 0.05" in fields["SubTotal"].message


def test_a_rounding_line_needs_a_rounding_account(exclusive_sale_json: dict[str, Any], rules: MappingRules) -> None:
    invoice = exclusive_sale_json["Invoices"][0]
    invoice["Tax"] = 14.01
    invoice["Total"] = 209.02
    sale = Cin7Sale.model_validate(exclusive_sale_json)
    with pytest.raises(MappingError) as info:
        _map(sale, rules, reference=OrgReference(account_codes=REVENUE_ACCOUNTS))
    assert info.value.field == "RoundingAccount"
    assert "set rounding_account in the rules file" in info.value.message
    own = rules.model_copy(update={"rounding_account": "270"})
    with pytest.raises(MappingError) as info:
        _map(sale, own, reference=OrgReference(account_codes=REVENUE_ACCOUNTS, rounding_account="860"))
    assert (info.value.field, info.value.value) == ("RoundingAccount", "270")


def test_cin7_line_total_more_than_a_cent_from_its_product_names_both_values(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    invoice = exclusive_sale_json["Invoices"][0]
    invoice["Lines"][1]["Total"] = 69.95  # 69.965 by quantity x price
    invoice["TotalBeforeTax"] = 194.99
    invoice["Total"] = 208.99
    error = _error(exclusive_sale_json, rules)
    assert [p.field for p in error.problems] == ["Lines[2].Total"]
    assert "69.95" in error.message
    assert "69.97" in error.message


@pytest.mark.parametrize(("field", "value"), [("Quantity", "1.00001"), ("Price", "12.34561")])
def test_quantity_or_price_with_more_than_four_decimals_is_a_mapping_problem(
    exclusive_sale_json: dict[str, Any], rules: MappingRules, field: str, value: str
) -> None:
    error = _line_error(exclusive_sale_json, rules, 0, **{field: value})
    assert any(p.field == f"Lines[1].{field}" and p.value == value for p in error.problems)


@pytest.mark.parametrize(("field", "value"), [("Price", "1e25"), ("Quantity", "-2e12"), ("Tax", "0.00000000001")])
def test_absurd_amounts_are_a_mapping_problem_naming_the_field(
    exclusive_sale_json: dict[str, Any], rules: MappingRules, field: str, value: str
) -> None:
    error = _line_error(exclusive_sale_json, rules, 0, **{field: value})
    assert any(p.field == f"Lines[1].{field}" for p in error.problems), error.problems


def test_a_date_out_of_range_is_a_mapping_problem(exclusive_sale_json: dict[str, Any], rules: MappingRules) -> None:
    exclusive_sale_json["Invoices"][0]["InvoiceDate"] = "2099-03-01T00:00:00"
    error = _error(exclusive_sale_json, rules)
    assert error.field == "InvoiceDate"
    assert "2099-03-01" in error.message


def test_four_dp_line_tax_is_sent_at_two(exclusive_sale_json: dict[str, Any], rules: MappingRules) -> None:
    exclusive_sale_json["Invoices"][0]["Lines"][0]["Tax"] = "3.7040"
    items = _map(Cin7Sale.model_validate(exclusive_sale_json), rules).line_items or []
    assert items[0].tax_amount == Decimal("3.70")


def test_money_is_sent_with_exactly_two_decimal_places(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    gift = _map(exclusive_sale, rules).to_json()["LineItems"][3]
    assert (gift["LineAmount"], gift["TaxAmount"], gift["UnitAmount"]) == ("45.00", "0.00", "45")


def test_invoice_without_lines_is_a_mapping_error(exclusive_sale_json: dict[str, Any], rules: MappingRules) -> None:
    invoice = exclusive_sale_json["Invoices"][0]
    invoice.update({"Lines": [], "AdditionalCharges": [], "TotalBeforeTax": 0, "Tax": 0, "Total": 0})
    assert _error(exclusive_sale_json, rules).field == "Lines"


def test_mapping_is_deterministic(exclusive_sale: Cin7Sale, rules: MappingRules) -> None:
    assert _map(exclusive_sale, rules).to_json() == _map(exclusive_sale, rules).to_json()


def test_too_long_invoice_number_is_reported_not_cut(exclusive_sale_json: dict[str, Any], rules: MappingRules) -> None:
    exclusive_sale_json["Invoices"][0]["InvoiceNumber"] = "INV-" + "9" * 300
    error = _error(exclusive_sale_json, rules)
    assert error.field == "InvoiceNumber"
    assert "255" in error.message


def test_a_cin7_base_currency_other_than_xeros_is_a_mapping_problem(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    sale = Cin7Sale.model_validate({**exclusive_sale_json, "BaseCurrency": "NZD", "CustomerCurrency": "NZD"})
    with pytest.raises(MappingError) as info:
        _map(sale, rules, reference=OrgReference(account_codes=REVENUE_ACCOUNTS, base_currency="AUD"))
    assert (info.value.field, info.value.value) == ("BaseCurrency", "NZD")
    assert "is not the Xero organisation's AUD" in info.value.message
    assert _map(Cin7Sale.model_validate(exclusive_sale_json), rules, reference=OrgReference(base_currency="AUD"))

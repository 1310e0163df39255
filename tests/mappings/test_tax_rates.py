"""Each line's tax checked against the Cin7 rule's rate and the Xero tax type's (`mappings.lines`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mappings import Cin7Sale, MappingError, MappingRules, OrgReference, XeroTaxType, map_invoice, tax_rule_key

from .conftest import REVENUE_ACCOUNTS

XERO_RATES = {"OUTPUT": Decimal(10), "EXEMPTOUTPUT": Decimal(0), "EXEMPTEXPORT": Decimal(0), "BASEXCLUDED": Decimal(0)}
CIN7_RULES = {
    tax_rule_key(name): Decimal(rate)
    for name, rate in (("GST on Income", 10), ("Tax on Sales", 10), ("GST Free Income", 0), ("Tax Exempt", 0))
}


def _reference(**changes: Any) -> OrgReference:
    values: dict[str, Any] = {
        "account_codes": REVENUE_ACCOUNTS,
        "rounding_account": "860",
        "xero_tax_rates": XERO_RATES,
        "cin7_tax_rules": CIN7_RULES,
        **changes,
    }
    return OrgReference(**values)


def _map(sale_json: dict[str, Any], rules: MappingRules, reference: OrgReference) -> Any:
    sale = Cin7Sale.model_validate(sale_json)
    return map_invoice(sale, sale.invoices[0], customer=None, rules=rules, reference=reference)


def test_lines_whose_tax_fits_both_rates_map(exclusive_sale_json: dict[str, Any], rules: MappingRules) -> None:
    assert _map(exclusive_sale_json, rules, _reference()).line_items


def test_a_zero_percent_cin7_rule_mapped_to_ten_percent_gst_is_a_mapping_problem(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    # "Tax Exempt" is 0 % in Cin7, but the rules file sends it as OUTPUT (GST on Income, 10 %): GST-coded
    # sales with no GST on the BAS.
    wrong = rules.model_copy(update={"tax_types": {**rules.tax_types, "Tax Exempt": XeroTaxType.OUTPUT}})
    with pytest.raises(MappingError) as info:
        _map(exclusive_sale_json, wrong, _reference())
    problem = info.value
    assert (problem.field, problem.value) == ("Lines[6].TaxRule", "tax exempt")
    assert "'tax exempt'" in problem.message and "is 0%" in problem.message
    assert "Xero tax type OUTPUT at 10%" in problem.message
    assert "line 6 (SKU DON) of invoice INV-00039" in problem.message


def test_a_line_whose_tax_is_not_its_rules_rate_is_a_mapping_problem(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    exclusive_sale_json["Invoices"][0]["Lines"][3]["Tax"] = 4.5  # a 0 % line carrying tax
    exclusive_sale_json["Invoices"][0]["Tax"] = 18.5
    exclusive_sale_json["Invoices"][0]["Total"] = 213.51
    with pytest.raises(MappingError) as info:
        _map(exclusive_sale_json, rules, _reference())
    problem = info.value
    assert (problem.field, problem.value) == ("Lines[4].Tax", "4.50")
    assert "is not 0% (tax rule 'GST Free Income', Xero EXEMPTOUTPUT) of the line amount 45.00" in problem.message


def test_a_tax_type_xero_does_not_have_is_a_mapping_problem(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    rates = {k: v for k, v in XERO_RATES.items() if k != "EXEMPTOUTPUT"}
    with pytest.raises(MappingError) as info:
        _map(exclusive_sale_json, rules, _reference(xero_tax_rates=rates))
    assert {p.field for p in info.value.problems} == {"Lines[4].TaxRule", "Lines[6].TaxRule"}
    assert "not an active tax rate in Xero" in info.value.message


def test_a_rule_cin7_does_not_list_is_checked_against_xeros_rate(
    exclusive_sale_json: dict[str, Any], rules: MappingRules
) -> None:
    # Cin7's own examples name rules that ref/tax lacks; the line is still held to the Xero rate.
    exclusive_sale_json["Invoices"][0]["Lines"][2]["Tax"] = 0
    exclusive_sale_json["Invoices"][0]["Tax"] = 12.2
    exclusive_sale_json["Invoices"][0]["Total"] = 207.21
    cin7 = {k: v for k, v in CIN7_RULES.items() if k != tax_rule_key("Tax on Sales")}
    with pytest.raises(MappingError) as info:
        _map(exclusive_sale_json, rules, _reference(cin7_tax_rules=cin7))
    assert info.value.field == "Lines[3].Tax"
    assert "is not 10% (tax rule 'Tax on Sales', Xero OUTPUT)" in info.value.message


def test_inclusive_lines_are_checked_as_tax_inclusive(inclusive_sale_json: dict[str, Any], rules: MappingRules) -> None:
    payload = _map(inclusive_sale_json, rules, _reference())
    assert payload.line_items

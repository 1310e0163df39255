"""The rules file's purchase side: purchase_tax_types, default_expense_account."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mappings import MappingError, MappingRules, XeroTaxType, load_rules


def test_default_purchase_tax_types(rules: MappingRules) -> None:
    assert rules.purchase_tax_types == {
        "GST on Expenses": XeroTaxType.INPUT,
        "GST Free Expenses": XeroTaxType.EXEMPTEXPENSES,
        "BAS Excluded": XeroTaxType.BASEXCLUDED,
        "GST on Capital": XeroTaxType.CAPEXINPUT,
        "GST on Imports": XeroTaxType.GSTONIMPORTS,
    }
    assert rules.default_expense_account is None


def test_purchase_and_sales_tables_are_looked_up_separately(rules: MappingRules) -> None:
    assert rules.tax_type_for(" gst  on EXPENSES ", side="purchases") is XeroTaxType.INPUT
    assert rules.tax_type_for("BAS Excluded", side="purchases") is XeroTaxType.BASEXCLUDED
    with pytest.raises(MappingError, match="purchase_tax_types"):
        rules.tax_type_for("GST on Income", side="purchases")
    with pytest.raises(MappingError, match="the tax_types table"):
        rules.tax_type_for("GST on Expenses")


def test_an_override_adds_purchase_rules_and_a_default_expense_account(rules_file: Callable[[str], Path]) -> None:
    rules = load_rules(
        rules_file('default_expense_account = " 300 "\n[purchase_tax_types]\n"Input Taxed" = "inputtaxed"\n')
    )
    assert rules.default_expense_account == "300"
    assert rules.purchase_tax_types["Input Taxed"] is XeroTaxType.INPUTTAXED
    assert rules.purchase_tax_types["GST on Expenses"] is XeroTaxType.INPUT


def test_a_purchase_tax_type_of_another_region_is_refused(rules_file: Callable[[str], Path]) -> None:
    with pytest.raises(MappingError, match="INPUT2"):
        load_rules(rules_file('[purchase_tax_types]\n"GST" = "INPUT2"\n'))


def test_switching_region_drops_the_default_purchase_table_too(rules_file: Callable[[str], Path]) -> None:
    rules = load_rules(
        rules_file(
            'region = "NZ"\n[tax_types]\n"GST on Sales" = "OUTPUT2"\n'
            '[purchase_tax_types]\n"GST on Purchases" = "INPUT2"\n'
        )
    )
    assert rules.purchase_tax_types == {"GST on Purchases": XeroTaxType.INPUT2}


def test_duplicate_purchase_rule_names_are_refused(rules: MappingRules) -> None:
    data = rules.model_dump()
    data["purchase_tax_types"] = {"GST on Expenses": "INPUT", "gst on expenses ": "INPUT"}
    with pytest.raises(ValueError, match="same name"):
        MappingRules.model_validate(data)

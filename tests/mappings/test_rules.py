"""Mapping rules: the packaged defaults, overrides, and lookups that refuse to guess."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mappings import MappingError, MappingRules, XeroTaxType, load_rules

VALID = frozenset({"200", "260"})


def test_default_rules_hold_exactly_the_agreed_tax_table() -> None:
    rules = load_rules()
    assert rules.region == "AU"
    assert rules.default_revenue_account == "200"
    assert rules.invoice_status == "AUTHORISED"
    assert rules.description_template == "{sku} {name}"
    assert rules.account_codes == {}
    assert rules.tax_types == {
        "GST on Income": XeroTaxType.OUTPUT,
        "GST Free Income": XeroTaxType.EXEMPTOUTPUT,
        "GST Free Exports": XeroTaxType.EXEMPTEXPORT,
        "BAS Excluded": XeroTaxType.BASEXCLUDED,
        "Tax on Sales": XeroTaxType.OUTPUT,
        "Tax Exempt": XeroTaxType.EXEMPTOUTPUT,
    }


def test_tax_rule_lookup_ignores_case_and_surrounding_whitespace() -> None:
    assert load_rules().tax_type_for("  gst FREE exports\t") is XeroTaxType.EXEMPTEXPORT


@pytest.mark.parametrize("rule", ["Zero Rated Imports", "GST on Expenses", "GST"])
def test_unknown_tax_rule_raises_naming_it(rule: str) -> None:
    with pytest.raises(MappingError) as info:
        load_rules().tax_type_for(rule)
    assert info.value.value == rule
    assert f"'{rule}'" in info.value.message
    assert "tax_types" in info.value.message


def test_blank_tax_rule_raises() -> None:
    with pytest.raises(MappingError, match="missing Cin7 tax rule"):
        load_rules().tax_type_for("  ")


def test_account_is_used_as_is_unless_overridden() -> None:
    rules = load_rules().model_copy(update={"account_codes": {"4000": "200"}})
    assert rules.account_for("260", fallback="200", valid_accounts=VALID) == "260"
    assert rules.account_for("4000", fallback="200", valid_accounts=VALID) == "200"
    assert rules.account_for(None, fallback="260", valid_accounts=VALID) == "260"
    assert rules.account_for("  ", fallback="260", valid_accounts=None) == "260"


def test_account_outside_the_chart_raises_naming_it() -> None:
    with pytest.raises(MappingError) as info:
        load_rules().account_for("4999", fallback="200", valid_accounts=VALID)
    assert (info.value.field, info.value.value) == ("AccountCode", "4999")
    assert "'4999'" in info.value.message


def test_no_account_at_all_raises() -> None:
    with pytest.raises(MappingError, match="no account"):
        load_rules().account_for(None, fallback=None, valid_accounts=None)


def test_override_file_is_deep_merged_with_the_defaults(rules_file: Callable[[str], Path]) -> None:
    override = rules_file(
        'invoice_status = "DRAFT"\n'
        "[tax_types]\n"
        '"Zero Rated Imports" = "gstonimports"\n'
        '"GST on Income" = "OUTPUT"\n'
        "[account_codes]\n"
        '"4000" = "260"\n'
    )
    rules = load_rules(override)
    assert rules.invoice_status == "DRAFT"
    assert rules.tax_type_for("Zero Rated Imports") is XeroTaxType.GSTONIMPORTS
    assert rules.tax_type_for("BAS Excluded") is XeroTaxType.BASEXCLUDED
    assert rules.account_codes == {"4000": "260"}
    assert rules.default_revenue_account == "200"


def test_switching_region_drops_the_default_au_tax_table(rules_file: Callable[[str], Path]) -> None:
    rules = load_rules(rules_file('region = "NZ"\n[tax_types]\n"GST on Income" = "OUTPUT2"\n'))
    assert rules.tax_types == {"GST on Income": XeroTaxType.OUTPUT2}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[tax_types]\n"GST 15%" = "OUTPUT2"\n', "OUTPUT2"),  # a tax type of the other region
        ('[tax_types]\n"Odd" = "NOTATAX"\n', "invalid mapping rules"),  # not a Xero tax type at all
    ],
    ids=["other-region", "not-a-tax-type"],
)
def test_a_tax_type_the_organisation_cannot_use_is_rejected(
    rules_file: Callable[[str], Path], table: str, message: str
) -> None:
    with pytest.raises(MappingError, match=message):
        load_rules(rules_file(table))


def test_broken_toml_names_the_file(rules_file: Callable[[str], Path]) -> None:
    override = rules_file("invoice_status = \n")
    with pytest.raises(MappingError) as info:
        load_rules(override)
    assert info.value.value == str(override)


def test_missing_override_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read rules file"):
        load_rules(tmp_path / "absent.toml")


def test_duplicate_rule_names_differing_only_in_case_are_rejected() -> None:
    with pytest.raises(ValueError, match="same name"):
        MappingRules(tax_types={"GST on Income": XeroTaxType.OUTPUT, "gst on income ": XeroTaxType.OUTPUT})


def test_description_template_with_unknown_placeholder_is_rejected() -> None:
    with pytest.raises(ValueError, match="price"):
        MappingRules(tax_types={}, description_template="{sku} {price}")


def test_description_template_and_its_fallbacks() -> None:
    rules = MappingRules(tax_types={}, description_template="{name} [{sku}]")
    assert rules.describe(sku="BRD-001", name="Baked Bread") == "Baked Bread [BRD-001]"
    assert rules.describe(sku=None, name="Baked Bread") == "Baked Bread"
    assert rules.describe(sku="BRD-001", name=" ") == "BRD-001"
    assert rules.describe(sku="Bread", name="bread") == "bread"
    assert rules.describe(sku=None, name=None) == ""

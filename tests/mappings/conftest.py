"""Shared fixtures for the pure mapping tests: hand-written Cin7 JSON under fixtures/."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mappings import Cin7Customer, Cin7Sale, MappingRules, load_rules

FIXTURES = Path(__file__).with_name("fixtures")

# Revenue accounts of the AU chart used everywhere (conventions file).
REVENUE_ACCOUNTS = frozenset({"200", "260", "860"})


def load_json(name: str) -> dict[str, Any]:
    """A fixture file as a fresh dict (tests may edit it)."""
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture
def rules() -> MappingRules:
    return load_rules()


@pytest.fixture
def rules_file(tmp_path: Path) -> Callable[[str], Path]:
    """Writes an override rules file holding this TOML text, and gives its path (for `load_rules`)."""

    def write(text: str) -> Path:
        path = tmp_path / "rules.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def exclusive_sale_json() -> dict[str, Any]:
    return load_json("sale_exclusive_aud.json")


@pytest.fixture
def inclusive_sale_json() -> dict[str, Any]:
    return load_json("sale_inclusive_usd.json")


@pytest.fixture
def exclusive_sale(exclusive_sale_json: dict[str, Any]) -> Cin7Sale:
    return Cin7Sale.model_validate(exclusive_sale_json)


@pytest.fixture
def inclusive_sale(inclusive_sale_json: dict[str, Any]) -> Cin7Sale:
    return Cin7Sale.model_validate(inclusive_sale_json)


@pytest.fixture
def customer_json() -> dict[str, Any]:
    return load_json("customer.json")


@pytest.fixture
def customer(customer_json: dict[str, Any]) -> Cin7Customer:
    return Cin7Customer.model_validate(customer_json)

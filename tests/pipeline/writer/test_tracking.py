"""Sales representatives as Xero tracking options: made before the invoices that name them, never dropped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.ledger.models import DocumentState
from pipeline.standins.generator import Dataset, generate
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline

REPS = ("Mia Chen", "Tom O'Neil")


def _with_reps(dataset: Dataset, long_name_for: int | None = None) -> Dataset:
    for index, sale in enumerate(dataset.sales):
        sale["SalesRepresentative"] = "R" * 60 if index == long_name_for else REPS[index % 2]
    return dataset


def _rules(tmp_path: Path, category: str) -> dict[str, str]:
    rules = tmp_path / "rules.toml"
    rules.write_text(f'sales_rep_tracking_category = "{category}"\n')
    return {"MAPPING_RULES_FILE": str(rules)}


def _rep_of(p: Pipeline, number: str) -> str | None:
    sale_id = next(e.sale_id for e in p.dataset.expectations if e.invoice_number == number)
    return p.cin7.sale(sale_id).get("SalesRepresentative")


def _options(invoice: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t["Name"], t["Option"]) for line in invoice["LineItems"] for t in line.get("Tracking") or []}


def test_each_invoice_carries_its_sales_rep_and_a_missing_option_is_made_once_first(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    dataset = _with_reps(generate(61, 8, now=datetime.now(UTC), hostile=False), long_name_for=3)
    p = make_pipeline(
        dataset=dataset, xero={"seed_tracking": {"Sales Rep": [REPS[0]]}}, settings=_rules(tmp_path, "Sales Rep")
    )

    counts = p.poll_and_wait()

    invoices = [i for i in p.xero.invoices() if i["Type"] == "ACCREC"]
    assert invoices and counts.get(DocumentState.SYNCED, "invoice") == len(invoices)
    for invoice in invoices:
        rep = _rep_of(p, invoice["InvoiceNumber"])
        assert _options(invoice) == {("Sales Rep", rep)}, invoice["InvoiceNumber"]
        # Every line, not only the first.
        assert all(line.get("Tracking") for line in invoice["LineItems"] if line.get("AccountCode") != "860")
    [category] = [c for c in p.xero.tracking_categories() if c["Name"] == "Sales Rep"]
    assert sorted(o["Name"] for o in category["Options"]) == sorted(REPS)
    assert p.xero.stats()["by_endpoint"].get("PUT /TrackingCategories/{id}/Options", 0) == 1
    # A name longer than Xero's 50 characters is a mapping problem naming the field, not a dropped option.
    reasons = p.dead_reasons()
    assert any(
        "SalesRepresentative" in reason or "sales representative" in reason for r in reasons.values() for reason in r
    ), reasons


def test_a_tracking_category_xero_lacks_fails_its_invoices_with_the_reason(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    p = make_pipeline(
        dataset=_with_reps(generate(62, 4, now=datetime.now(UTC), hostile=False)),
        settings=_rules(tmp_path, "Salesperson"),
    )

    counts = p.poll_and_wait()

    assert not [i for i in p.xero.invoices() if i["Type"] == "ACCREC"]
    assert counts.get(DocumentState.DEAD, "invoice") > 0
    reasons = [reason for found in p.dead_reasons().values() for reason in found]
    assert reasons and all("no active tracking category 'Salesperson'" in reason for reason in reasons), reasons

"""Xero payload models: stable JSON, totals as Xero computes them, and content hashing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from mappings import (
    LineAmountTypes,
    MappingError,
    MappingProblem,
    XeroContactRef,
    XeroInvoice,
    XeroLineItem,
    content_hash,
    round_half_up,
    xero_totals,
)


def _line(amount: str, tax: str, qty: str = "1") -> XeroLineItem:
    return XeroLineItem(
        description="x",
        quantity=Decimal(qty),
        unit_amount=Decimal(amount) / Decimal(qty),
        line_amount=Decimal(amount),
        tax_amount=Decimal(tax),
    )


def test_decimals_serialise_as_plain_strings_never_floats_or_exponents() -> None:
    item = XeroLineItem(
        description="d",
        quantity=Decimal("1E+2"),
        unit_amount=Decimal("12.3456"),
        line_amount=Decimal("1234.56"),
    )
    body = item.to_json()
    assert body == {"Description": "d", "Quantity": "100", "UnitAmount": "12.3456", "LineAmount": "1234.56"}


def test_dates_serialise_as_iso_days() -> None:
    invoice = XeroInvoice(contact=XeroContactRef(contact_id="c-1"), date=date(2024, 2, 29), due_date=date(2024, 3, 1))
    body = invoice.to_json()
    assert (body["Date"], body["DueDate"]) == ("2024-02-29", "2024-03-01")
    assert body["Contact"] == {"ContactID": "c-1"}


def test_contact_ref_needs_an_identifier() -> None:
    with pytest.raises(ValidationError):
        XeroContactRef()


def test_empty_description_is_rejected_by_the_model() -> None:
    with pytest.raises(ValidationError):
        XeroLineItem(description="", quantity=Decimal(1), unit_amount=Decimal(1))


def test_exclusive_totals_add_tax_on_top() -> None:
    invoice = XeroInvoice(line_amount_types=LineAmountTypes.EXCLUSIVE, line_items=[_line("10.00", "1.00")])
    totals = xero_totals(invoice)
    assert (totals.subtotal, totals.total_tax, totals.total) == (
        Decimal("10.00"),
        Decimal("1.00"),
        Decimal("11.00"),
    )


def test_inclusive_totals_take_tax_out_of_the_line_amounts() -> None:
    invoice = XeroInvoice(
        line_amount_types=LineAmountTypes.INCLUSIVE,
        line_items=[_line("11.00", "1.00"), _line("37.04", "3.37")],
    )
    totals = xero_totals(invoice)
    assert (totals.subtotal, totals.total_tax, totals.total) == (
        Decimal("43.67"),
        Decimal("4.37"),
        Decimal("48.04"),
    )


def test_no_tax_totals_ignore_tax_amounts() -> None:
    invoice = XeroInvoice(line_amount_types=LineAmountTypes.NO_TAX, line_items=[_line("10.00", "1.00")])
    assert xero_totals(invoice).total == Decimal("10.00")


def test_round_half_up_rounds_halves_away_from_zero() -> None:
    assert round_half_up(Decimal("69.965")) == Decimal("69.97")
    assert round_half_up(Decimal("0.125")) == Decimal("0.13")
    assert round_half_up(Decimal("-0.125")) == Decimal("-0.13")


def test_content_hash_is_stable_under_key_order() -> None:
    a = {"Name": "Zoë", "Lines": [{"A": "1", "B": "2"}], "Total": "1.00"}
    b = {"Total": "1.00", "Lines": [{"B": "2", "A": "1"}], "Name": "Zoë"}
    assert content_hash(a) == content_hash(b)
    assert len(content_hash(a)) == 64


def test_content_hash_changes_with_content() -> None:
    assert content_hash({"Total": "1.00"}) != content_hash({"Total": "1.01"})


def test_mapping_error_collects_all_problems_in_one_message() -> None:
    error = MappingError.from_problems(
        [
            MappingProblem("TaxRule", "Zero Rated Imports", "bad rule"),
            MappingProblem("AccountCode", "4999", "bad acc"),
        ]
    )
    assert isinstance(error, ValueError)
    assert (error.field, error.value) == ("TaxRule", "Zero Rated Imports")
    assert len(error.problems) == 2
    assert "bad rule" in str(error) and "bad acc" in str(error)


def test_single_mapping_error_is_its_own_only_problem() -> None:
    error = MappingError("Terms", "soon", "unknown terms 'soon'")
    assert error.problems == [MappingProblem("Terms", "soon", "unknown terms 'soon'")]
    assert str(error) == "unknown terms 'soon'"

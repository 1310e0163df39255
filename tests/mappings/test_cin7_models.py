"""Parsing Cin7 Core JSON into models: timestamps, amounts, enums and GUIDs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from mappings import (
    Cin7Customer,
    Cin7Invoice,
    Cin7InvoiceStatus,
    Cin7Line,
    Cin7Sale,
    Cin7SaleListRow,
    parse_cin7_datetime,
    parse_decimal,
)

from .conftest import load_json


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2017-09-29T03:03:13.913Z", datetime(2017, 9, 29, 3, 3, 13, 913000, tzinfo=UTC)),
        ("2017-09-29T00:00:00", datetime(2017, 9, 29, tzinfo=UTC)),
        ("2017-11-22T06:58:21.8882229Z", datetime(2017, 11, 22, 6, 58, 21, 888222, tzinfo=UTC)),
        ("2017-09-29", datetime(2017, 9, 29, tzinfo=UTC)),
        ("29/01/2018", datetime(2018, 1, 29, tzinfo=UTC)),
        ("2017-09-29T10:00:00+10:00", datetime(2017, 9, 29, tzinfo=UTC)),
    ],
)
def test_every_cin7_timestamp_form_parses_to_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_cin7_datetime(text)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() is not None


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_timestamps_parse_to_none(blank: str | None) -> None:
    assert parse_cin7_datetime(blank) is None


def test_a_garbage_timestamp_is_rejected_not_guessed() -> None:
    with pytest.raises(ValueError, match="unrecognised Cin7 timestamp"):
        parse_cin7_datetime("next tuesday")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(12.3456, "12.3456"), (0.1, "0.1"), (3, "3"), ("19.99", "19.99"), (Decimal("1.50"), "1.50")],
)
def test_amounts_become_exact_decimals_even_from_floats(raw: object, expected: str) -> None:
    value = parse_decimal(raw)
    assert isinstance(value, Decimal)
    assert str(value) == expected


def test_line_amounts_keep_four_decimal_places_from_json_floats() -> None:
    line = Cin7Line.model_validate({"SKU": "X", "Quantity": 3, "Price": 12.3456, "Total": 37.04, "Tax": 3.7})
    assert line.price == Decimal("12.3456")
    assert line.total == Decimal("37.04")
    assert line.discount == Decimal(0)


def test_a_non_numeric_amount_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        Cin7Line.model_validate({"Price": "twelve"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AUTHORISED", Cin7InvoiceStatus.AUTHORISED),
        ("authorised", Cin7InvoiceStatus.AUTHORISED),
        ("Authorized", Cin7InvoiceStatus.AUTHORISED),
        ("NOT AVAILABLE", Cin7InvoiceStatus.NOT_AVAILABLE),
        ("not  available", Cin7InvoiceStatus.NOT_AVAILABLE),
        ("Paid", Cin7InvoiceStatus.PAID),
        ("voided", Cin7InvoiceStatus.VOIDED),
        ("Draft", Cin7InvoiceStatus.DRAFT),
    ],
)
def test_invoice_status_parses_case_insensitively_and_accepts_the_american_spelling(
    raw: str, expected: Cin7InvoiceStatus
) -> None:
    assert Cin7Invoice.model_validate({"Status": raw}).status is expected


def test_an_unknown_invoice_status_is_kept_as_an_upper_case_string() -> None:
    invoice = Cin7Invoice.model_validate({"Status": "Partially Credited"})
    assert invoice.status == "PARTIALLY CREDITED"
    assert not isinstance(invoice.status, Cin7InvoiceStatus)


def test_sale_guids_are_lower_cased_and_enums_upper_cased(exclusive_sale_json: dict[str, Any]) -> None:
    sale = Cin7Sale.model_validate(exclusive_sale_json)
    assert sale.id == "6222cb47-8a1d-4f5e-9c3b-2d7e0a1b4c5d"
    assert sale.customer_id == "74de0528-3f1b-4c2d-8e9a-0b1c2d3e4f50"
    assert sale.invoices[0].task_id == "9b1e3c4d-5a6f-4b7c-8d9e-0f1a2b3c4d5e"
    assert sale.invoices[0].lines[0].product_id == "4aadd8f6-1111-4a2b-9c3d-000000000001"
    assert sale.tax_calculation == "EXCLUSIVE"
    assert sale.type == "ADVANCED SALE"
    assert sale.last_modified_on == datetime(2024, 3, 15, 4, 12, 9, 417000, tzinfo=UTC)


def test_sale_detail_parses_order_invoice_payments_and_credit_notes(inclusive_sale: Cin7Sale) -> None:
    assert inclusive_sale.customer_currency == "USD"
    assert inclusive_sale.currency_rate == Decimal("1.5331")
    assert inclusive_sale.order is not None and inclusive_sale.order.sale_order_number == "SO-00101"
    invoice = inclusive_sale.invoices[0]
    assert invoice.status is Cin7InvoiceStatus.PAID
    assert invoice.invoice_due_date is None
    assert invoice.payments[0].amount == Decimal("424.54")
    assert invoice.payments[0].date_paid == datetime(2024, 2, 5, tzinfo=UTC)
    note = inclusive_sale.credit_notes[0]
    assert note.credit_note_number == "CR-00001"
    assert inclusive_sale.credit_note_by_task_id(note.task_id or "") is note
    assert inclusive_sale.invoice_by_task_id("1A2B3C4D-0000-4000-8000-00000000ABCD") is invoice


def test_customer_primary_email_prefers_the_default_contact(customer: Cin7Customer) -> None:
    assert customer.id == "0365e5bb-1f2e-4d3c-9b8a-7f6e5d4c3b2a"
    assert customer.primary_email == "Zoë.O'Brien@obrien.example"
    assert customer.status == "ACTIVE"


def test_customer_primary_email_falls_back_to_the_first_non_empty_one(customer_json: dict[str, Any]) -> None:
    customer_json["Contacts"] = [
        {"Name": "Boss", "Email": "", "Default": True},
        {"Name": "No mail", "Email": None},
        {"Name": "Clerk", "Email": "clerk@example.com"},
    ]
    assert Cin7Customer.model_validate(customer_json).primary_email == "clerk@example.com"


def test_customer_without_any_email_has_no_primary_email(customer_json: dict[str, Any]) -> None:
    customer_json["Contacts"] = None
    customer = Cin7Customer.model_validate(customer_json)
    assert customer.contacts == []
    assert customer.primary_email is None


def test_sale_list_rows_parse_with_dates_amounts_and_open_enums() -> None:
    rows = [Cin7SaleListRow.model_validate(r) for r in load_json("sale_list.json")["SaleList"]]
    first, second = rows
    assert first.sale_id == "6222cb47-8a1d-4f5e-9c3b-2d7e0a1b4c5d"
    assert first.invoice_date is None
    assert first.order_date == datetime(2017, 9, 29, tzinfo=UTC)
    assert first.updated == datetime(2017, 9, 29, 3, 3, 13, 913000, tzinfo=UTC)
    assert second.order_date is not None and second.order_date.date() == date(2024, 1, 30)
    assert second.invoice_amount == Decimal("424.54")
    assert second.order_status == "CLOSED"
    assert second.combined_invoice_status == "INVOICED / CREDITED"
    assert second.combined_payment_status == "PAID"

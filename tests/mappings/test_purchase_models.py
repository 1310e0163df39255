"""Cin7Supplier, Cin7Purchase and the rows the polls read: both purchase shapes, both invoice-number
spellings, lenient parsing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mappings import (
    Cin7Customer,
    Cin7InvoiceStatus,
    Cin7Purchase,
    Cin7PurchaseInvoice,
    Cin7PurchaseListRow,
    Cin7Supplier,
    Cin7SupplierChange,
)

from .conftest import load_json


@pytest.fixture
def simple_json() -> dict[str, Any]:
    return load_json("purchase_simple_aud.json")


@pytest.fixture
def advanced_json() -> dict[str, Any]:
    return load_json("purchase_advanced_usd.json")


def test_a_simple_purchase_holds_one_invoice_and_one_credit_note_object(simple_json: dict[str, Any]) -> None:
    assert isinstance(simple_json["Invoice"], dict)
    purchase = Cin7Purchase.model_validate(simple_json)
    assert purchase.type == "SIMPLE PURCHASE"
    assert purchase.is_simple
    assert purchase.approach == "INVOICE"
    assert [invoice.invoice_number for invoice in purchase.invoices] == ["SUP-4411"]
    invoice = purchase.invoices[0]
    assert invoice.task_id is None
    assert invoice.status is Cin7InvoiceStatus.AUTHORISED
    assert invoice.invoice_due_date is None
    assert invoice.total == Decimal("79.5774")
    assert [payment.amount for payment in invoice.payments] == [Decimal(40)]
    assert len(purchase.credit_notes) == 1
    assert purchase.credit_notes[0].status is Cin7InvoiceStatus.NOT_AVAILABLE


def test_an_advanced_purchase_holds_arrays_of_invoices_and_credit_notes(advanced_json: dict[str, Any]) -> None:
    purchase = Cin7Purchase.model_validate(advanced_json)
    assert not purchase.is_simple
    assert purchase.supplier_currency == "USD"
    assert purchase.currency_rate == Decimal("1.4493")
    assert purchase.tax_calculation == "INCLUSIVE"
    assert [invoice.invoice_number for invoice in purchase.invoices] == ["INV-7781", "INV-7790"]
    assert purchase.invoices[0].task_id == "c0ffee00-0000-4000-8000-000000000001"
    assert purchase.invoices[0].payments == []
    assert purchase.invoices[1].currency_conversion_rate == Decimal("1.5")
    assert purchase.invoices[1].invoicing_and_receiving_number == "2"
    assert [note.credit_note_number for note in purchase.credit_notes] == ["CR-00012"]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"InvoiceNumber": "INV-1"}, "INV-1"),
        ({"InvocieNumber": "INV-2"}, "INV-2"),
        ({"InvoiceNumber": "INV-1", "InvocieNumber": "INV-2"}, "INV-1"),
        ({"InvoiceNumber": None, "InvocieNumber": "INV-2"}, "INV-2"),
        ({"InvoiceNumber": "  ", "InvocieNumber": "INV-2"}, "INV-2"),
        ({}, None),
    ],
)
def test_the_invoice_number_is_read_in_either_spelling_preferring_the_documented_one(
    keys: dict[str, Any], expected: str | None
) -> None:
    assert Cin7PurchaseInvoice.model_validate({"Status": "AUTHORISED", **keys}).invoice_number == expected


@pytest.mark.parametrize("empty", [None, [], {}])
def test_missing_invoices_and_credit_notes_are_empty_lists(simple_json: dict[str, Any], empty: object) -> None:
    simple_json["Invoice"] = empty
    simple_json["CreditNote"] = None
    purchase = Cin7Purchase.model_validate(simple_json)
    assert purchase.invoices == []
    assert purchase.credit_notes == []


def test_invoices_property_returns_a_fresh_list(advanced_json: dict[str, Any]) -> None:
    purchase = Cin7Purchase.model_validate(advanced_json)
    purchase.invoices.clear()
    assert len(purchase.invoices) == 2


def test_supplier_row_parses_accounts_people_and_website() -> None:
    supplier = Cin7Supplier.model_validate(load_json("supplier.json"))
    assert supplier.id == "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e"
    assert supplier.account_payable == "800"
    assert supplier.status == "ACTIVE"
    assert supplier.last_modified_on is not None and supplier.last_modified_on.tzinfo is not None
    assert len(supplier.contacts) == 8
    assert supplier.default_contact is not None and supplier.default_contact.name == "Mere Kōwhai"
    assert supplier.primary_email == "Mere@Kowhai.example"
    assert supplier.website == "https://www.Kowhai.example/about"
    assert [c.include_in_email for c in supplier.contacts[:3]] == [True, True, False]
    assert supplier.addresses[0].type == "BILLING"


def test_supplier_with_null_lists_and_numeric_tax_number_still_parses() -> None:
    supplier = Cin7Supplier.model_validate(
        {"ID": "ABC", "Name": "Bare", "Addresses": None, "Contacts": None, "TaxNumber": None}
    )
    assert supplier.contacts == [] and supplier.addresses == []
    assert supplier.default_contact is None and supplier.website is None and supplier.primary_email is None


def test_customer_contacts_now_carry_include_in_email_and_job_title() -> None:
    customer = Cin7Customer.model_validate(
        {
            "ID": "X",
            "Name": "Y",
            "Contacts": [
                {"Name": "A", "IncludeInEmail": True, "JobTitle": "Buyer", "Website": None, "Default": True},
                {"Name": "B", "IncludeInEmail": None},
            ],
        }
    )
    assert customer.contacts[0].include_in_email and customer.contacts[0].job_title == "Buyer"
    assert not customer.contacts[1].include_in_email


# The purchaseList example of the Cin7 reference, GUIDs spelt out.
_PURCHASE_ROW: dict[str, Any] = {
    "ID": "60B75408-1C2D-4E3F-8A9B-0C1D2E3F4A5B",
    "OrderNumber": "PO-00026",
    "OrderDate": "2018-02-22T00:00:00",
    "Status": "INVOICED",
    "Type": "Simple Purchase",
    "Supplier": "Bayside Club",
    "SupplierID": "807B6BB2-0000-4000-8000-000000000001",
    "SupplierCurrency": "usd",
    "BaseCurrency": "USD",
    "InvoiceNumber": "345345",
    "InvoiceDate": "2018-02-22T00:00:00",
    "InvoiceDueDate": "2018-03-24T00:00:00",
    "InvoiceAmount": 15,
    "PaidAmount": 15,
    "InvoiceStatus": "PAID",
    "CombinedInvoiceStatus": "INVOICED",
    "CombinedPaymentStatus": "PAID",
    "CreditNoteNumber": "CR-00026",
    "CreditNoteStatus": "DRAFT",
    "LastUpdatedDate": "2018-04-19T04:03:06.52Z",
}


def test_purchase_list_row_parses_the_reference_example() -> None:
    row = Cin7PurchaseListRow.model_validate(_PURCHASE_ROW)
    assert row.id == "60b75408-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
    assert row.supplier_id == "807b6bb2-0000-4000-8000-000000000001"
    assert row.order_number == "PO-00026" and row.supplier == "Bayside Club"
    assert row.type == "SIMPLE PURCHASE" and row.status == "INVOICED"
    assert row.supplier_currency == "USD"
    assert row.invoice_number == "345345"
    assert row.invoice_status is Cin7InvoiceStatus.PAID
    assert row.credit_note_status is Cin7InvoiceStatus.DRAFT
    assert row.combined_invoice_status == "INVOICED" and row.combined_payment_status == "PAID"
    assert row.credit_note_number == "CR-00026"
    assert row.invoice_amount == Decimal(15) and row.paid_amount == Decimal(15)
    assert row.last_updated_date == datetime(2018, 4, 19, 4, 3, 6, 520000, tzinfo=UTC)


def test_zone_less_purchase_row_dates_read_as_utc() -> None:
    row = Cin7PurchaseListRow.model_validate({**_PURCHASE_ROW, "LastUpdatedDate": "2018-04-19T04:03:06.52"})
    assert row.order_date == datetime(2018, 2, 22, tzinfo=UTC)
    assert row.invoice_date == datetime(2018, 2, 22, tzinfo=UTC)
    assert row.invoice_due_date == datetime(2018, 3, 24, tzinfo=UTC)
    assert row.last_updated_date == datetime(2018, 4, 19, 4, 3, 6, 520000, tzinfo=UTC)


def test_a_sparse_purchase_row_with_odd_values_still_parses() -> None:
    row = Cin7PurchaseListRow.model_validate(
        {
            "ID": " 60B75408-1C2D-4E3F-8A9B-0C1D2E3F4A5B ",
            "OrderDate": "",
            "InvoiceNumber": None,
            "InvoiceDate": None,
            "InvoiceAmount": "12.3456",
            "PaidAmount": None,
            "InvoiceStatus": "authorized",
            "CreditNoteStatus": "not  available",
            "CombinedInvoiceStatus": "partially invoiced /  credited",
            "SupplierID": "",
            "SomethingNew": {"nested": True},
        }
    )
    assert row.id == "60b75408-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
    assert row.order_date is None and row.invoice_date is None and row.last_updated_date is None
    assert row.invoice_number is None and row.supplier_id is None
    assert row.invoice_amount == Decimal("12.3456") and row.paid_amount == Decimal(0)
    assert row.invoice_status is Cin7InvoiceStatus.AUTHORISED
    assert row.credit_note_status is Cin7InvoiceStatus.NOT_AVAILABLE
    assert row.combined_invoice_status == "PARTIALLY INVOICED / CREDITED"


def test_an_unknown_purchase_invoice_status_is_kept_as_upper_case_text() -> None:
    row = Cin7PurchaseListRow.model_validate({**_PURCHASE_ROW, "InvoiceStatus": "on hold"})
    assert row.invoice_status == "ON HOLD"


def _error_fields(model: type[BaseModel], raw: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(raw)
    return [tuple(error["loc"]) for error in caught.value.errors()]


@pytest.mark.parametrize("bad_id", [None, "", "   ", "missing"])
def test_a_purchase_row_without_an_id_is_an_error_naming_the_field(bad_id: str | None) -> None:
    raw = {k: v for k, v in _PURCHASE_ROW.items() if k != "ID"}
    if bad_id != "missing":
        raw["ID"] = bad_id
    assert _error_fields(Cin7PurchaseListRow, raw) == [("ID",)]


@pytest.mark.parametrize("stamp", ["2026-11-20T00:00:00", "yesterday"])
def test_a_purchase_row_with_an_unreadable_watermark_names_it(stamp: str) -> None:
    raw = {**_PURCHASE_ROW, "LastUpdatedDate": stamp}
    if stamp == "yesterday":
        assert _error_fields(Cin7PurchaseListRow, raw) == [("LastUpdatedDate",)]
    else:
        assert Cin7PurchaseListRow.model_validate(raw).last_updated_date == datetime(2026, 11, 20, tzinfo=UTC)


def test_supplier_change_reads_id_name_and_last_modified_on() -> None:
    change = Cin7SupplierChange.model_validate(
        {**load_json("supplier.json"), "ID": "5B6C7D8E-9F0A-4B1C-8D2E-3F4A5B6C7D8E", "Name": "Kōwhai Supplies"}
    )
    assert change.id == "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e" and change.name == "Kōwhai Supplies"
    assert change.last_modified_on is not None and change.last_modified_on.tzinfo is not None


def test_supplier_change_is_lenient_about_everything_but_its_id() -> None:
    zone_less = Cin7SupplierChange.model_validate({"ID": "ABC", "LastModifiedOn": "2018-01-24T05:07:23.917"})
    assert zone_less.id == "abc" and zone_less.name is None
    assert zone_less.last_modified_on == datetime(2018, 1, 24, 5, 7, 23, 917000, tzinfo=UTC)
    blank = Cin7SupplierChange.model_validate({"ID": "ABC", "Name": None, "LastModifiedOn": ""})
    assert blank.last_modified_on is None
    assert _error_fields(Cin7SupplierChange, {"Name": "No Id"}) == [("ID",)]
    assert _error_fields(Cin7SupplierChange, {"ID": " ", "Name": "Blank Id"}) == [("ID",)]

"""Cin7Supplier and Cin7Purchase: both purchase shapes, both invoice-number spellings, lenient parsing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mappings import Cin7Customer, Cin7InvoiceStatus, Cin7Purchase, Cin7PurchaseInvoice, Cin7Supplier

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

"""map_contact and contact names: Cin7 customers to Xero contacts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mappings import (
    Cin7Customer,
    MappingError,
    PaymentTermType,
    XeroPaymentTerm,
    contact_name_variant,
    map_contact,
    normalise_email,
    normalise_name,
)

TRICKY_NAME = 'O\'Brien & Søn "Café" Pty Ltd'


def test_contact_maps_identity_name_email_tax_number_and_currency(customer: Cin7Customer) -> None:
    body = map_contact(customer, name=customer.name).to_json()
    assert body["ContactNumber"] == "0365e5bb-1f2e-4d3c-9b8a-7f6e5d4c3b2a"
    assert body["Name"] == TRICKY_NAME
    assert body["EmailAddress"] == "Zoë.O'Brien@obrien.example"
    assert body["TaxNumber"] == "53 004 085 616"
    assert body["DefaultCurrency"] == "AUD"
    assert "IsCustomer" not in body
    assert "ContactID" not in body


def test_apostrophes_quotes_and_non_ascii_survive_into_the_json(customer: Cin7Customer) -> None:
    body = map_contact(customer, name=customer.name).to_json()
    assert body["Name"] == TRICKY_NAME
    assert body["Addresses"][1]["AddressLine1"] == "1 Rue Café"
    assert body["EmailAddress"] == "Zoë.O'Brien@obrien.example"


def test_billing_becomes_pobox_and_business_becomes_street_first_of_each(customer: Cin7Customer) -> None:
    addresses = map_contact(customer, name=customer.name).to_json()["Addresses"]
    assert addresses == [
        {
            "AddressType": "POBOX",
            "AddressLine1": "P O Box 456",
            "City": "Melbourne",
            "Region": "VIC",
            "PostalCode": "3331",
            "Country": "Australia",
        },
        {
            "AddressType": "STREET",
            "AddressLine1": "1 Rue Café",
            "AddressLine2": "Level 2",
            "City": "Melbourne",
            "Region": "VIC",
            "PostalCode": "3000",
            "Country": "Australia",
        },
    ]


def test_shipping_address_is_the_street_address_when_there_is_no_business_one(
    customer_json: dict[str, Any],
) -> None:
    customer_json["Addresses"] = [a for a in customer_json["Addresses"] if a["Type"] != "Business"]
    customer = Cin7Customer.model_validate(customer_json)
    street = [a for a in map_contact(customer, name="X").to_json()["Addresses"] if a["AddressType"] == "STREET"]
    assert [a["AddressLine1"] for a in street] == ["Loading bay 3"]


def test_customer_without_addresses_or_contacts_sends_neither(customer_json: dict[str, Any]) -> None:
    customer_json.update({"Addresses": [], "Contacts": []})
    body = map_contact(Cin7Customer.model_validate(customer_json), name="X").to_json()
    assert "Addresses" not in body
    assert "Phones" not in body
    assert "EmailAddress" not in body


def test_phones_come_from_the_default_contact(customer: Cin7Customer) -> None:
    phones = map_contact(customer, name=customer.name).to_json()["Phones"]
    assert phones == [
        {"PhoneType": "DEFAULT", "PhoneNumber": "+61 3 9000 1234"},
        {"PhoneType": "MOBILE", "PhoneNumber": "0400 123 456"},
    ]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("30 days", XeroPaymentTerm(day=30, type=PaymentTermType.DAYSAFTERBILLDATE)),
        ("7 Days", XeroPaymentTerm(day=7, type=PaymentTermType.DAYSAFTERBILLDATE)),
        ("20th of following month", XeroPaymentTerm(day=20, type=PaymentTermType.OFFOLLOWINGMONTH)),
        ("1st of following month", XeroPaymentTerm(day=1, type=PaymentTermType.OFFOLLOWINGMONTH)),
        ("End of following month", XeroPaymentTerm(day=31, type=PaymentTermType.OFFOLLOWINGMONTH)),
        ("Due on receipt", XeroPaymentTerm(day=0, type=PaymentTermType.DAYSAFTERBILLDATE)),
        ("COD", XeroPaymentTerm(day=0, type=PaymentTermType.DAYSAFTERBILLDATE)),
        ("End of month", XeroPaymentTerm(day=31, type=PaymentTermType.OFCURRENTMONTH)),
    ],
)
def test_payment_terms_map_to_xero_sales_terms(
    customer_json: dict[str, Any], term: str, expected: XeroPaymentTerm
) -> None:
    customer_json["PaymentTerm"] = term
    contact = map_contact(Cin7Customer.model_validate(customer_json), name="X")
    assert contact.payment_terms is not None
    assert contact.payment_terms.sales == expected


@pytest.mark.parametrize("term", ["Whenever", "", None, "40th of following month"])
def test_unknown_or_blank_payment_terms_are_omitted(customer_json: dict[str, Any], term: str | None) -> None:
    customer_json["PaymentTerm"] = term
    body = map_contact(Cin7Customer.model_validate(customer_json), name="X").to_json()
    assert "PaymentTerms" not in body


def test_payment_terms_serialise_in_xero_shape(customer: Cin7Customer) -> None:
    body = map_contact(customer, name="X").to_json()
    assert body["PaymentTerms"] == {"Sales": {"Day": 30, "Type": "DAYSAFTERBILLDATE"}}


def test_name_is_trimmed(customer: Cin7Customer) -> None:
    assert map_contact(customer, name="  Acme  ").name == "Acme"


def test_too_long_name_and_email_raise_together_instead_of_being_cut(customer_json: dict[str, Any]) -> None:
    long_email = "a" * 250 + "@example.com"
    customer_json["Contacts"] = [{"Name": "A", "Email": long_email, "Default": True}]
    with pytest.raises(MappingError) as info:
        map_contact(Cin7Customer.model_validate(customer_json), name="N" * 256)
    assert [p.field for p in info.value.problems] == ["Name", "EmailAddress"]
    assert "255" in info.value.problems[0].message


def test_blank_name_is_a_mapping_error(customer: Cin7Customer) -> None:
    with pytest.raises(MappingError, match="blank name"):
        map_contact(customer, name="   ")


def test_name_variant_is_deterministic_and_readable() -> None:
    cid = "0365e5bb-1f2e-4d3c-9b8a-7f6e5d4c3b2a"
    assert contact_name_variant("Acme Pty Ltd", cid) == "Acme Pty Ltd (0365e5bb)"
    assert contact_name_variant("Acme Pty Ltd", cid, 1) == "Acme Pty Ltd (0365e5bb-2)"
    assert contact_name_variant("Acme Pty Ltd", cid, 2) == "Acme Pty Ltd (0365e5bb-3)"
    assert contact_name_variant("Acme Pty Ltd", cid, 1) == contact_name_variant("Acme Pty Ltd", cid, 1)


def test_name_variants_of_a_long_name_stay_within_255_characters() -> None:
    cid = "74de0528-3f1b-4c2d-8e9a-0b1c2d3e4f50"
    for attempt in range(0, 120, 7):
        variant = contact_name_variant("Ω" * 300, cid, attempt)
        assert len(variant) <= 255
        assert re.search(r"\(74de0528(-\d+)?\)$", variant)


def test_name_variant_keeps_apostrophes_quotes_and_non_ascii() -> None:
    assert contact_name_variant(TRICKY_NAME, "0365E5BB-xx") == f"{TRICKY_NAME} (0365e5bb)"


def test_normalise_email_trims_and_casefolds_and_blanks_to_none() -> None:
    assert normalise_email("  Zoë.O'Brien@OBrien.Example ") == "zoë.o'brien@obrien.example"
    assert normalise_email("   ") is None
    assert normalise_email(None) is None


def test_normalise_name_collapses_whitespace_for_matching() -> None:
    assert normalise_name('  O\'Brien   &  SØN\t"Café" ') == normalise_name('o\'brien & søn "CAFÉ"')
    assert normalise_name("Straße") == normalise_name("STRASSE")

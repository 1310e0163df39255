"""map_supplier, contact people, and the ABN and domain keys the supplier resolver matches on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mappings import (
    Cin7Customer,
    Cin7CustomerContact,
    Cin7Supplier,
    MappingError,
    MappingRules,
    abn_key,
    email_domain,
    load_rules,
    map_contact,
    map_customer,
    map_people,
    map_supplier,
    split_name,
    website_domain,
)

from .conftest import load_json

TRICKY_NAME = 'Kōwhai & O\'Neill "Fresh" Produce'


@pytest.fixture
def supplier_json() -> dict[str, Any]:
    return load_json("supplier.json")


@pytest.fixture
def supplier(supplier_json: dict[str, Any]) -> Cin7Supplier:
    return Cin7Supplier.model_validate(supplier_json)


def _people(*people: dict[str, Any]) -> list[Cin7CustomerContact]:
    return [Cin7CustomerContact.model_validate(person) for person in people]


def test_supplier_maps_identity_name_tax_number_terms_and_primary_person(supplier: Cin7Supplier) -> None:
    mapped = map_supplier(supplier)
    body = mapped.payload.to_json()
    assert body["ContactNumber"] == "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e"
    assert body["Name"] == TRICKY_NAME  # trimmed; quotes, ampersand and macron kept
    assert body["TaxNumber"] == "51824753556"
    assert body["PaymentTerms"] == {"Bills": {"Day": 15, "Type": "DAYSAFTERBILLDATE"}}
    assert (body["FirstName"], body["LastName"], body["EmailAddress"]) == ("Mere", "Kōwhai", "Mere@Kowhai.example")
    assert body["Phones"][0] == {"PhoneType": "DEFAULT", "PhoneNumber": "+61 8 9000 0001"}
    assert [a["AddressType"] for a in body["Addresses"]] == ["POBOX", "STREET"]
    assert "IsSupplier" not in body and "IsCustomer" not in body
    assert "AccountPayable" not in str(body) and "800" not in str(body)


def test_supplier_name_can_be_given_by_the_caller(supplier: Cin7Supplier) -> None:
    assert map_supplier(supplier, name="Kōwhai (5b6c7d8e)").payload.name == "Kōwhai (5b6c7d8e)"


def test_seven_other_people_give_five_contact_persons_and_two_named_left_out(supplier: Cin7Supplier) -> None:
    assert len(supplier.contacts) == 8  # the Default one and seven others
    mapped = map_supplier(supplier)
    persons = mapped.payload.contact_persons or []
    assert len(persons) == 5
    assert [(p.first_name, p.last_name) for p in persons] == [
        ("Accounts", None),
        ("Seán", "O'Neill"),
        ("Dispatch", None),
        ("Ana", "María de la Cruz"),
        ("Tūī", "Ngata"),
    ]
    assert [p.include_in_emails for p in persons] == [True, False, False, False, True]
    assert len(mapped.left_out) == 2
    assert mapped.left_out[0].startswith("Night shift <night@kowhai.example>: Xero holds at most 5")
    assert mapped.left_out[1].startswith("Weekend desk <weekend@kowhai.example>")
    assert mapped.payload.to_json()["ContactPersons"][1] == {
        "FirstName": "Seán",
        "LastName": "O'Neill",
        "EmailAddress": "sean@kowhai.example",
        "IncludeInEmails": False,
    }


def test_no_people_are_sent_when_the_primary_has_no_email(supplier_json: dict[str, Any]) -> None:
    supplier_json["Contacts"][1]["Email"] = "  "
    mapped = map_supplier(Cin7Supplier.model_validate(supplier_json))
    body = mapped.payload.to_json()
    assert "ContactPersons" not in body and "EmailAddress" not in body
    assert body["FirstName"] == "Mere"
    assert len(mapped.left_out) == 7
    assert all("primary person Mere Kōwhai has no e-mail address" in reason for reason in mapped.left_out)
    assert mapped.left_out[0].startswith("Accounts <accounts@kowhai.example>:")


def test_blank_people_and_a_copy_of_the_primary_are_skipped() -> None:
    people = map_people(
        _people(
            {"Name": "Ana Ruiz", "Email": "ana@acme.example", "Default": True},
            {"Name": "", "Email": None},
            {"Name": " ana ruiz ", "Email": "ANA@acme.example"},
            {"Name": "Bo", "Email": None, "IncludeInEmail": True},
        )
    )
    assert [(p.first_name, p.email_address, p.include_in_emails) for p in people.persons] == [("Bo", None, True)]
    assert people.left_out == []


def test_without_a_default_the_first_person_is_primary() -> None:
    people = map_people(_people({"Name": "Zed", "Email": "z@x.example"}, {"Name": "Yan", "Email": "y@x.example"}))
    assert (people.first_name, people.email_address) == ("Zed", "z@x.example")
    assert [p.first_name for p in people.persons] == ["Yan"]


def test_a_person_with_a_value_too_long_for_xero_is_left_out_with_the_reason() -> None:
    people = map_people(_people({"Name": "Ana", "Email": "a@x.example", "Default": True}, {"Name": "B " + "c" * 300}))
    assert people.persons == []
    assert people.left_out == [f"B {'c' * 300}: LastName longer than Xero's 255 characters"]


def test_a_primary_name_too_long_for_xero_is_a_mapping_problem(supplier_json: dict[str, Any]) -> None:
    supplier_json["Contacts"][1]["Name"] = "x" * 300
    with pytest.raises(MappingError) as info:
        map_supplier(Cin7Supplier.model_validate(supplier_json))
    assert info.value.field == "FirstName" and "Cin7 supplier 5b6c7d8e" in info.value.message


def test_blank_supplier_name_is_a_problem(supplier_json: dict[str, Any]) -> None:
    supplier_json["Name"] = "   "
    with pytest.raises(MappingError, match="blank name"):
        map_supplier(Cin7Supplier.model_validate(supplier_json))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Mere Kōwhai", ("Mere", "Kōwhai")),
        ("  Ana  María de la Cruz ", ("Ana", "María de la Cruz")),
        ("Cher", ("Cher", None)),
        ("Seán O'Neill", ("Seán", "O'Neill")),
        ("", (None, None)),
        (None, (None, None)),
    ],
)
def test_split_name(name: str | None, expected: tuple[str | None, str | None]) -> None:
    assert split_name(name) == expected


def test_map_contact_keeps_todays_payload_unless_people_are_asked_for(customer: Cin7Customer) -> None:
    plain = map_contact(customer, name=customer.name).to_json()
    assert "FirstName" not in plain and "ContactPersons" not in plain
    mapped = map_customer(customer, name=customer.name)
    body = mapped.payload.to_json()
    assert (body["FirstName"], body["LastName"]) == ("Zoë", "O'Brien")
    assert body["EmailAddress"] == plain["EmailAddress"] == "Zoë.O'Brien@obrien.example"
    assert body["ContactPersons"] == [
        {
            "FirstName": "Accounts",
            "LastName": "team",
            "EmailAddress": "accounts@obrien.example",
            "IncludeInEmails": False,
        }
    ]
    assert mapped.left_out == []
    assert map_contact(customer, name=customer.name, people=True) == mapped.payload
    assert body["TaxNumber"] == "53 004 085 616"  # customers' tax numbers are sent as before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("51 824 753 556", "51824753556"),
        (" 51-824-753-556 ", "51824753556"),
        ("ABN 51824753556", "51824753556"),
        ("5182475355", None),
        ("518247535561", None),
        ("", None),
        (None, None),
        ("GB123456789", None),
    ],
)
def test_abn_key(text: str | None, expected: str | None) -> None:
    assert abn_key(text) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (" Mere@Kowhai.Example ", "kowhai.example"),
        ("accounts@www.acme.com.au", "acme.com.au"),
        ("odd@name@acme.com", "acme.com"),
        ("no-at-sign.example", None),
        ("nobody@", None),
        ("x@localhost", None),
        (None, None),
    ],
)
def test_email_domain(address: str | None, expected: str | None) -> None:
    assert email_domain(address) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.Kowhai.example/about", "kowhai.example"),
        ("www.acme.com.au", "acme.com.au"),
        ("acme.com.au/contact?x=1", "acme.com.au"),
        ("http://shop.acme.com.au:8080", "shop.acme.com.au"),
        ("HTTP://WWW.ACME.COM.", "acme.com"),
        ("  ", None),
        ("not a website", None),
        (None, None),
    ],
)
def test_website_domain(url: str | None, expected: str | None) -> None:
    assert website_domain(url) == expected


@pytest.mark.parametrize(
    ("domain", "public"),
    [
        ("gmail.com", True),
        ("GMAIL.COM", True),
        ("www.outlook.com", True),
        ("hotmail.com", True),
        ("yahoo.com", True),
        ("mail.yahoo.com", True),
        ("icloud.com", True),
        ("bigpond.com", True),
        ("live.com", True),
        ("kowhai.example", False),
        ("notgmail.com", False),
        ("", False),
        (None, False),
    ],
)
def test_public_mail_domains(rules: MappingRules, domain: str | None, public: bool) -> None:
    assert rules.is_public_domain(domain) is public


def test_public_mail_domains_can_be_replaced_by_an_override(rules_file: Callable[[str], Path]) -> None:
    rules = load_rules(rules_file('public_mail_domains = ["Example.NET "]\n'))
    assert rules.public_mail_domains == frozenset({"example.net"})
    assert rules.is_public_domain("example.net") and not rules.is_public_domain("gmail.com")


def test_resolver_keys_combine_with_public_domain_detection(supplier: Cin7Supplier, rules: MappingRules) -> None:
    assert email_domain(supplier.primary_email) == website_domain(supplier.website) == "kowhai.example"
    assert not rules.is_public_domain(email_domain(supplier.primary_email))
    assert rules.is_public_domain(email_domain("someone@gmail.com"))

"""How a Cin7 supplier finds its Xero contact: ContactNumber, ABN, domain (never a public one), then name."""

from __future__ import annotations

from typing import Any

from mappings import Cin7Customer, Cin7Supplier, load_rules
from pipeline.contacts.matching import ContactResult, Identity, plan_contacts
from pipeline.contacts.parties import Party, party_abn, party_domains

RULES = load_rules()
SUPPLIER_ID = "5b1f6f0e-0000-4000-8000-000000000001"
CUSTOMER_ID = "5b1f6f0e-0000-4000-8000-000000000002"


def _supplier(**fields: Any) -> Cin7Supplier:
    return Cin7Supplier.model_validate(
        {
            "ID": SUPPLIER_ID,
            "Name": "Harbour Packaging Pty Ltd",
            "TaxNumber": "53 004 085 616",
            "Contacts": [{"Name": "Mia Chen", "Email": "mia@harbourpack.com.au", "Default": True}],
            **fields,
        }
    )


def _contact(contact_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"ContactID": contact_id, "Name": name, "ContactStatus": "ACTIVE", **fields}


def _decide(
    party: Party, candidates: list[dict[str, Any]], holders: dict[str, set[str]] | None = None
) -> tuple[str | None, str]:
    holders = holders or {}
    identity = Identity(
        abns={party.id: party_abn(party)}, domains={party.id: party_domains(party, RULES)}, holders=holders
    )
    plans = plan_contacts({party.id: party}, candidates, set(holders), ContactResult(), {}, identity)
    return plans[0].contact_id, plans[0].linked_by


def test_the_abn_finds_a_contact_typed_under_another_name_whatever_its_spacing() -> None:
    typed = _contact("c-abn", "Harbour Packaging", TaxNumber="53004085616")
    assert _decide(_supplier(), [typed, _contact("c-name", "Harbour Packaging Pty Ltd")]) == ("c-abn", "adopted_abn")


def test_the_domain_of_its_people_finds_the_one_contact_that_shares_it() -> None:
    same_domain = _contact("c-domain", "HP Sales", EmailAddress="accounts@harbourpack.com.au")
    assert _decide(_supplier(TaxNumber=None), [same_domain]) == ("c-domain", "adopted_domain")


def test_a_domain_two_contacts_share_decides_nothing_and_the_name_does() -> None:
    first = _contact("c-1", "HP Sales", EmailAddress="a@harbourpack.com.au")
    second = _contact("c-2", "HP Returns", Website="https://www.harbourpack.com.au/returns")
    by_name = _contact("c-name", "Harbour Packaging Pty Ltd")
    assert _decide(_supplier(TaxNumber=None), [first, second, by_name]) == ("c-name", "adopted_name")


def test_a_public_mail_domain_never_matches() -> None:
    gmail = _supplier(TaxNumber=None, Contacts=[{"Name": "Sam", "Email": "sam@gmail.com", "Default": True}])
    other = _contact("c-gmail", "Someone Else", EmailAddress="someone@gmail.com")
    contact_id, how = _decide(gmail, [other])
    assert contact_id is None and how == "created"


def test_an_archived_contact_with_the_abn_is_never_adopted() -> None:
    archived = _contact("c-old", "Harbour Packaging", TaxNumber="53004085616", ContactStatus="ARCHIVED")
    contact_id, how = _decide(_supplier(), [archived])
    assert contact_id is None and how == "created"


def test_a_supplier_that_is_also_a_customer_joins_the_customers_contact() -> None:
    customers = _contact("c-customer", "Harbour Packaging", TaxNumber="53 004 085 616", ContactNumber=CUSTOMER_ID)
    assert _decide(_supplier(), [customers], {"c-customer": {"customer"}}) == ("c-customer", "merged_abn")


def test_a_contact_another_supplier_holds_is_not_taken_by_abn() -> None:
    held = _contact("c-held", "Harbour Packaging", TaxNumber="53004085616")
    contact_id, _how = _decide(_supplier(), [held], {"c-held": {"supplier"}})
    assert contact_id is None


def test_a_customer_joins_its_suppliers_contact_by_abn_but_adopts_no_stranger_by_it() -> None:
    customer = Cin7Customer.model_validate({"ID": CUSTOMER_ID, "Name": "Harbour Pack", "TaxNumber": "53004085616"})
    suppliers = _contact("c-supplier", "Harbour Packaging Pty Ltd", TaxNumber="53004085616")
    assert _decide(customer, [suppliers], {"c-supplier": {"supplier"}}) == ("c-supplier", "merged_abn")
    contact_id, how = _decide(customer, [suppliers])
    assert contact_id is None and how == "created"

"""Customers and suppliers as the contact stages see them: one Xero contact each, found and made alike.

A Cin7 customer and a Cin7 supplier are both a party with an id (the Xero ContactNumber), a name, an
e-mail and people; a supplier is also matched on what does not drift, its ABN and its domain. The
ledger keeps both in one table (`CustomerRecord.kind`), and a link (`ContactLink`) for each.
"""

from __future__ import annotations

from typing import Any

from mappings import (
    Cin7Customer,
    Cin7Supplier,
    MappedContact,
    MappingRules,
    abn_key,
    email_domain,
    map_customer,
    map_supplier,
    website_domain,
)
from pipeline.ledger.models import PartyKind

#: A Cin7 customer or supplier.
Party = Cin7Customer | Cin7Supplier


def parse_party(snapshot: dict[str, Any], kind: str) -> Party:
    """The snapshot as the model of its kind (raises pydantic's ValidationError)."""
    if kind == PartyKind.SUPPLIER:
        return Cin7Supplier.model_validate(snapshot)
    return Cin7Customer.model_validate(snapshot)


def party_noun(party: Party) -> str:
    """How messages name it: "customer" or "supplier"."""
    return "supplier" if isinstance(party, Cin7Supplier) else "customer"


def party_kind(party: Party) -> PartyKind:
    """Its ledger kind."""
    return PartyKind.SUPPLIER if isinstance(party, Cin7Supplier) else PartyKind.CUSTOMER


def mapped_contact(party: Party, name: str) -> MappedContact:
    """The Xero contact for the party, named `name`, with its people, and who of them it cannot carry
    (raises mappings.MappingError).
    """
    if isinstance(party, Cin7Supplier):
        return map_supplier(party, name=name)
    return map_customer(party, name=name)


def contact_payload(party: Party, name: str) -> dict[str, Any]:
    """`mapped_contact`'s payload as Xero JSON."""
    return mapped_contact(party, name).payload.to_json()


def party_abn(party: Party) -> str | None:
    """The party's ABN as compared (11 digits), or None."""
    return abn_key(party.tax_number)


def party_domains(party: Party, rules: MappingRules) -> list[str]:
    """The domains of a supplier's e-mail and website that say who it is (never a public mail domain).

    Customers are not matched by domain: many are people, and a person's employer says nothing of them.
    """
    if not isinstance(party, Cin7Supplier):
        return []
    found = [email_domain(party.primary_email), website_domain(party.website)]
    return sorted({d for d in found if d and not rules.is_public_domain(d)})


def contact_abn(contact: dict[str, Any]) -> str | None:
    """A Xero contact's TaxNumber as compared."""
    return abn_key(contact.get("TaxNumber"))


def contact_domains(contact: dict[str, Any]) -> set[str]:
    """The domains of a Xero contact's e-mail and website."""
    return {d for d in (email_domain(contact.get("EmailAddress")), website_domain(contact.get("Website"))) if d}

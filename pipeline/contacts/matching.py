"""Which Xero contact each Cin7 party gets, decided from the candidates alone (no I/O).

Customers: their ContactNumber, then an unlinked contact with their e-mail, then one with their name.
Suppliers: ContactNumber, ABN, the one unlinked contact sharing their domain, name. Either joins the
contact of the other kind that has its ABN (one company, one contact). Archived contacts are never
adopted; a name another party holds is replaced by a readable variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mappings import contact_name_variant, normalise_email, normalise_name
from pipeline.contacts.inline import InlineContact
from pipeline.contacts.parties import Party, contact_abn, contact_domains, party_noun
from pipeline.errors import ErrorClass, SyncError


@dataclass
class ContactResult:
    """Xero ContactIDs by Cin7 customer id, the customers that could not be given one, and those
    whose contact the invoice itself creates.
    """

    contact_ids: dict[str, str] = field(default_factory=dict)
    failures: dict[str, SyncError] = field(default_factory=dict)
    inline: dict[str, InlineContact] = field(default_factory=dict)


@dataclass
class Plan:
    """What one party's contact will be: an existing one (and how it was found), or one to create."""

    customer: Party
    contact_id: str | None = None
    linked_by: str = "created"
    name: str = ""
    name_note: str | None = None
    name_attempt: int = -1
    # Xero rejects a DefaultCurrency the organisation has not enabled; the contact is still wanted.
    without_currency: bool = False
    # The party's people the created contact could not carry, each with the reason.
    left_out: list[str] = field(default_factory=list)


def active(contact: dict[str, Any]) -> bool:
    """Not archived (a contact with no status is active)."""
    return str(contact.get("ContactStatus") or "ACTIVE").upper() == "ACTIVE"


@dataclass(frozen=True)
class Identity:
    """What a party is matched on besides its number, e-mail and name: its ABN, its domains (suppliers),
    and which kinds of party already hold each candidate contact (a customer's may become its supplier's).
    """

    abns: dict[str, str | None] = field(default_factory=dict)
    domains: dict[str, list[str]] = field(default_factory=dict)
    holders: dict[str, set[str]] = field(default_factory=dict)


def contact_by_abn(customer: Party, candidates: list[dict[str, Any]], claimed: set[str], identity: Identity) -> Any:
    """The active contact with the party's ABN: unlinked (suppliers), or held by a party of the other
    kind only (one company that is both customer and supplier is one contact).
    """
    abn = identity.abns.get(customer.id)
    if abn is None:
        return None
    kind = party_noun(customer)
    for contact in candidates:
        contact_id = str(contact.get("ContactID"))
        if not active(contact) or contact_abn(contact) != abn:
            continue
        holders = identity.holders.get(contact_id, set())
        if holders and kind not in holders and contact_id in claimed:
            return contact
        if not holders and kind == "supplier" and contact_id not in claimed:
            return contact
    return None


def contact_by_domain(customer: Party, unclaimed: list[dict[str, Any]], identity: Identity) -> Any:
    """The one active unlinked contact sharing a domain of the supplier's; none when several do."""
    for domain in identity.domains.get(customer.id, []):
        sharing = [c for c in unclaimed if active(c) and domain in contact_domains(c)]
        if len(sharing) == 1:
            return sharing[0]
    return None


def plan_contacts(
    customers: dict[str, Party],
    candidates: list[dict[str, Any]],
    linked_elsewhere: set[str],
    result: ContactResult,
    reserved: dict[str, tuple[str, str]] | None = None,
    identity: Identity | None = None,
) -> list[Plan]:
    """Decide each party's contact.

    Customers: their link's, else by ContactNumber, e-mail, name. Suppliers: by ContactNumber, ABN,
    domain, name. Either takes the contact of the other kind that has its ABN (one company, one contact).
    `reserved` maps contact names (normalised) that creates with an unknown outcome sent to (customer,
    name as sent): Xero may hold such a contact for that customer already. That customer sends the
    same name again, so Xero finds what the lost call made; nobody else takes or adopts the name.
    """
    identity = identity or Identity()
    plans: list[Plan] = []
    reserved = reserved or {}
    taken_names = {normalise_name(str(c.get("Name") or "")) for c in candidates if active(c)}
    taken_names |= set(reserved)
    claimed: set[str] = set(linked_elsewhere)
    for customer_id in sorted(customers):
        customer = customers[customer_id]
        plan = Plan(customer=customer)
        email = normalise_email(customer.primary_email)
        name_key = normalise_name(customer.name or "")
        own_reserved = next((name for key, (owner, name) in reserved.items() if owner == customer_id), None)
        # A contact with a name another customer's lost call sent may be that customer's.
        mine = [
            c
            for c in candidates
            if c.get("ContactNumber")
            or reserved.get(normalise_name(str(c.get("Name") or "")), (customer_id, ""))[0] == customer_id
        ]
        unclaimed = [
            c for c in mine if str(c.get("ContactID")) not in claimed and not (c.get("ContactNumber") or "").strip()
        ]
        by_number = next(
            (c for c in candidates if str(c.get("ContactNumber") or "").strip().lower() == customer_id), None
        )
        if by_number is not None and not active(by_number):
            result.failures[customer_id] = SyncError(
                ErrorClass.VALIDATION,
                f"Xero contact {by_number.get('Name')!r} holds ContactNumber {customer_id} but is archived: "
                "restore it in Xero or clear its contact number",
                api="xero",
            )
            continue
        by_abn = contact_by_abn(customer, candidates, claimed, identity) if by_number is None else None
        merged = by_abn is not None and str(by_abn.get("ContactID")) in claimed
        by_email = next(
            (c for c in unclaimed if active(c) and email and normalise_email(c.get("EmailAddress")) == email), None
        )
        if party_noun(customer) == "supplier":
            # A supplier's people write from its domain; the e-mail of one of them is not the company's.
            by_email = contact_by_domain(customer, unclaimed, identity)
        by_name = next(
            (c for c in unclaimed if active(c) and name_key and normalise_name(str(c.get("Name") or "")) == name_key),
            None,
        )
        matches = (
            (by_number, "adopted_number"),
            (by_abn, "merged_abn" if merged else "adopted_abn"),
            (by_email, "adopted_domain" if party_noun(customer) == "supplier" else "adopted_email"),
            (by_name, "adopted_name"),
        )
        for contact, how in matches:
            if contact is not None:
                plan.contact_id = str(contact["ContactID"])
                plan.linked_by = how
                plan.name = str(contact.get("Name") or customer.name)
                claimed.add(plan.contact_id)
                break
        else:
            plan.name = (customer.name or "").strip()
            if own_reserved is not None:
                plan.name = own_reserved
            elif name_key in taken_names:
                plan.name_attempt = 0
                plan.name = contact_name_variant(customer.name, customer_id, 0)
                plan.name_note = f"Xero already has an active contact named {customer.name.strip()!r}"
            taken_names.add(normalise_name(plan.name))
        plans.append(plan)
    return plans

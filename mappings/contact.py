"""Cin7 customers -> Xero contacts (suppliers use the same pieces, `mappings.supplier`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .cin7core import Cin7Address, Cin7Customer, Cin7CustomerContact
from .errors import MappingError, MappingProblem
from .people import ContactPeople, map_people
from .terms import xero_payment_terms
from .util import clean_text
from .xero import XeroAddress, XeroAddressType, XeroContact, XeroPaymentTerms, XeroPhone, XeroPhoneType

__all__ = ["NAME_MAX", "MappedContact", "contact_name_variant", "map_contact", "map_customer"]

NAME_MAX = 255
CONTACT_NUMBER_MAX = 50
EMAIL_MAX = 255
TAX_NUMBER_MAX = 50
PHONE_MAX = 50
POSTAL_CODE_MAX = 50
COUNTRY_MAX = 50
PERSON_NAME_MAX = 255

# Billing addresses are where invoices go (Xero's POBOX, "postal"); Business, else Shipping, is where
# the customer is (Xero's STREET).
_ADDRESS_SOURCES: tuple[tuple[XeroAddressType, tuple[str, ...]], ...] = (
    (XeroAddressType.POBOX, ("BILLING",)),
    (XeroAddressType.STREET, ("BUSINESS", "SHIPPING")),
)


@dataclass(frozen=True)
class MappedContact:
    """A contact payload and the people it could not carry (each named, with the reason)."""

    payload: XeroContact
    left_out: list[str] = field(default_factory=list)


def _check_length(problems: list[MappingProblem], field: str, value: str | None, limit: int, who: str) -> None:
    if value is not None and len(value) > limit:
        problems.append(
            MappingProblem(
                field,
                value,
                f"{field} {value!r} of {who} is {len(value)} characters; Xero allows {limit}: shorten it in Cin7",
            )
        )


def _address(kind: XeroAddressType, source: Cin7Address) -> XeroAddress | None:
    address = XeroAddress(
        address_type=kind,
        address_line1=clean_text(source.line1),
        address_line2=clean_text(source.line2),
        city=clean_text(source.city),
        region=clean_text(source.state),
        postal_code=clean_text(source.postcode),
        country=clean_text(source.country),
    )
    filled = address.model_dump(exclude_none=True, exclude={"address_type"})
    return address if filled else None


def _addresses(sources: Sequence[Cin7Address]) -> list[XeroAddress]:
    result: list[XeroAddress] = []
    for kind, cin7_types in _ADDRESS_SOURCES:
        candidates = (
            _address(kind, source) for cin7_type in cin7_types for source in sources if source.type == cin7_type
        )
        chosen = next((address for address in candidates if address is not None), None)
        if chosen is not None:
            result.append(chosen)
    return result


def _phones(contact: Cin7CustomerContact | None) -> list[XeroPhone]:
    if contact is None:
        return []
    phones: list[XeroPhone] = []
    if phone := clean_text(contact.phone):
        phones.append(XeroPhone(phone_type=XeroPhoneType.DEFAULT, phone_number=phone))
    if mobile := clean_text(contact.mobile_phone):
        phones.append(XeroPhone(phone_type=XeroPhoneType.MOBILE, phone_number=mobile))
    return phones


def map_contact(customer: Cin7Customer, *, name: str, people: bool = False) -> XeroContact:
    """The Xero contact for a Cin7 customer, named ``name`` (already made unique by the caller).

    ContactNumber is the Cin7 customer ID, so a contact can always be found again without trusting names.
    Values longer than Xero allows raise MappingError (all of them at once) instead of being cut.
    With ``people`` the contact also carries its people (`map_customer`, which says who was left out);
    without, only the e-mail of the Default contact (else the first one that has an e-mail).
    """
    if people:
        return map_customer(customer, name=name).payload
    return _customer_contact(customer, name, ContactPeople(email_address=clean_text(customer.primary_email)))


def map_customer(customer: Cin7Customer, *, name: str) -> MappedContact:
    """`map_contact` with the customer's people, and who of them was left out.

    The Default one goes in the contact's own FirstName, LastName and EmailAddress, up to five others
    as ContactPersons, and the rest are named in ``left_out`` with the reason (`mappings.people`).
    """
    crowd = map_people(customer.contacts)
    return MappedContact(_customer_contact(customer, name, crowd), list(crowd.left_out))


def _customer_contact(customer: Cin7Customer, name: str, people: ContactPeople) -> XeroContact:
    return build_contact(
        who=f"Cin7 customer {customer.id}",
        contact_number=customer.id,
        name=name,
        tax_number=clean_text(customer.tax_number),
        addresses=customer.addresses,
        phone_contact=customer.default_contact,
        currency=customer.currency,
        payment_terms=xero_payment_terms(customer.payment_term),
        people=people,
    )


def build_contact(
    *,
    who: str,
    contact_number: str,
    name: str,
    tax_number: str | None,
    addresses: Sequence[Cin7Address],
    phone_contact: Cin7CustomerContact | None,
    currency: str | None,
    payment_terms: XeroPaymentTerms | None,
    people: ContactPeople,
) -> XeroContact:
    """A contact payload from a Cin7 customer's or supplier's parts.

    Every value is checked against Xero's limits (``who`` names the Cin7 record in the messages), and
    MappingError carries all that do not fit. ``people`` holds the e-mail, and with `map_people` also
    the primary person's names and the others.
    """
    email = people.email_address
    problems: list[MappingProblem] = []
    contact_name = clean_text(name)
    if contact_name is None:
        problems.append(MappingProblem("Name", name, f"{who} has a blank name"))
    xero_addresses = _addresses(addresses)
    phones = _phones(phone_contact)

    _check_length(problems, "Name", contact_name, NAME_MAX, who)
    _check_length(problems, "ContactNumber", contact_number, CONTACT_NUMBER_MAX, who)
    _check_length(problems, "EmailAddress", email, EMAIL_MAX, who)
    _check_length(problems, "TaxNumber", tax_number, TAX_NUMBER_MAX, who)
    _check_length(problems, "FirstName", people.first_name, PERSON_NAME_MAX, who)
    _check_length(problems, "LastName", people.last_name, PERSON_NAME_MAX, who)
    for phone in phones:
        _check_length(problems, "PhoneNumber", phone.phone_number, PHONE_MAX, who)
    for address in xero_addresses:
        _check_length(problems, "PostalCode", address.postal_code, POSTAL_CODE_MAX, who)
        _check_length(problems, "Country", address.country, COUNTRY_MAX, who)
    if problems:
        raise MappingError.from_problems(problems)

    assert contact_name is not None  # a blank name was reported above
    return XeroContact(
        contact_number=contact_number,
        name=contact_name,
        email_address=email,
        tax_number=tax_number,
        addresses=xero_addresses or None,
        phones=phones or None,
        default_currency=currency,
        payment_terms=payment_terms,
        first_name=people.first_name,
        last_name=people.last_name,
        contact_persons=people.persons or None,
    )


def contact_name_variant(name: str, customer_id: str, attempt: int = 0) -> str:
    """A readable, deterministic Xero name for a customer whose ``name`` another contact already holds.

    Attempt 0 gives ``"Name (1a2b3c4d)"``, attempt n > 0 ``"Name (1a2b3c4d-<n+1>)"``; the base name is
    trimmed so the result never exceeds Xero's 255 characters.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, not {attempt}")
    short_id = customer_id.strip().lower()[:8]
    suffix = f" ({short_id})" if attempt == 0 else f" ({short_id}-{attempt + 1})"
    base = name.strip()
    base = base[: NAME_MAX - len(suffix)].rstrip()
    return f"{base}{suffix}"

"""Cin7 customers -> Xero contacts."""

from __future__ import annotations

from .cin7core import Cin7Address, Cin7Customer
from .errors import MappingError, MappingProblem
from .terms import xero_payment_terms
from .util import clean_text
from .xero import XeroAddress, XeroAddressType, XeroContact, XeroPhone, XeroPhoneType

__all__ = ["NAME_MAX", "contact_name_variant", "map_contact"]

NAME_MAX = 255
CONTACT_NUMBER_MAX = 50
EMAIL_MAX = 255
TAX_NUMBER_MAX = 50
PHONE_MAX = 50
POSTAL_CODE_MAX = 50
COUNTRY_MAX = 50

# Billing addresses are where invoices go (Xero's POBOX, "postal"); Business, else Shipping, is where
# the customer is (Xero's STREET).
_ADDRESS_SOURCES: tuple[tuple[XeroAddressType, tuple[str, ...]], ...] = (
    (XeroAddressType.POBOX, ("BILLING",)),
    (XeroAddressType.STREET, ("BUSINESS", "SHIPPING")),
)


def _check_length(
    problems: list[MappingProblem], field: str, value: str | None, limit: int, customer: Cin7Customer
) -> None:
    if value is not None and len(value) > limit:
        problems.append(
            MappingProblem(
                field,
                value,
                f"{field} {value!r} of Cin7 customer {customer.id} is {len(value)} characters; "
                f"Xero allows {limit}: shorten it in Cin7",
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


def _addresses(customer: Cin7Customer) -> list[XeroAddress]:
    result: list[XeroAddress] = []
    for kind, cin7_types in _ADDRESS_SOURCES:
        candidates = (
            _address(kind, source)
            for cin7_type in cin7_types
            for source in customer.addresses
            if source.type == cin7_type
        )
        chosen = next((address for address in candidates if address is not None), None)
        if chosen is not None:
            result.append(chosen)
    return result


def _phones(customer: Cin7Customer) -> list[XeroPhone]:
    contact = customer.default_contact
    if contact is None:
        return []
    phones: list[XeroPhone] = []
    if phone := clean_text(contact.phone):
        phones.append(XeroPhone(phone_type=XeroPhoneType.DEFAULT, phone_number=phone))
    if mobile := clean_text(contact.mobile_phone):
        phones.append(XeroPhone(phone_type=XeroPhoneType.MOBILE, phone_number=mobile))
    return phones


def map_contact(customer: Cin7Customer, *, name: str) -> XeroContact:
    """The Xero contact for a Cin7 customer, named ``name`` (already made unique by the caller).

    ContactNumber is the Cin7 customer ID, so a contact can always be found again without trusting names.
    Values longer than Xero allows raise MappingError (all of them at once) instead of being cut.
    """
    problems: list[MappingProblem] = []
    contact_name = clean_text(name)
    if contact_name is None:
        problems.append(MappingProblem("Name", name, f"Cin7 customer {customer.id} has a blank name"))
    email = clean_text(customer.primary_email)
    tax_number = clean_text(customer.tax_number)
    addresses = _addresses(customer)
    phones = _phones(customer)

    _check_length(problems, "Name", contact_name, NAME_MAX, customer)
    _check_length(problems, "ContactNumber", customer.id, CONTACT_NUMBER_MAX, customer)
    _check_length(problems, "EmailAddress", email, EMAIL_MAX, customer)
    _check_length(problems, "TaxNumber", tax_number, TAX_NUMBER_MAX, customer)
    for phone in phones:
        _check_length(problems, "PhoneNumber", phone.phone_number, PHONE_MAX, customer)
    for address in addresses:
        _check_length(problems, "PostalCode", address.postal_code, POSTAL_CODE_MAX, customer)
        _check_length(problems, "Country", address.country, COUNTRY_MAX, customer)
    if problems:
        raise MappingError.from_problems(problems)

    assert contact_name is not None  # a blank name was reported above
    return XeroContact(
        contact_number=customer.id,
        name=contact_name,
        email_address=email,
        tax_number=tax_number,
        addresses=addresses or None,
        phones=phones or None,
        default_currency=customer.currency,
        payment_terms=xero_payment_terms(customer.payment_term),
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

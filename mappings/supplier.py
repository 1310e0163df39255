"""Cin7 suppliers -> Xero contacts, and the pure keys the supplier resolver matches Xero contacts on.

A supplier often exists in Xero already (bills were entered by hand before the sync), under a name that
differs by a "Pty Ltd" or a typo. The resolver therefore matches on what does not drift: the ABN, and the
domain of the supplier's e-mail or website, unless that domain is a free or ISP mail one
(`MappingRules.is_public_domain`), which says nothing about who the person works for.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .cin7purchases import Cin7Supplier
from .contact import MappedContact, build_contact
from .people import map_people
from .terms import xero_payment_terms
from .util import clean_text

__all__ = ["ABN_DIGITS", "abn_key", "email_domain", "map_supplier", "website_domain"]

#: An Australian Business Number has 11 digits.
ABN_DIGITS = 11
_NON_DIGITS = re.compile(r"\D")
# A host name as the resolver compares it: labels of letters, digits and hyphens (any script), with a dot.
_HOST = re.compile(r"^[^\s./@:]+(\.[^\s./@:]+)+$")


def map_supplier(supplier: Cin7Supplier, *, name: str | None = None) -> MappedContact:
    """The Xero contact for a Cin7 supplier, named ``name`` (made unique by the caller) or its own name.

    As `mapping.contact.map_customer` does for customers: ContactNumber = the Cin7 SupplierID, the Default
    person in the contact's own fields and up to five others as ContactPersons (the rest in ``left_out``),
    the supplier's PaymentTerm as the contact's Bills terms, the TaxNumber without spaces (an ABN as
    Xero shows it). IsSupplier is read-only in Xero, set by the first bill, so it is not sent.
    """
    crowd = map_people(supplier.contacts)
    tax_number = clean_text(supplier.tax_number)
    payload = build_contact(
        who=f"Cin7 supplier {supplier.id}",
        contact_number=supplier.id,
        name=name if name is not None else supplier.name,
        tax_number="".join(tax_number.split()) if tax_number else None,
        addresses=supplier.addresses,
        phone_contact=supplier.default_contact,
        currency=supplier.currency,
        payment_terms=xero_payment_terms(supplier.payment_term, side="purchases"),
        people=crowd,
    )
    return MappedContact(payload, list(crowd.left_out))


def abn_key(text: str | None) -> str | None:
    """An ABN as compared: its 11 digits, whatever the spacing ("53 004 085 616"); None when it is not 11.

    Cin7 types TaxNumber loosely (null, "", spaced, or a number), and Xero keeps what a person typed.
    """
    if text is None:
        return None
    digits = _NON_DIGITS.sub("", str(text))
    return digits if len(digits) == ABN_DIGITS else None


def _domain(host: str) -> str | None:
    bare = host.strip().rstrip(".").lower().removeprefix("www.")
    return bare if _HOST.match(bare) else None


def email_domain(address: str | None) -> str | None:
    """The domain of an e-mail address, lower-case, without a leading ``www.``; None when it has none."""
    text = clean_text(address)
    if text is None or "@" not in text:
        return None
    return _domain(text.rpartition("@")[2])


def website_domain(url: str | None) -> str | None:
    """The host of a website as typed in Cin7, lower-case, without ``www.``; None when it has no host.

    Cin7 holds what people typed: "www.Acme.com.au/contact", "https://acme.com.au:443", "acme.com.au".
    """
    text = clean_text(url)
    if text is None:
        return None
    if "//" not in text:
        text = "//" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    return _domain(host) if host else None

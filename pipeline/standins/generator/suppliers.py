"""Generated Cin7 suppliers: ABNs, several people each, shared company domains, foreign currencies.

Always present (when there are at least as many suppliers as these cases): a USD and an NZD supplier, a
sole trader whose people use public mail (gmail.com, ...), suppliers with ``CROWDED_PEOPLE`` people (more
than Xero's five ContactPersons), ABNs written with and without spaces, and, when the sales customers are
given, one supplier that is also a customer (same name and ABN).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from pipeline.standins.generator.customers import _address as customer_address
from pipeline.standins.generator.purchase_tables import (
    ACCOUNT_PAYABLE,
    CROWDED_PEOPLE,
    DOMESTIC_PURCHASE_RULE,
    FOREIGN_SUPPLIERS,
    FREE_PURCHASE_RULE,
    JOB_ROLES,
    PEOPLE_FIRST,
    PEOPLE_LAST,
    PUBLIC_DOMAINS,
    SOLE_TRADER,
    SUPPLIER_FIRST,
    SUPPLIER_SUFFIX,
    SUPPLIER_TRADE,
)
from pipeline.standins.generator.tables import PAYMENT_TERMS
from pipeline.standins.generator.values import ZERO, format_timestamp, random_uuid

# The ATO's ABN check: subtract 1 from the first digit, weigh the digits by these, and the sum is a
# multiple of 89. Generated ABNs pass it, so that a sync validating ABNs does not reject them.
_ABN_WEIGHTS = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)


def abn_is_valid(digits: str) -> bool:
    """Whether ``digits`` (spaces allowed) is an 11-digit ABN that passes the ATO checksum."""
    plain = digits.replace(" ", "")
    if len(plain) != 11 or not plain.isdigit() or plain[0] == "0":
        return False
    values = [int(plain[0]) - 1, *(int(ch) for ch in plain[1:])]
    return sum(v * w for v, w in zip(values, _ABN_WEIGHTS, strict=True)) % 89 == 0


def make_abn(rng: random.Random, *, spaced: bool) -> str:
    """A checksum-valid ABN, written ``51 824 753 556`` when ``spaced``, else as 11 plain digits."""
    while True:
        plain = f"{rng.randint(10, 99)}{rng.randint(0, 999_999_999):09d}"
        if abn_is_valid(plain):
            break
    return f"{plain[:2]} {plain[2:5]} {plain[5:8]} {plain[8:]}" if spaced else plain


def _address(rng: random.Random, currency: str, kind: str) -> dict[str, Any]:
    # A customer's address plus the ID and DefaultForType that supplier addresses carry.
    return {"ID": random_uuid(rng), **customer_address(rng, currency, kind), "DefaultForType": True}


def _people(rng: random.Random, count: int, domain: str, website: str) -> list[dict[str, Any]]:
    """``count`` distinct people; the first is the Default one. ``domain`` "" puts everyone on public mail."""
    names: list[str] = []
    while len(names) < count:
        name = f"{rng.choice(PEOPLE_FIRST)} {rng.choice(PEOPLE_LAST)}"
        if name not in names:
            names.append(name)
    people = []
    for i, name in enumerate(names):
        first, last = name.split(" ", 1)
        local = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
        if not domain:
            # The Default person's on gmail.com, so that every set has a supplier on a public domain.
            email = f"{local}@{PUBLIC_DOMAINS[0] if i == 0 else rng.choice(PUBLIC_DOMAINS)}"
        elif i > 0 and rng.random() < 0.15:
            # Someone at a company who still uses a personal address.
            email = f"{local}{rng.randint(1, 99)}@{rng.choice(PUBLIC_DOMAINS)}"
        else:
            email = f"{rng.choice(JOB_ROLES) if i == 0 else local}@{domain}"
        people.append(
            {
                "ID": random_uuid(rng),
                "Name": name,
                "Phone": f"0{rng.randint(2, 8)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
                "MobilePhone": f"04{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
                "Fax": "",
                "Email": email,
                "Website": website,
                "Comment": "",
                "Default": i == 0,
                "IncludeInEmail": i == 0 or rng.random() < 0.5,
            }
        )
    return people


def _supplier(
    rng: random.Random, now: datetime, name: str, currency: str, domain: str, *, people: int, tax_number: str
) -> dict[str, Any]:
    modified = now - timedelta(milliseconds=rng.randint(0, 10 * 86_400_000))
    return {
        "ID": random_uuid(rng),
        "Name": name,
        "Currency": currency,
        "PaymentTerm": rng.choice(PAYMENT_TERMS),
        "AccountPayable": ACCOUNT_PAYABLE,
        "TaxRule": DOMESTIC_PURCHASE_RULE if currency == "AUD" else FREE_PURCHASE_RULE,
        "Status": "Active",
        "Discount": ZERO,
        "Comments": "",
        # A string, not Cin7's documented Int: ABNs are written with spaces (cin7-core.md "Suppliers").
        "TaxNumber": tax_number,
        "AttributeSet": None,
        "LastModifiedOn": format_timestamp(modified),
        "Addresses": [_address(rng, currency, "Business"), _address(rng, currency, "Billing")],
        "Contacts": _people(rng, people, domain, f"www.{domain}" if domain and rng.random() < 0.6 else ""),
    }


def _domain_of(name: str) -> str:
    slug = "".join(ch for ch in name.lower() if ch.isalnum())
    return f"{slug}.example.com.au"


def _merge_target(rng: random.Random, customers: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """An active AUD customer with an ABN, to be a supplier too; ``None`` when there is none."""
    eligible = [
        c
        for c in customers or []
        if c.get("TaxNumber") and c.get("Currency") == "AUD" and str(c.get("Status")).lower() == "active"
    ]
    return rng.choice(eligible) if eligible else None


def make_suppliers(
    rng: random.Random, now: datetime, n_suppliers: int, customers: list[dict[str, Any]] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """``n_suppliers`` suppliers (the special cases first) and the customer one of them also is, if any."""
    suppliers: list[dict[str, Any]] = []
    for name, currency, domain in FOREIGN_SUPPLIERS:
        suppliers.append(_supplier(rng, now, name, currency, domain, people=rng.randint(1, 3), tax_number=""))
    suppliers.append(_supplier(rng, now, SOLE_TRADER, "AUD", "", people=2, tax_number=make_abn(rng, spaced=False)))
    merged = _merge_target(rng, customers)
    if merged is not None:
        # The same business on both sides: Xero must hold one contact for it, found by name and ABN.
        name = str(merged["Name"])
        suppliers.append(
            _supplier(rng, now, name, "AUD", _domain_of(name), people=2, tax_number=str(merged["TaxNumber"]))
        )
    taken = {s["Name"].strip().lower() for s in suppliers} | {str(c["Name"]).strip().lower() for c in customers or []}
    special = len(suppliers)
    while len(suppliers) < n_suppliers:
        ordinal = len(suppliers) - special
        base = f"{rng.choice(SUPPLIER_FIRST)} {rng.choice(SUPPLIER_TRADE)}"
        name = f"{base} {rng.choice(SUPPLIER_SUFFIX)}".strip()
        if name.lower() in taken:
            name = f"{base} {len(suppliers)}"
        taken.add(name.lower())
        # The first two ordinary suppliers are crowded and have ABNs, one spaced and one not, so that every
        # set has each case; later ones draw them.
        crowded = ordinal < 2 or rng.random() < 0.1
        people = CROWDED_PEOPLE if crowded else rng.randint(1, 4)
        tax_number = "" if ordinal >= 2 and rng.random() < 0.1 else make_abn(rng, spaced=ordinal % 2 == 0)
        suppliers.append(_supplier(rng, now, name, "AUD", _domain_of(base), people=people, tax_number=tax_number))
    return suppliers, merged

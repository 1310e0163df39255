"""Generated Cin7 customers (the special ones first, then random names) and the Xero contacts seeded for them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.standins.generator.tables import (
    ARCHIVED_NAME_INDEX,
    AU_CITIES,
    EMAIL_ADOPT_INDEX,
    FOREIGN,
    NAME_FIRST,
    NAME_SECOND,
    NAME_SUFFIX,
    NUMBER_ADOPT_INDEX,
    PAYMENT_TERMS,
    SPECIAL_CUSTOMERS,
    STREETS,
)
from pipeline.standins.generator.values import ZERO, format_timestamp, random_uuid


def _address(rng: random.Random, currency: str, kind: str) -> dict[str, Any]:
    if currency in FOREIGN:
        country, cities = FOREIGN[currency]
        city, state, postcode = rng.choice(cities)
    else:
        country = "Australia"
        city, state, postcode = rng.choice(AU_CITIES)
    return {
        "Line1": f"{rng.randint(1, 400)} {rng.choice(STREETS)}",
        "Line2": rng.choice(["", "", f"Unit {rng.randint(1, 30)}"]),
        "City": city,
        "State": state,
        "Postcode": postcode,
        "Country": country,
        "Type": kind,
    }


def _abn(rng: random.Random) -> str:
    digits = f"{rng.randint(10, 99)}{rng.randint(0, 999_999_999):09d}"
    return f"{digits[:2]} {digits[2:5]} {digits[5:8]} {digits[8:]}"


def _customer(rng: random.Random, now: datetime, spec: tuple[str, str, str, str]) -> dict[str, Any]:
    name, email, currency, contact = spec
    foreign = currency != "AUD"
    modified = now - timedelta(milliseconds=rng.randint(0, 10 * 86_400_000))
    term = rng.choice(PAYMENT_TERMS)
    return {
        "ID": random_uuid(rng),
        "Name": name,
        "DisplayName": name.strip(),
        "CustomerParentID": None,
        "Currency": currency,
        "PaymentTerm": term,
        "Discount": ZERO,
        "TaxRule": "GST Free Exports" if foreign else "GST on Income",
        "AccountReceivable": "610",
        "RevenueAccount": "200",
        "TaxNumber": "" if foreign or rng.random() < 0.25 else _abn(rng),
        "Status": "Active",
        "CreditLimit": Decimal(rng.choice([0, 5000, 10000, 25000])),
        "IsOnCreditHold": False,
        "LastModifiedOn": format_timestamp(modified),
        "Addresses": [_address(rng, currency, "Billing"), _address(rng, currency, "Shipping")],
        "Contacts": [
            {
                "Name": contact,
                "Email": email,
                "Phone": f"0{rng.randint(2, 8)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
                "MobilePhone": f"04{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
                "Default": True,
            }
        ],
    }


def make_customers(
    rng: random.Random, now: datetime, n_sales: int, hostile: bool
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The special customers, random ones up to about a third of ``n_sales``, and the JPY one when hostile."""
    customers = [_customer(rng, now, spec) for spec in SPECIAL_CUSTOMERS]
    taken = {c["Name"] for c in customers}
    target = max(len(customers) + 1, n_sales // 3)
    while len(customers) < target:
        base = f"{rng.choice(NAME_FIRST)} {rng.choice(NAME_SECOND)}"
        suffix = rng.choice(NAME_SUFFIX)
        name = f"{base} {suffix}".strip()
        if name in taken:
            name = f"{name} {len(customers)}"
        taken.add(name)
        roll = rng.random()
        currency = "NZD" if roll < 0.035 else "USD" if roll < 0.07 else "AUD"
        slug = "".join(ch for ch in base.lower() if ch.isalnum())
        email = f"accounts@{slug}{len(customers)}.example.com"
        if rng.random() < 0.2:
            email = email.title()  # mixed-case e-mails must still match case-insensitively
        first, second = base.split(" ", 1)
        customers.append(_customer(rng, now, (name, email, currency, f"{first} {second.split()[0]}")))
    jpy_customer = None
    if hostile:
        jpy_spec = ("Sakura Trading KK", "ap@sakura-trading.example.jp", "JPY", "Yui Sato")
        jpy_customer = _customer(rng, now, jpy_spec)
        customers.append(jpy_customer)
    return customers, jpy_customer


def seeded_xero_contacts(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Xero contacts that exist before the first sync.

    (a) ACTIVE "Harbour Supplies Pty Ltd", no ContactNumber, EmailAddress = Cin7 "Harbour Supplies"'s
        e-mail in a different case -> the pipeline must adopt it by e-mail.
    (b) ARCHIVED "Ngā Tamariki Ltd", the exact name of that Cin7 customer -> never adopted.
    (c) ACTIVE "Blue Gum Hardware (old)" with ContactNumber = Cin7 "Blue Gum Hardware"'s ID -> adopt by
        number.
    """
    email_target = customers[EMAIL_ADOPT_INDEX]
    archived_target = customers[ARCHIVED_NAME_INDEX]
    number_target = customers[NUMBER_ADOPT_INDEX]
    email = str(email_target["Contacts"][0]["Email"])
    return [
        {
            "Name": f"{email_target['Name']} Pty Ltd",
            "EmailAddress": email.swapcase(),
            "ContactStatus": "ACTIVE",
        },
        {
            "Name": archived_target["Name"],
            "EmailAddress": "old-address@ngatamariki.example.nz",
            "ContactStatus": "ARCHIVED",
        },
        {
            "Name": f"{number_target['Name']} (old)",
            "EmailAddress": "legacy@bluegum.example.com",
            "ContactNumber": number_target["ID"],
            "ContactStatus": "ACTIVE",
        },
    ]

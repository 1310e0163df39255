"""Shape a generated dataset to a wanted share of new customers.

"New customer" = an order whose customer has no Xero contact yet when the run starts, counted once
per customer: the share is (customers first seen in this run) / (invoices synced). The generator
gives about a quarter with its n/3 customers and repeat buyers. To reach the wanted share the
dataset is adjusted deterministically: more new customers by moving some repeat orders to fresh
customers (clones with their own id, name and e-mail); fewer by giving some customers a Xero contact
before the run (found by ContactNumber, so adopted, not created).
"""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass
from typing import Any

from pipeline.standins.generator import Dataset


@dataclass
class Shaping:
    """What was done to reach the wanted share, and the share the data now promises."""

    natural_share: float
    expected_share: float
    customers_added: int = 0
    contacts_seeded: int = 0


def _preexisting(dataset: Dataset) -> set[str]:
    """Customers that an active seeded Xero contact already stands for (by number or e-mail)."""
    numbers = {
        str(c.get("ContactNumber")).lower()
        for c in dataset.xero_contacts
        if c.get("ContactNumber") and c.get("ContactStatus", "ACTIVE") == "ACTIVE"
    }
    emails = {
        str(c.get("EmailAddress")).lower()
        for c in dataset.xero_contacts
        if c.get("EmailAddress") and c.get("ContactStatus", "ACTIVE") == "ACTIVE"
    }
    found: set[str] = set()
    for customer in dataset.customers:
        email = str((customer.get("Contacts") or [{}])[0].get("Email") or "").lower()
        if str(customer["ID"]).lower() in numbers or (email and email in emails):
            found.add(str(customer["ID"]))
    return found


def new_customer_share(dataset: Dataset) -> tuple[int, int]:
    """(customers first seen in this run, synced invoices) as the data promises them."""
    synced = [e for e in dataset.expectations if e.outcome == "synced"]
    existing = _preexisting(dataset)
    customers = {e.customer_id for e in synced} - existing
    return len(customers), len(synced)


def shape_new_customers(dataset: Dataset, share: float, seed: int) -> tuple[Dataset, Shaping]:
    """A copy of `dataset` whose synced invoices have about `share` new customers."""
    shaped = copy.deepcopy(dataset)
    rng = random.Random(seed)
    new, synced = new_customer_share(shaped)
    shaping = Shaping(natural_share=new / synced if synced else 0.0, expected_share=0.0)
    wanted = round(share * synced)
    special_ids = {str(c["ID"]) for c in shaped.customers[:8]}
    if wanted > new:
        _add_customers(shaped, wanted - new, rng, shaping, special_ids)
    elif wanted < new:
        _seed_contacts(shaped, new - wanted, rng, shaping, special_ids)
    new, synced = new_customer_share(shaped)
    shaping.expected_share = new / synced if synced else 0.0
    return shaped, shaping


def _add_customers(dataset: Dataset, count: int, rng: random.Random, shaping: Shaping, special: set[str]) -> None:
    """Move `count` repeat orders (single synced invoice, customer seen earlier) to fresh customers."""
    by_id = {str(c["ID"]): c for c in dataset.customers}
    outcomes: dict[str, list[str]] = {}
    for expectation in dataset.expectations:
        outcomes.setdefault(expectation.sale_id, []).append(expectation.outcome)
    seen: set[str] = set()
    repeats: list[dict[str, Any]] = []
    for sale in dataset.sales:
        customer_id = str(sale["CustomerID"])
        if customer_id in seen and customer_id not in special and outcomes.get(str(sale["ID"])) == ["synced"]:
            repeats.append(sale)
        seen.add(customer_id)
    for number, sale in enumerate(rng.sample(repeats, min(count, len(repeats))), start=1):
        original = by_id[str(sale["CustomerID"])]
        clone = copy.deepcopy(original)
        clone["ID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        name = f"{str(original['Name']).strip()} Branch {number}"
        clone["Name"] = clone["DisplayName"] = name
        clone["Contacts"][0]["Email"] = f"branch{number}@{clone['ID'][:8]}.example.com"
        dataset.customers.append(clone)
        sale["CustomerID"] = clone["ID"]
        sale["Customer"] = name
        sale["Email"] = clone["Contacts"][0]["Email"]
        for expectation in dataset.expectations:
            if expectation.sale_id == sale["ID"]:
                expectation.customer_id = clone["ID"]
        shaping.customers_added += 1


def _seed_contacts(dataset: Dataset, count: int, rng: random.Random, shaping: Shaping, special: set[str]) -> None:
    """Give `count` customers a Xero contact (with their id as ContactNumber) before the run."""
    synced_customers = sorted({e.customer_id for e in dataset.expectations if e.outcome == "synced"} - special)
    by_id = {str(c["ID"]): c for c in dataset.customers}
    for customer_id in rng.sample(synced_customers, min(count, len(synced_customers))):
        customer = by_id[customer_id]
        dataset.xero_contacts.append(
            {
                "Name": str(customer["Name"]).strip(),
                "EmailAddress": str(customer["Contacts"][0]["Email"]),
                "ContactNumber": customer_id,
                "ContactStatus": "ACTIVE",
            }
        )
        shaping.contacts_seeded += 1

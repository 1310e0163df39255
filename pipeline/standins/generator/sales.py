"""The pieces of a generated sale: products, lines, freight charges, invoice statuses and due dates."""

from __future__ import annotations

import calendar
import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pipeline.standins.generator.tables import DISCOUNTS, FRACTIONAL_QUANTITIES, PRODUCT_ADJECTIVES, PRODUCT_NOUNS
from pipeline.standins.generator.values import ONE, ZERO, random_uuid


def due_date(invoice_date: date, term: str) -> date:
    """The due date that a customer's payment term gives an invoice dated ``invoice_date``."""
    match term:
        case "30 days":
            return invoice_date + timedelta(days=30)
        case "14 days":
            return invoice_date + timedelta(days=14)
        case "Due on receipt":
            return invoice_date
        case "20th of following month" | "End of following month":
            year = invoice_date.year + (invoice_date.month // 12)
            month = invoice_date.month % 12 + 1
            day = 20 if term.startswith("20th") else calendar.monthrange(year, month)[1]
            return date(year, month, day)
        case _:
            return invoice_date + timedelta(days=30)


def make_products(rng: random.Random) -> list[tuple[str, str, str]]:
    """Sixty products: (ProductID, SKU, name)."""
    products = []
    for i in range(60):
        name = f"{rng.choice(PRODUCT_ADJECTIVES)} {rng.choice(PRODUCT_NOUNS)}"
        products.append((random_uuid(rng), f"SKU-{i + 1:04d}", name))
    return products


def _price(rng: random.Random) -> Decimal:
    if rng.random() < 0.2:
        return Decimal(rng.randint(10_000, 2_500_000)).scaleb(-4)
    return Decimal(rng.randint(100, 250_000)).scaleb(-2)


def product_line(rng: random.Random, products: list[tuple[str, str, str]], export: bool) -> dict[str, Any]:
    """A random sale line (totals left for ``recompute_invoice_totals``); GST-free for an export."""
    product_id, sku, name = rng.choice(products)
    quantity = rng.choice(FRACTIONAL_QUANTITIES) if rng.random() < 0.15 else Decimal(rng.randint(1, 20))
    discount = rng.choice(DISCOUNTS) if rng.random() < 0.2 else ZERO
    if export:
        tax_rule = "GST Free Exports"
    else:
        roll = rng.random()
        tax_rule = "GST on Income" if roll < 0.8 else "GST Free Income" if roll < 0.92 else "BAS Excluded"
    return {
        "ProductID": product_id,
        "SKU": sku,
        "Name": name,
        "Quantity": quantity,
        "Price": _price(rng),
        "Discount": discount,
        "Tax": ZERO,
        "Total": ZERO,
        "TaxRule": tax_rule,
        "Account": "260" if rng.random() < 0.1 else "200",
        "Comment": "",
    }


def freight_charge(rng: random.Random, tax_rule: str) -> dict[str, Any]:
    """A freight additional charge under the sale's tax rule."""
    return {
        "Description": "Freight",
        "Quantity": ONE,
        "Price": Decimal(rng.randint(500, 9_000)).scaleb(-2),
        "Discount": ZERO,
        "Tax": ZERO,
        "Total": ZERO,
        "TaxRule": tax_rule,
        "Account": "200",
    }


def invoice_status(roll: float) -> str:
    """The status of an ordinary invoice for a uniform ``roll``: ~3% DRAFT, ~3% VOIDED, ~24% PAID."""
    if roll < 0.03:
        return "DRAFT"
    if roll < 0.06:
        return "VOIDED"
    return "PAID" if roll < 0.30 else "AUTHORISED"

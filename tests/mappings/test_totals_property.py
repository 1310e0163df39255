"""Property-style check without hypothesis: random Cin7 invoices built with the conventions' formulas
always map to Xero payloads whose totals equal Cin7's to the cent."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from mappings import Cin7Sale, MappingRules, OrgReference, load_rules, map_invoice, round_half_up, xero_totals

REFERENCE = OrgReference(account_codes=frozenset({"200", "260", "860"}), rounding_account="860")

RATES = {
    "GST on Income": Decimal("0.10"),
    "GST Free Income": Decimal(0),
    "GST Free Exports": Decimal(0),
    "BAS Excluded": Decimal(0),
    "Tax on Sales": Decimal("0.10"),
    "Tax Exempt": Decimal(0),
}


def _amount(rng: random.Random, places: int, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low, high)).scaleb(-places)


def _line(rng: random.Random, inclusive: bool, charge: bool) -> dict[str, Any]:
    rule = rng.choice(list(RATES))
    rate = RATES[rule]
    quantity = _amount(rng, rng.choice([0, 0, 2, 4]), 1, 50_000) if not charge else Decimal(1)
    if quantity > 500:
        quantity = quantity.scaleb(-2)
    price = _amount(rng, rng.choice([2, 4]), 1, 2_000_000)
    discount = rng.choice([Decimal(0), Decimal(0), Decimal("12.5"), Decimal("33.33"), _amount(rng, 2, 0, 10_000)])
    total = round_half_up(quantity * price * (1 - discount / 100), 2)
    tax = round_half_up(total * rate / (1 + rate), 2) if inclusive else round_half_up(total * rate, 2)
    line: dict[str, Any] = {
        "Quantity": str(quantity),
        "Price": str(price),
        "Discount": str(discount),
        "Tax": str(tax),
        "Total": str(total),
        "TaxRule": rule,
        "Account": rng.choice(["200", "260", None]),
    }
    if charge:
        line["Description"] = "Freight"
    else:
        line.update({"SKU": f"SKU-{rng.randint(1, 999)}", "Name": "Widget"})
    return line


def _sale(rng: random.Random, index: int) -> tuple[dict[str, Any], bool]:
    inclusive = rng.random() < 0.5
    lines = [_line(rng, inclusive, charge=False) for _ in range(rng.randint(1, 12))]
    charges = [_line(rng, inclusive, charge=True) for _ in range(rng.randint(0, 2))]
    line_sum = sum((Decimal(li["Total"]) for li in lines + charges), Decimal(0))
    tax_sum = sum((Decimal(li["Tax"]) for li in lines + charges), Decimal(0))
    if inclusive:
        total, before_tax = line_sum, line_sum - tax_sum
    else:
        total, before_tax = line_sum + tax_sum, line_sum
    foreign = rng.random() < 0.3
    sale = {
        "ID": f"00000000-0000-4000-8000-{index:012d}",
        "CustomerID": "74de0528-3f1b-4c2d-8e9a-0b1c2d3e4f50",
        "BaseCurrency": "AUD",
        "CustomerCurrency": rng.choice(["USD", "NZD", "GBP", "EUR"]) if foreign else "AUD",
        "CurrencyRate": "1.5331" if foreign else 1,
        "TaxRule": "GST on Income",
        "TaxCalculation": "Inclusive" if inclusive else "Exclusive",
        "Terms": rng.choice(["30 days", "Due on receipt", "20th of following month", "End of month"]),
        "Order": {"SaleOrderNumber": f"SO-{index:05d}"},
        "Invoices": [
            {
                "TaskID": f"11111111-0000-4000-8000-{index:012d}",
                "InvoiceNumber": f"INV-{index:05d}",
                "Status": "AUTHORISED",
                "InvoiceDate": "2024-05-31T00:00:00",
                "Lines": lines,
                "AdditionalCharges": charges,
                "TotalBeforeTax": str(before_tax),
                "Tax": str(tax_sum),
                "Total": str(total),
            }
        ],
    }
    return sale, inclusive


@pytest.fixture(scope="module")
def default_rules() -> MappingRules:
    return load_rules()


def test_two_hundred_random_invoices_have_xero_totals_equal_to_cin7s(default_rules: MappingRules) -> None:
    rng = random.Random(20240531)
    kinds = set()
    for index in range(200):
        raw, inclusive = _sale(rng, index)
        kinds.add(inclusive)
        sale = Cin7Sale.model_validate(raw)
        invoice = sale.invoices[0]
        payload = map_invoice(
            sale,
            invoice,
            customer=None,
            rules=default_rules,
            reference=REFERENCE,
        )
        totals = xero_totals(payload)
        assert (totals.subtotal, totals.total_tax, totals.total) == (
            invoice.total_before_tax,
            invoice.tax,
            invoice.total,
        ), f"invoice {index} ({'inclusive' if inclusive else 'exclusive'})"
    assert kinds == {True, False}

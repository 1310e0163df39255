"""Seeded, deterministic Cin7 Core data for the stand-ins, the benchmarks and the end-to-end tests.

Everything here is pure: no I/O, no clock (``now`` is an argument), no global random state. The same
``seed``, ``n_sales`` and ``now`` always give an identical :class:`Dataset`.

Amounts follow the shared conventions (``docs/conventions-for-helpers.md``) exactly: every amount is a
``Decimal``; line ``Total`` is ``round_half_up(Quantity * Price * (1 - Discount/100), 2)``; line ``Tax`` and
the invoice totals depend on the sale's ``TaxCalculation``. :func:`recompute_invoice_totals` is the one
implementation of those rules and is used for generation and for edits alike.

Deliberately awkward data, always present:

* customer names ``O'Brien & Sons``, ``Zoë's "Best" Café``, ``Ngā Tamariki Ltd``, ``Kauri Timber Co`` with
  trailing spaces (the consumer must trim), and ``Smith Trading`` held by two different customers;
* e-mails with an apostrophe (``o'brien@example.com``) and with mixed case;
* groups of several sales sharing the exact same ``Updated`` millisecond (tests the poll overlap);
* ~10% foreign-currency sales (NZD, USD), ~5% of sales with two invoices, ~3% DRAFT and ~3% VOIDED invoices.

Hostile cases (``hostile=True``), each on its own single-invoice AUTHORISED sale, roughly 1.5% of sales each
and at least one each when ``n_sales >= 10``:

* a line with TaxRule ``Zero Rated Imports`` (unknown to the mapping rules) -> ``dead_mapping``;
* a line with Account ``999`` (not in the Xero chart) -> ``dead_mapping``;
* a sale in ``JPY`` (not enabled in Xero; from a dedicated JPY customer) -> ``dead_xero``;
* an invoice dated 2019-05-10 (before Xero's period lock date 2020-06-30) -> ``dead_xero``.
"""

from __future__ import annotations

import calendar
import copy
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

__all__ = [
    "LOCK_DATE",
    "TAX_RULES",
    "UNKNOWN_ACCOUNT",
    "UNKNOWN_TAX_RULE",
    "Dataset",
    "InvoiceExpectation",
    "edit_invoice",
    "format_date",
    "format_timestamp",
    "generate",
    "parse_timestamp",
    "recompute_invoice_totals",
    "sale_list_row",
    "void_invoice",
]

Outcome = Literal["synced", "ignored", "dead_mapping", "dead_xero"]

UNKNOWN_TAX_RULE = "Zero Rated Imports"
UNKNOWN_ACCOUNT = "999"
LOCK_DATE = date(2020, 6, 30)
LOCKED_INVOICE_DATE = date(2019, 5, 10)

#: Cin7 tax rule name -> rate. ``Zero Rated Imports`` exists in Cin7 but the mapping rules do not know it.
TAX_RULES: dict[str, Decimal] = {
    "GST on Income": Decimal("0.10"),
    "GST Free Income": Decimal("0"),
    "GST Free Exports": Decimal("0"),
    "BAS Excluded": Decimal("0"),
    UNKNOWN_TAX_RULE: Decimal("0"),
}

_CENT = Decimal("0.01")
_HUNDRED = Decimal(100)
_ONE = Decimal(1)
_ZERO = Decimal(0)

# Foreign units per 1 AUD, the convention used by Cin7's CurrencyRate and by the Xero stand-in.
_RATES: dict[str, Decimal] = {
    "AUD": Decimal("1"),
    "NZD": Decimal("1.0850"),
    "USD": Decimal("0.6550"),
    "JPY": Decimal("98.5000"),
}

_PAYMENT_TERMS = ["30 days", "14 days", "Due on receipt", "20th of following month", "End of following month"]
_FRACTIONAL_QUANTITIES = [Decimal(q) for q in ("0.5", "1.5", "2.5", "3.25", "4.75", "7.5", "12.5")]
_DISCOUNTS = [Decimal("5"), Decimal("10"), Decimal("12.5")]

_NAME_FIRST = [
    "Acacia",
    "Banksia",
    "Coastal",
    "Dingo",
    "Emu",
    "Flinders",
    "Gidgee",
    "Hawkesbury",
    "Ironbark",
    "Jarrah",
    "Kookaburra",
    "Lorikeet",
    "Murray",
    "Nullarbor",
    "Otway",
    "Pilbara",
    "Quokka",
    "Riverina",
    "Snowy",
    "Tasman",
    "Uluru",
    "Victoria",
    "Wattle",
    "Yarra",
]
_NAME_SECOND = [
    "Bakery",
    "Builders",
    "Cafe",
    "Cycles",
    "Design",
    "Electrical",
    "Farms",
    "Garden Centre",
    "Hardware",
    "Imports",
    "Joinery",
    "Kitchens",
    "Landscaping",
    "Motors",
    "Nursery",
    "Outfitters",
    "Plumbing",
    "Provisions",
    "Retail",
    "Surf Co",
    "Textiles",
    "Timber",
    "Wholesale",
    "Wines",
]
_NAME_SUFFIX = ["Pty Ltd", "Ltd", "& Co", "Group", "", "", ""]
_PRODUCT_NOUNS = [
    "Widget",
    "Bracket",
    "Hinge",
    "Gasket",
    "Valve",
    "Fitting",
    "Panel",
    "Cable",
    "Sprocket",
    "Filter",
    "Bolt Pack",
    "Seal Kit",
    "Bearing",
    "Spring",
    "Lamp",
    "Switch",
]
_PRODUCT_ADJECTIVES = [
    "Small",
    "Large",
    "Heavy Duty",
    "Stainless",
    "Galvanised",
    "Premium",
    "Compact",
    "Blue",
]

_AU_CITIES = [
    ("Sydney", "NSW", "2000"),
    ("Melbourne", "VIC", "3000"),
    ("Brisbane", "QLD", "4000"),
    ("Perth", "WA", "6000"),
    ("Adelaide", "SA", "5000"),
    ("Hobart", "TAS", "7000"),
    ("Canberra", "ACT", "2600"),
    ("Darwin", "NT", "0800"),
]
_FOREIGN = {
    "NZD": ("New Zealand", [("Auckland", "Auckland", "1010"), ("Wellington", "Wellington", "6011")]),
    "USD": ("United States", [("Seattle", "WA", "98101"), ("Austin", "TX", "73301")]),
    "JPY": ("Japan", [("Tokyo", "Tokyo", "100-0001")]),
}
_STREETS = ["George St", "Queen St", "King St", "Collins St", "Pitt St", "Main Rd", "Harbour Dr", "High St"]


@dataclass
class InvoiceExpectation:
    """What the pipeline must end up doing with one Cin7 invoice (one ``TaskID``)."""

    sale_id: str
    task_id: str
    invoice_number: str
    customer_id: str
    #: ``ignored`` = DRAFT, or VOIDED before ever being synced.
    outcome: Outcome
    #: Why it is not ``synced``; empty for ``synced``.
    reason: str
    #: What Xero must show (== Cin7's TotalBeforeTax, Tax, Total).
    subtotal: Decimal
    total_tax: Decimal
    total: Decimal


@dataclass
class Dataset:
    """A generated Cin7 Core world plus the Xero contacts that exist before the first sync."""

    #: Cin7 Core customer JSON exactly as ``GET customer`` returns rows.
    customers: list[dict[str, Any]]
    #: Cin7 Core sale detail JSON exactly as ``GET sale?ID=`` returns it.
    sales: list[dict[str, Any]]
    #: Pre-existing Xero contacts (``Name``, ``EmailAddress``, ``ContactNumber``?, ``ContactStatus``).
    xero_contacts: list[dict[str, Any]]
    expectations: list[InvoiceExpectation]


# --------------------------------------------------------------------------------------------------
# Formatting helpers


def format_timestamp(moment: datetime) -> str:
    """Cin7's ``Updated``/``LastModifiedOn`` form: ``yyyy-MM-ddTHH:mm:ss.fffZ`` (UTC, milliseconds)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def format_date(day: date) -> str:
    """Cin7's document date form: ``yyyy-MM-ddT00:00:00`` without a zone."""
    return f"{day:%Y-%m-%d}T00:00:00"


def parse_timestamp(value: str) -> datetime:
    """Parse a Cin7 timestamp with or without ``Z``/offset; zone-less values are UTC."""
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _dec(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise TypeError(f"not an amount: {value!r}")
    # str() first so a float such as 12.3456 becomes exactly Decimal("12.3456")
    return Decimal(str(value))


def _q2(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# --------------------------------------------------------------------------------------------------
# Amount rules


def recompute_invoice_totals(invoice: dict[str, Any], tax_calculation: str, tax_rates: Mapping[str, Decimal]) -> None:
    """Recompute in place every line's ``Total``/``Tax`` and the ``TotalBeforeTax``/``Tax``/``Total``.

    Works for an invoice and for a sale's ``Order`` alike (both have ``Lines`` and ``AdditionalCharges``).
    Raises ``KeyError`` for a tax rule missing from ``tax_rates`` and ``ValueError`` for an unknown
    ``tax_calculation``.
    """
    inclusive = tax_calculation.strip().lower() == "inclusive"
    if not inclusive and tax_calculation.strip().lower() != "exclusive":
        raise ValueError(f"unknown TaxCalculation {tax_calculation!r}")
    sum_total = _ZERO
    sum_tax = _ZERO
    for line in [*(invoice.get("Lines") or []), *(invoice.get("AdditionalCharges") or [])]:
        quantity = _dec(line["Quantity"])
        price = _dec(line["Price"])
        discount = _dec(line.get("Discount") or 0)
        total = _q2(quantity * price * (_ONE - discount / _HUNDRED))
        rate = tax_rates[line["TaxRule"]]
        tax = _q2(total * rate / (_ONE + rate)) if inclusive else _q2(total * rate)
        line["Quantity"] = quantity
        line["Price"] = price
        line["Discount"] = discount
        line["Total"] = total
        line["Tax"] = tax
        sum_total += total
        sum_tax += tax
    if inclusive:
        invoice["Total"] = sum_total
        invoice["Tax"] = sum_tax
        invoice["TotalBeforeTax"] = sum_total - sum_tax
    else:
        invoice["TotalBeforeTax"] = sum_total
        invoice["Tax"] = sum_tax
        invoice["Total"] = sum_total + sum_tax


def _rebuild_order(sale: dict[str, Any]) -> None:
    # The generator builds the order as the union of its invoices, so an edit keeps it that way.
    order = sale["Order"]
    order["Lines"] = [copy.deepcopy(line) for inv in sale["Invoices"] for line in inv["Lines"]]
    order["AdditionalCharges"] = [
        copy.deepcopy(c) for inv in sale["Invoices"] for c in inv.get("AdditionalCharges") or []
    ]
    recompute_invoice_totals(order, sale["TaxCalculation"], TAX_RULES)


def _derive_statuses(sale: dict[str, Any]) -> None:
    """Set the sale-level status fields from its invoices' statuses."""
    statuses = [str(inv["Status"]).upper() for inv in sale["Invoices"]]
    live = [s for s in statuses if s in ("AUTHORISED", "PAID")]
    if statuses and all(s == "VOIDED" for s in statuses):
        sale["Status"] = "VOIDED"
        sale["Order"]["Status"] = "VOIDED"
        sale["CombinedInvoiceStatus"] = "VOIDED"
        sale["CombinedPaymentStatus"] = "VOIDED"
        return
    sale["Order"]["Status"] = "AUTHORISED"
    if not live:
        sale["Status"] = "INVOICING"
        sale["CombinedInvoiceStatus"] = "NOT INVOICED"
        sale["CombinedPaymentStatus"] = "UNPAID"
        return
    if len(live) < len([s for s in statuses if s != "VOIDED"]):
        sale["CombinedInvoiceStatus"] = "PARTIALLY INVOICED"
    else:
        sale["CombinedInvoiceStatus"] = "INVOICED"
    paid = [s for s in live if s == "PAID"]
    if len(paid) == len(live) and sale["CombinedInvoiceStatus"] == "INVOICED":
        sale["Status"] = "COMPLETED"
        sale["CombinedPaymentStatus"] = "PAID"
    else:
        sale["Status"] = "INVOICED"
        sale["CombinedPaymentStatus"] = "PARTIALLY PAID" if paid else "UNPAID"


def _find_invoice(sale: dict[str, Any], task_id: str) -> dict[str, Any]:
    wanted = task_id.lower()
    for invoice in sale["Invoices"]:
        if str(invoice["TaskID"]).lower() == wanted:
            return invoice  # type: ignore[no-any-return]
    raise KeyError(f"sale {sale.get('ID')} has no invoice with TaskID {task_id}")


def edit_invoice(sale: dict[str, Any], task_id: str, *, now: datetime, quantity_delta: int = 1) -> dict[str, Any]:
    """Return a copy of ``sale`` whose invoice ``task_id`` had its first line's Quantity changed.

    Line, invoice and order totals are recomputed per the conventions and ``LastModifiedOn`` becomes
    ``now``. Payments are left as they are (edit AUTHORISED invoices to stay realistic).
    """
    edited = copy.deepcopy(sale)
    invoice = _find_invoice(edited, task_id)
    first = invoice["Lines"][0]
    quantity = _dec(first["Quantity"]) + quantity_delta
    if quantity <= 0:
        raise ValueError(f"quantity would become {quantity}")
    first["Quantity"] = quantity
    recompute_invoice_totals(invoice, edited["TaxCalculation"], TAX_RULES)
    _rebuild_order(edited)
    edited["LastModifiedOn"] = format_timestamp(now)
    return edited


def void_invoice(sale: dict[str, Any], task_id: str, *, now: datetime) -> dict[str, Any]:
    """Return a copy of ``sale`` with invoice ``task_id`` VOIDED, statuses derived, LastModifiedOn ``now``."""
    voided = copy.deepcopy(sale)
    invoice = _find_invoice(voided, task_id)
    invoice["Status"] = "VOIDED"
    _derive_statuses(voided)
    voided["LastModifiedOn"] = format_timestamp(now)
    return voided


def sale_list_row(sale: dict[str, Any]) -> dict[str, Any]:
    """The ``GET saleList`` row for a sale detail; ``Updated`` is the sale's ``LastModifiedOn``."""
    invoices = sale.get("Invoices") or []
    first = invoices[0] if invoices else None
    live = [inv for inv in invoices if str(inv.get("Status", "")).upper() != "VOIDED"]
    invoice_amount = sum((_dec(inv.get("Total") or 0) for inv in live), _ZERO)
    paid_amount = sum((_dec(inv.get("Paid") or 0) for inv in live), _ZERO)
    order = sale.get("Order") or {}
    return {
        "SaleID": sale["ID"],
        "OrderNumber": order.get("SaleOrderNumber"),
        "Status": sale.get("Status"),
        "OrderDate": sale.get("SaleOrderDate"),
        "InvoiceDate": first.get("InvoiceDate") if first else None,
        "InvoiceDueDate": first.get("InvoiceDueDate") if first else None,
        "InvoiceNumber": first.get("InvoiceNumber") if first else None,
        "Customer": sale.get("Customer"),
        "CustomerID": sale.get("CustomerID"),
        "CustomerReference": sale.get("CustomerReference"),
        "InvoiceAmount": invoice_amount,
        "PaidAmount": paid_amount,
        "CustomerCurrency": sale.get("CustomerCurrency"),
        "Updated": sale.get("LastModifiedOn"),
        "OrderStatus": order.get("Status"),
        "CombinedInvoiceStatus": sale.get("CombinedInvoiceStatus"),
        "CombinedPaymentStatus": sale.get("CombinedPaymentStatus"),
        "CombinedPickingStatus": "NOT PICKED",
        "CombinedPackingStatus": "NOT PACKED",
        "CombinedShippingStatus": "NOT SHIPPED",
        "Type": sale.get("Type"),
        "ExternalID": "",
        "SourceChannel": None,
    }


# --------------------------------------------------------------------------------------------------
# Generation


def _due_date(invoice_date: date, term: str) -> date:
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


def _address(rng: random.Random, currency: str, kind: str) -> dict[str, Any]:
    if currency in _FOREIGN:
        country, cities = _FOREIGN[currency]
        city, state, postcode = rng.choice(cities)
    else:
        country = "Australia"
        city, state, postcode = rng.choice(_AU_CITIES)
    return {
        "Line1": f"{rng.randint(1, 400)} {rng.choice(_STREETS)}",
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
    term = rng.choice(_PAYMENT_TERMS)
    return {
        "ID": _uuid(rng),
        "Name": name,
        "DisplayName": name.strip(),
        "CustomerParentID": None,
        "Currency": currency,
        "PaymentTerm": term,
        "Discount": _ZERO,
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


# (name, email, currency, contact person). Indexes are referenced by the Xero seed contacts below.
_SPECIAL_CUSTOMERS: list[tuple[str, str, str, str]] = [
    ("O'Brien & Sons", "o'brien@example.com", "AUD", "Pat O'Brien"),
    ('Zoë\'s "Best" Café', "Accounts@ZoesCafe.example.com", "AUD", "Zoë Martin"),
    ("Ngā Tamariki Ltd", "kiaora@ngatamariki.example.nz", "NZD", "Aroha Ngata"),
    ("Smith Trading", "accounts@smithtrading.example.com", "AUD", "Jo Smith"),
    ("Smith Trading", "Smith.Trading@Example.NET", "USD", "Sam Smith"),
    ("Kauri Timber Co   ", "orders@kauritimber.example.com", "AUD", "Kim Lee"),
    ("Harbour Supplies", "Accounts@HarbourSupplies.example.com", "AUD", "Hana Park"),
    ("Blue Gum Hardware", "blue.gum@example.com", "AUD", "Ben Gray"),
]
_EMAIL_ADOPT_INDEX = 6  # Harbour Supplies
_ARCHIVED_NAME_INDEX = 2  # Ngā Tamariki Ltd
_NUMBER_ADOPT_INDEX = 7  # Blue Gum Hardware


def _make_customers(
    rng: random.Random, now: datetime, n_sales: int, hostile: bool
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    customers = [_customer(rng, now, spec) for spec in _SPECIAL_CUSTOMERS]
    taken = {c["Name"] for c in customers}
    target = max(len(customers) + 1, n_sales // 3)
    while len(customers) < target:
        base = f"{rng.choice(_NAME_FIRST)} {rng.choice(_NAME_SECOND)}"
        suffix = rng.choice(_NAME_SUFFIX)
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


def _xero_contacts(customers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Xero contacts that exist before the first sync.

    (a) ACTIVE "Harbour Supplies Pty Ltd", no ContactNumber, EmailAddress = Cin7 "Harbour Supplies"'s
        e-mail in a different case -> the pipeline must adopt it by e-mail.
    (b) ARCHIVED "Ngā Tamariki Ltd", the exact name of that Cin7 customer -> never adopted.
    (c) ACTIVE "Blue Gum Hardware (old)" with ContactNumber = Cin7 "Blue Gum Hardware"'s ID -> adopt by
        number.
    """
    email_target = customers[_EMAIL_ADOPT_INDEX]
    archived_target = customers[_ARCHIVED_NAME_INDEX]
    number_target = customers[_NUMBER_ADOPT_INDEX]
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


def _products(rng: random.Random) -> list[tuple[str, str, str]]:
    products = []
    for i in range(60):
        name = f"{rng.choice(_PRODUCT_ADJECTIVES)} {rng.choice(_PRODUCT_NOUNS)}"
        products.append((_uuid(rng), f"SKU-{i + 1:04d}", name))
    return products


def _price(rng: random.Random) -> Decimal:
    if rng.random() < 0.2:
        return Decimal(rng.randint(10_000, 2_500_000)).scaleb(-4)
    return Decimal(rng.randint(100, 250_000)).scaleb(-2)


def _line(rng: random.Random, products: list[tuple[str, str, str]], export: bool) -> dict[str, Any]:
    product_id, sku, name = rng.choice(products)
    quantity = rng.choice(_FRACTIONAL_QUANTITIES) if rng.random() < 0.15 else Decimal(rng.randint(1, 20))
    discount = rng.choice(_DISCOUNTS) if rng.random() < 0.2 else _ZERO
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
        "Tax": _ZERO,
        "Total": _ZERO,
        "TaxRule": tax_rule,
        "Account": "260" if rng.random() < 0.1 else "200",
        "Comment": "",
    }


def _freight(rng: random.Random, tax_rule: str) -> dict[str, Any]:
    return {
        "Description": "Freight",
        "Quantity": _ONE,
        "Price": Decimal(rng.randint(500, 9_000)).scaleb(-2),
        "Discount": _ZERO,
        "Tax": _ZERO,
        "Total": _ZERO,
        "TaxRule": tax_rule,
        "Account": "200",
    }


def generate(seed: int, n_sales: int, *, now: datetime, hostile: bool = True) -> Dataset:
    """Generate ``n_sales`` Cin7 sales, their customers, the pre-existing Xero contacts and the expectations.

    Deterministic in (``seed``, ``n_sales``, ``now``, ``hostile``). ``now`` must be timezone-aware; all
    ``LastModifiedOn`` values fall within the three days before it.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if n_sales < 0:
        raise ValueError("n_sales must be >= 0")
    now = now.astimezone(UTC)
    rng = random.Random(seed)
    customers, jpy_customer = _make_customers(rng, now, n_sales, hostile)
    xero_contacts = _xero_contacts(customers)
    products = _products(rng)

    # Repeat buyers: a Zipf-ish weight over the regular customers; the JPY customer only buys hostile sales.
    pool = [c for c in customers if c is not jpy_customer]
    cum_weights: list[float] = []
    running = 0.0
    for rank in range(len(pool)):
        running += 1.0 / (rank + 1) ** 0.8
        cum_weights.append(running)

    # Which sales carry the hostile cases; never the first few, which guarantee every special customer a
    # clean sale (so the seeded Xero contacts are exercised).
    n_special = len(_SPECIAL_CUSTOMERS)
    kinds: dict[int, str] = {}
    if hostile and n_sales >= 10:
        per_kind = max(1, round(n_sales * 0.015))
        candidates = range(n_special, n_sales) if n_sales - n_special >= 4 * per_kind else range(n_sales)
        chosen = rng.sample(candidates, min(len(candidates), 4 * per_kind))
        for i, index in enumerate(chosen):
            kinds[index] = ("unknown_tax", "unknown_account", "jpy", "locked")[i % 4]

    # LastModifiedOn spread over the last ~3 days, then groups forced onto one shared millisecond.
    window_ms = 3 * 86_400_000
    stamps = [now - timedelta(milliseconds=rng.randint(0, window_ms)) for _ in range(n_sales)]
    stamps = [s.replace(microsecond=s.microsecond // 1000 * 1000) for s in stamps]
    if n_sales >= 3:
        for _ in range(max(1, n_sales // 50)):
            size = min(n_sales, rng.randint(3, 6))
            members = rng.sample(range(n_sales), size)
            shared = stamps[members[0]]
            for m in members:
                stamps[m] = shared

    sales: list[dict[str, Any]] = []
    expectations: list[InvoiceExpectation] = []
    invoice_counter = 0
    for index in range(n_sales):
        kind = kinds.get(index, "normal")
        if kind == "jpy" and jpy_customer is not None:
            customer = jpy_customer
        elif index < n_special:
            customer = customers[index]
        else:
            customer = rng.choices(pool, cum_weights=cum_weights)[0]
        currency = str(customer["Currency"])
        export = currency != "AUD"
        tax_calculation = "Inclusive" if rng.random() < 0.4 else "Exclusive"
        two_invoices = kind == "normal" and index >= n_special and rng.random() < 0.05
        sale_tax_rule = str(customer["TaxRule"])
        modified = stamps[index]

        if kind == "locked":
            first_invoice_date = LOCKED_INVOICE_DATE
        else:
            first_invoice_date = (modified - timedelta(days=rng.randint(0, 20))).date()
        order_date = first_invoice_date - timedelta(days=rng.randint(0, 5))

        n_invoices = 2 if two_invoices else 1
        invoices: list[dict[str, Any]] = []
        for inv_index in range(n_invoices):
            invoice_counter += 1
            n_lines = rng.randint(1, 5)
            lines = [_line(rng, products, export) for _ in range(n_lines)]
            charges = [_freight(rng, sale_tax_rule)] if rng.random() < 0.4 else []
            if kind == "unknown_tax":
                lines[0]["TaxRule"] = UNKNOWN_TAX_RULE
            elif kind == "unknown_account":
                lines[0]["Account"] = UNKNOWN_ACCOUNT
            # hostile and special-customer sales stay AUTHORISED so their outcome is exactly the one intended
            clean = kind != "normal" or index < n_special
            status = "AUTHORISED" if clean else _invoice_status(rng.random())
            invoice_date = first_invoice_date + timedelta(days=inv_index * rng.randint(1, 7))
            due = None if rng.random() < 0.15 else _due_date(invoice_date, str(customer["PaymentTerm"]))
            invoice: dict[str, Any] = {
                "TaskID": _uuid(rng),
                "InvoiceNumber": f"INV-{invoice_counter:05d}",
                "Status": status,
                "InvoiceDate": format_date(invoice_date),
                "InvoiceDueDate": format_date(due) if due else None,
                "CurrencyConversionRate": _RATES[currency],
                "BillingAddressLine1": customer["Addresses"][0]["Line1"],
                "BillingAddressLine2": customer["Addresses"][0]["Line2"],
                "LinkedFulfillmentNumber": "1",
                "Memo": rng.choice(["", "", "Thank you for your business", "Deliver to rear dock"]),
                "Lines": lines,
                "AdditionalCharges": charges,
                "Payments": [],
                "TotalBeforeTax": _ZERO,
                "Tax": _ZERO,
                "Total": _ZERO,
                "Paid": _ZERO,
            }
            recompute_invoice_totals(invoice, tax_calculation, TAX_RULES)
            if status == "PAID":
                paid_on = min(invoice_date + timedelta(days=rng.randint(0, 10)), modified.date())
                invoice["Payments"] = [
                    {
                        "ID": _uuid(rng),
                        "Reference": f"EFT {rng.randint(100000, 999999)}",
                        "Amount": invoice["Total"],
                        "DatePaid": format_date(paid_on),
                        "Account": "090",
                        "CurrencyRate": _RATES[currency],
                        "DateCreated": format_timestamp(modified),
                    }
                ]
                invoice["Paid"] = invoice["Total"]
            invoices.append(invoice)

        billing = {k: v for k, v in customer["Addresses"][0].items() if k != "Type"}
        shipping = {k: v for k, v in customer["Addresses"][1].items() if k != "Type"}
        sale: dict[str, Any] = {
            "ID": _uuid(rng),
            "Customer": customer["Name"],
            "CustomerID": customer["ID"],
            "Contact": customer["Contacts"][0]["Name"],
            "Phone": customer["Contacts"][0]["Phone"],
            "Email": customer["Contacts"][0]["Email"],
            "DefaultAccount": "200",
            "CustomerReference": "" if rng.random() < 0.4 else f"PO-{rng.randint(1000, 99999)}",
            "SaleOrderDate": format_date(order_date),
            "BillingAddress": billing,
            "ShippingAddress": shipping,
            "BaseCurrency": "AUD",
            "CustomerCurrency": currency,
            "CurrencyRate": _RATES[currency],
            "TaxRule": sale_tax_rule,
            "TaxCalculation": tax_calculation,
            "Terms": customer["PaymentTerm"],
            "PriceTier": "Tier 1",
            "Location": "Main Warehouse",
            "LastModifiedOn": format_timestamp(modified),
            "Status": "INVOICED",
            "CombinedInvoiceStatus": "INVOICED",
            "CombinedPaymentStatus": "UNPAID",
            "Type": "Advanced Sale" if two_invoices or rng.random() < 0.2 else "Simple Sale",
            "Order": {
                "SaleOrderNumber": f"SO-{index + 1:05d}",
                "Memo": rng.choice(["", "", "Urgent", "Call before delivery"]),
                "Status": "AUTHORISED",
                "Lines": [],
                "AdditionalCharges": [],
                "TotalBeforeTax": _ZERO,
                "Tax": _ZERO,
                "Total": _ZERO,
            },
            "Invoices": invoices,
            "CreditNotes": [],
        }
        _rebuild_order(sale)
        _derive_statuses(sale)
        sales.append(sale)

        for invoice in invoices:
            outcome, reason = _expected_outcome(kind, str(invoice["Status"]), currency)
            expectations.append(
                InvoiceExpectation(
                    sale_id=sale["ID"],
                    task_id=invoice["TaskID"],
                    invoice_number=invoice["InvoiceNumber"],
                    customer_id=customer["ID"],
                    outcome=outcome,
                    reason=reason,
                    subtotal=invoice["TotalBeforeTax"],
                    total_tax=invoice["Tax"],
                    total=invoice["Total"],
                )
            )

    return Dataset(customers=customers, sales=sales, xero_contacts=xero_contacts, expectations=expectations)


def _invoice_status(roll: float) -> str:
    if roll < 0.03:
        return "DRAFT"
    if roll < 0.06:
        return "VOIDED"
    return "PAID" if roll < 0.30 else "AUTHORISED"


def _expected_outcome(kind: str, status: str, currency: str) -> tuple[Outcome, str]:
    if status == "DRAFT":
        return "ignored", "invoice is DRAFT"
    if status == "VOIDED":
        return "ignored", "invoice VOIDED before it was ever synced"
    match kind:
        case "unknown_tax":
            return "dead_mapping", f"unknown tax rule '{UNKNOWN_TAX_RULE}'"
        case "unknown_account":
            return "dead_mapping", f"account '{UNKNOWN_ACCOUNT}' is not in the Xero chart of accounts"
        case "jpy":
            return "dead_xero", f"currency {currency} not enabled in Xero"
        case "locked":
            return (
                "dead_xero",
                f"invoice date {LOCKED_INVOICE_DATE.isoformat()} is before the Xero period lock date "
                f"{LOCK_DATE.isoformat()}",
            )
        case _:
            return "synced", ""

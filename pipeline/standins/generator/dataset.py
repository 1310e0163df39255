"""``generate()``: a seeded, deterministic Cin7 Core world of customers and sales, with its expectations."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.standins.generator.customers import make_customers, seeded_xero_contacts
from pipeline.standins.generator.expectations import InvoiceExpectation, expected_outcome
from pipeline.standins.generator.sales import due_date, freight_charge, invoice_status, make_products, product_line
from pipeline.standins.generator.tables import (
    LOCKED_INVOICE_DATE,
    RATES,
    SPECIAL_CUSTOMERS,
    TAX_RULES,
    UNKNOWN_ACCOUNT,
    UNKNOWN_TAX_RULE,
)
from pipeline.standins.generator.totals import derive_statuses, rebuild_order, recompute_invoice_totals
from pipeline.standins.generator.values import ZERO, format_date, format_timestamp, random_uuid


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
    customers, jpy_customer = make_customers(rng, now, n_sales, hostile)
    xero_contacts = seeded_xero_contacts(customers)
    products = make_products(rng)

    # Repeat buyers: a Zipf-ish weight over the regular customers; the JPY customer only buys hostile sales.
    pool = [c for c in customers if c is not jpy_customer]
    cum_weights: list[float] = []
    running = 0.0
    for rank in range(len(pool)):
        running += 1.0 / (rank + 1) ** 0.8
        cum_weights.append(running)

    # Which sales carry the hostile cases; never the first few, which guarantee every special customer a
    # clean sale (so the seeded Xero contacts are exercised).
    n_special = len(SPECIAL_CUSTOMERS)
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
            lines = [product_line(rng, products, export) for _ in range(n_lines)]
            charges = [freight_charge(rng, sale_tax_rule)] if rng.random() < 0.4 else []
            if kind == "unknown_tax":
                lines[0]["TaxRule"] = UNKNOWN_TAX_RULE
            elif kind == "unknown_account":
                lines[0]["Account"] = UNKNOWN_ACCOUNT
            # hostile and special-customer sales stay AUTHORISED so their outcome is exactly the one intended
            clean = kind != "normal" or index < n_special
            status = "AUTHORISED" if clean else invoice_status(rng.random())
            invoice_date = first_invoice_date + timedelta(days=inv_index * rng.randint(1, 7))
            due = None if rng.random() < 0.15 else due_date(invoice_date, str(customer["PaymentTerm"]))
            invoice: dict[str, Any] = {
                "TaskID": random_uuid(rng),
                "InvoiceNumber": f"INV-{invoice_counter:05d}",
                "Status": status,
                "InvoiceDate": format_date(invoice_date),
                "InvoiceDueDate": format_date(due) if due else None,
                "CurrencyConversionRate": RATES[currency],
                "BillingAddressLine1": customer["Addresses"][0]["Line1"],
                "BillingAddressLine2": customer["Addresses"][0]["Line2"],
                "LinkedFulfillmentNumber": "1",
                "Memo": rng.choice(["", "", "Thank you for your business", "Deliver to rear dock"]),
                "Lines": lines,
                "AdditionalCharges": charges,
                "Payments": [],
                "TotalBeforeTax": ZERO,
                "Tax": ZERO,
                "Total": ZERO,
                "Paid": ZERO,
            }
            recompute_invoice_totals(invoice, tax_calculation, TAX_RULES)
            if status == "PAID":
                paid_on = min(invoice_date + timedelta(days=rng.randint(0, 10)), modified.date())
                invoice["Payments"] = [
                    {
                        "ID": random_uuid(rng),
                        "Reference": f"EFT {rng.randint(100000, 999999)}",
                        "Amount": invoice["Total"],
                        "DatePaid": format_date(paid_on),
                        "Account": "090",
                        "CurrencyRate": RATES[currency],
                        "DateCreated": format_timestamp(modified),
                    }
                ]
                invoice["Paid"] = invoice["Total"]
            invoices.append(invoice)

        billing = {k: v for k, v in customer["Addresses"][0].items() if k != "Type"}
        shipping = {k: v for k, v in customer["Addresses"][1].items() if k != "Type"}
        sale: dict[str, Any] = {
            "ID": random_uuid(rng),
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
            "CurrencyRate": RATES[currency],
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
                "TotalBeforeTax": ZERO,
                "Tax": ZERO,
                "Total": ZERO,
            },
            "Invoices": invoices,
            "CreditNotes": [],
        }
        rebuild_order(sale)
        derive_statuses(sale)
        sales.append(sale)

        for invoice in invoices:
            outcome, reason = expected_outcome(kind, str(invoice["Status"]), currency)
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

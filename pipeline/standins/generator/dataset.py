"""``generate()``: a seeded, deterministic Cin7 Core world of customers and sales, with its expectations."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.standins.generator.customers import make_customers, seeded_xero_contacts
from pipeline.standins.generator.expectations import (
    CreditNoteExpectation,
    InvoiceExpectation,
    PaymentExpectation,
    expected_outcome,
    settlement_expectations,
)
from pipeline.standins.generator.sales import due_date, freight_charge, invoice_status, make_products, product_line
from pipeline.standins.generator.scenarios import (
    COVERAGE_MIN_SALES,
    Candidate,
    apply_scenario,
    candidate,
    ensure_coverage,
    pick_scenario,
    settlement_rng,
)
from pipeline.standins.generator.tables import (
    LOCKED_INVOICE_DATE,
    RATES,
    SPECIAL_CUSTOMERS,
    TAX_RULES,
    UNKNOWN_ACCOUNT,
    UNKNOWN_TAX_RULE,
    ZERO_RATED_AS_GST_RULE,
)
from pipeline.standins.generator.totals import (
    derive_statuses,
    rebuild_order,
    recompute_invoice_totals,
    unpaid_invoice_body,
)
from pipeline.standins.generator.values import ZERO, format_date, format_timestamp, random_uuid, round_cents, to_decimal


@dataclass
class Dataset:
    """A generated Cin7 Core world plus the Xero contacts that exist before the first sync."""

    #: Cin7 Core customer JSON exactly as ``GET customer`` returns rows.
    customers: list[dict[str, Any]]
    #: Cin7 Core sale detail JSON exactly as ``GET sale?ID=`` returns it.
    sales: list[dict[str, Any]]
    #: Pre-existing Xero contacts (``Name``, ``EmailAddress``, ``ContactNumber``?, ``ContactStatus``).
    xero_contacts: list[dict[str, Any]]
    #: One per invoice (``TaskID``), in sale order.
    expectations: list[InvoiceExpectation]
    #: One per credit note of any status, in sale order.
    credit_notes: list[CreditNoteExpectation] = field(default_factory=list)
    #: Every payment and refund that must reach Xero (those of synced invoices and their AUTHORISED credit).
    payments: list[PaymentExpectation] = field(default_factory=list)
    #: Cin7 Core supplier JSON as ``GET supplier`` returns rows (``purchases.with_purchases`` fills it).
    suppliers: list[dict[str, Any]] = field(default_factory=list)
    #: Cin7 Core purchase detail JSON as ``GET advanced-purchase?ID=`` returns it.
    purchases: list[dict[str, Any]] = field(default_factory=list)


# Added to every price of a ``four_dp`` sale, so that its amounts have four places as Cin7's may.
FOUR_DP_PRICE_STEP = Decimal("0.0049")
_HOSTILE_KINDS = ("unknown_tax", "unknown_account", "jpy", "locked", "four_dp", "zero_rate_as_gst")


@dataclass(slots=True)
class _SalePlan:
    """What one sale is, decided before its invoices are drawn."""

    index: int
    kind: str
    customer: dict[str, Any]
    tax_calculation: str
    two_invoices: bool
    modified: datetime
    first_invoice_date: date
    order_date: date

    @property
    def currency(self) -> str:
        return str(self.customer["Currency"])

    @property
    def tax_rule(self) -> str:
        return str(self.customer["TaxRule"])

    @property
    def clean(self) -> bool:
        # Hostile and special-customer sales stay AUTHORISED so their outcome is exactly the one intended.
        return self.kind != "normal" or self.index < len(SPECIAL_CUSTOMERS)


@dataclass(frozen=True, slots=True)
class Timeline:
    """When a generation's sales happen, and which of them are orders that were never invoiced.

    ``stamps(rng, now, n_sales)`` gives every sale's ``LastModifiedOn``, by sale index; its invoices are dated
    up to 20 days before it (their payments and credit between the two). ``never_invoiced(index, kind)``
    says whether a sale is left without invoices (its order keeps its lines); it must draw from a generator
    of its own, so that the main draws stay the same.
    """

    stamps: Callable[[random.Random, datetime, int], list[datetime]]
    never_invoiced: Callable[[int, str], bool] | None = None


def generate(seed: int, n_sales: int, *, now: datetime, hostile: bool = True) -> Dataset:
    """Generate ``n_sales`` Cin7 sales, their customers, the pre-existing Xero contacts and the expectations.

    Deterministic in (``seed``, ``n_sales``, ``now``, ``hostile``). ``now`` must be timezone-aware; all
    ``LastModifiedOn`` values fall within the three days before it.
    """
    return generate_on(Timeline(_modified_stamps), seed, n_sales, now=now, hostile=hostile)


def generate_on(timeline: Timeline, seed: int, n_sales: int, *, now: datetime, hostile: bool = True) -> Dataset:
    """``generate()`` with the sales placed in time by ``timeline`` (``history.generate_history`` uses it)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if n_sales < 0:
        raise ValueError("n_sales must be >= 0")
    now = now.astimezone(UTC)
    # Every step draws from this one generator, so the order of the steps (and of the draws within each)
    # is what makes a seed reproduce the same dataset.
    rng = random.Random(seed)
    customers, jpy_customer = make_customers(rng, now, n_sales, hostile)
    xero_contacts = seeded_xero_contacts(customers)
    products = make_products(rng)
    # The JPY customer only buys hostile sales.
    pool = [c for c in customers if c is not jpy_customer]
    cum_weights = _buyer_weights(len(pool))
    kinds = _hostile_kinds(rng, n_sales, hostile)
    stamps = timeline.stamps(rng, now, n_sales)

    sales: list[dict[str, Any]] = []
    plans: list[_SalePlan] = []
    # Payments and credit notes draw from a stream of their own: the main one draws exactly as it did
    # before they existed, so the same seed still gives the same invoices, numbers and totals.
    settle = settlement_rng(seed)
    candidates: list[Candidate] = []
    invoice_counter = 0
    for index in range(n_sales):
        kind = kinds.get(index, "normal")
        if kind == "jpy" and jpy_customer is not None:
            customer = jpy_customer
        elif index < len(SPECIAL_CUSTOMERS):
            customer = customers[index]
        else:
            customer = rng.choices(pool, cum_weights=cum_weights)[0]
        plan = _plan_sale(rng, index, kind, customer, stamps[index])
        invoices: list[dict[str, Any]] = []
        for inv_index in range(2 if plan.two_invoices else 1):
            invoice_counter += 1
            invoices.append(_make_invoice(rng, plan, products, inv_index, invoice_counter))
        sale = _make_sale(rng, plan, invoices)
        if timeline.never_invoiced is not None and timeline.never_invoiced(index, kind):
            _withdraw_invoices(sale)
            # Their numbers go to the next sale's invoices, so that the invoice numbers have no gaps.
            invoice_counter -= len(invoices)
        sales.append(sale)
        plans.append(plan)
        if plan.kind == "normal" and not plan.clean:
            candidates.extend(_settle(settle, sale, plan))
    if n_sales >= COVERAGE_MIN_SALES:
        ensure_coverage(settle, candidates)

    dataset = Dataset(customers=customers, sales=sales, xero_contacts=xero_contacts, expectations=[])
    for plan, sale in zip(plans, sales, strict=True):
        _expectations(dataset, plan, sale)
    return dataset


def _settle(rng: random.Random, sale: dict[str, Any], plan: _SalePlan) -> list[Candidate]:
    """Draw a settlement scenario for each eligible invoice of an ordinary sale; return the candidates."""
    found = []
    for invoice in sale["Invoices"]:
        cand = candidate(sale, invoice, plan.modified)
        if cand is None:
            continue
        scenario = pick_scenario(rng, str(invoice["Status"]))
        if scenario is not None:
            apply_scenario(rng, cand, scenario)
        found.append(cand)
    return found


def _buyer_weights(n_buyers: int) -> list[float]:
    """Cumulative Zipf-ish weights over the regular customers, so that some of them buy again and again."""
    cum_weights: list[float] = []
    running = 0.0
    for rank in range(n_buyers):
        running += 1.0 / (rank + 1) ** 0.8
        cum_weights.append(running)
    return cum_weights


def _hostile_kinds(rng: random.Random, n_sales: int, hostile: bool) -> dict[int, str]:
    """Which sales carry the hostile cases, by sale index."""
    # Never the first few, which guarantee every special customer a clean sale (so the seeded Xero contacts
    # are exercised).
    n_special = len(SPECIAL_CUSTOMERS)
    kinds: dict[int, str] = {}
    if hostile and n_sales >= 10:
        per_kind = max(1, round(n_sales * 0.015))
        wanted = len(_HOSTILE_KINDS) * per_kind
        candidates = range(n_special, n_sales) if n_sales - n_special >= wanted else range(n_sales)
        chosen = rng.sample(candidates, min(len(candidates), wanted))
        for i, index in enumerate(chosen):
            kinds[index] = _HOSTILE_KINDS[i % len(_HOSTILE_KINDS)]
    return kinds


def _modified_stamps(rng: random.Random, now: datetime, n_sales: int) -> list[datetime]:
    """``LastModifiedOn`` spread over the last ~3 days, then groups forced onto one shared millisecond."""
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
    return stamps


def _plan_sale(rng: random.Random, index: int, kind: str, customer: dict[str, Any], modified: datetime) -> _SalePlan:
    tax_calculation = "Inclusive" if rng.random() < 0.4 else "Exclusive"
    two_invoices = kind == "normal" and index >= len(SPECIAL_CUSTOMERS) and rng.random() < 0.05
    if kind == "locked":
        first_invoice_date = LOCKED_INVOICE_DATE
    else:
        first_invoice_date = (modified - timedelta(days=rng.randint(0, 20))).date()
    order_date = first_invoice_date - timedelta(days=rng.randint(0, 5))
    return _SalePlan(
        index=index,
        kind=kind,
        customer=customer,
        tax_calculation=tax_calculation,
        two_invoices=two_invoices,
        modified=modified,
        first_invoice_date=first_invoice_date,
        order_date=order_date,
    )


def _make_invoice(
    rng: random.Random, plan: _SalePlan, products: list[tuple[str, str, str]], inv_index: int, number: int
) -> dict[str, Any]:
    customer = plan.customer
    currency = plan.currency
    n_lines = rng.randint(1, 5)
    lines = [product_line(rng, products, currency != "AUD") for _ in range(n_lines)]
    charges = [freight_charge(rng, plan.tax_rule)] if rng.random() < 0.4 else []
    if plan.kind == "unknown_tax":
        lines[0]["TaxRule"] = UNKNOWN_TAX_RULE
    elif plan.kind == "unknown_account":
        lines[0]["Account"] = UNKNOWN_ACCOUNT
    elif plan.kind == "zero_rate_as_gst":
        lines[0]["TaxRule"] = ZERO_RATED_AS_GST_RULE
    elif plan.kind == "four_dp":
        for line in [*lines, *charges]:
            # Cin7 keeps 4 dp: prices like 12.3449 give line totals and tax that are not whole cents.
            line["Price"] = to_decimal(line["Price"]) + FOUR_DP_PRICE_STEP
    status = "AUTHORISED" if plan.clean else invoice_status(rng.random())
    # A second invoice follows the first by up to a week, but not past the sale's LastModifiedOn (so that
    # its payments can be dated between the two).
    invoice_date = min(plan.first_invoice_date + timedelta(days=inv_index * rng.randint(1, 7)), plan.modified.date())
    due = None if rng.random() < 0.15 else due_date(invoice_date, str(customer["PaymentTerm"]))
    invoice: dict[str, Any] = {
        "TaskID": random_uuid(rng),
        "InvoiceNumber": f"INV-{number:05d}",
        "Status": status,
        "InvoiceDate": format_date(invoice_date),
        "InvoiceDueDate": format_date(due) if due else None,
        "CurrencyConversionRate": RATES[currency],
        "BillingAddressLine1": customer["Addresses"][0]["Line1"],
        "BillingAddressLine2": customer["Addresses"][0]["Line2"],
        "LinkedFulfillmentNumber": "1",
        "Memo": rng.choice(["", "", "Thank you for your business", "Deliver to rear dock"]),
        **unpaid_invoice_body(lines, charges),
    }
    recompute_invoice_totals(invoice, plan.tax_calculation, TAX_RULES, places=4 if plan.kind == "four_dp" else 2)
    if status == "PAID":
        _pay_in_full(rng, invoice, invoice_date, plan)
    return invoice


def _pay_in_full(rng: random.Random, invoice: dict[str, Any], invoice_date: date, plan: _SalePlan) -> None:
    paid_on = min(invoice_date + timedelta(days=rng.randint(0, 10)), plan.modified.date())
    invoice["Payments"] = [
        {
            "ID": random_uuid(rng),
            "Reference": f"EFT {rng.randint(100000, 999999)}",
            "Amount": round_cents(invoice["Total"]),
            "DatePaid": format_date(paid_on),
            "Account": "090",
            "CurrencyRate": RATES[plan.currency],
            "DateCreated": format_timestamp(plan.modified),
        }
    ]
    invoice["Paid"] = round_cents(invoice["Total"])


def _make_sale(rng: random.Random, plan: _SalePlan, invoices: list[dict[str, Any]]) -> dict[str, Any]:
    customer = plan.customer
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
        "SaleOrderDate": format_date(plan.order_date),
        "BillingAddress": billing,
        "ShippingAddress": shipping,
        "BaseCurrency": "AUD",
        "CustomerCurrency": plan.currency,
        "CurrencyRate": RATES[plan.currency],
        "TaxRule": plan.tax_rule,
        "TaxCalculation": plan.tax_calculation,
        "Terms": customer["PaymentTerm"],
        "PriceTier": "Tier 1",
        "Location": "Main Warehouse",
        "LastModifiedOn": format_timestamp(plan.modified),
        "Status": "INVOICED",
        "CombinedInvoiceStatus": "INVOICED",
        "CombinedPaymentStatus": "UNPAID",
        "Type": "Advanced Sale" if plan.two_invoices or rng.random() < 0.2 else "Simple Sale",
        "Order": {
            "SaleOrderNumber": f"SO-{plan.index + 1:05d}",
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
    return sale


def _withdraw_invoices(sale: dict[str, Any]) -> None:
    """Make ``sale`` an order that was never invoiced: no invoices, its order (built from them) kept."""
    sale["Invoices"] = []
    derive_statuses(sale)
    # derive_statuses says INVOICING (what a sale whose invoices are all DRAFT is); nothing was started here.
    sale["Status"] = "ORDERED"


def _expectations(dataset: Dataset, plan: _SalePlan, sale: dict[str, Any]) -> None:
    """Append the expectations of ``sale``'s invoices, credit notes and payments to ``dataset``."""
    for invoice in sale["Invoices"]:
        outcome, reason = expected_outcome(plan.kind, str(invoice["Status"]), plan.currency)
        # What Xero must show: Cin7's Total and Tax to the cent, and the subtotal between them (for a
        # 4-dp invoice, a rounding line makes Xero's 2-dp lines add up to exactly that).
        total, tax = round_cents(to_decimal(invoice["Total"])), round_cents(to_decimal(invoice["Tax"]))
        (paid, credited, due), credit_notes, payments = settlement_expectations(
            sale, invoice, plan.customer["ID"], outcome
        )
        dataset.expectations.append(
            InvoiceExpectation(
                sale_id=sale["ID"],
                task_id=invoice["TaskID"],
                invoice_number=invoice["InvoiceNumber"],
                customer_id=plan.customer["ID"],
                outcome=outcome,
                reason=reason,
                subtotal=total - tax,
                total_tax=tax,
                total=total,
                amount_paid=paid,
                amount_credited=credited,
                amount_due=due,
            )
        )
        dataset.credit_notes.extend(credit_notes)
        dataset.payments.extend(payments)

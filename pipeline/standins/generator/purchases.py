"""``generate_purchases()``: seeded, deterministic Cin7 suppliers and purchases, with what Xero must hold.

Purchases are simple (one ``Invoice`` object), advanced (an ``Invoice`` array, some with two bills) and
service ones (no stock; one object, as a simple purchase); bills are DRAFT, VOIDED, AUTHORISED (unpaid or
part-paid) or PAID by one or several supplier payments; some paid bills carry a supplier credit note
(AUTHORISED and refunded, AUTHORISED and left as credit, DRAFT, VOIDED). When ``n_purchases`` is at least
``COVERAGE_MIN_PURCHASES``, every one of those cases, both spellings of the bill number key and freight are
present. Every supplier gets a purchase when there are at least as many purchases as suppliers.

To serve them from the Cin7 stand-in, put them in a ``Dataset`` with :func:`with_purchases`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.standins.generator.dataset import Dataset, _modified_stamps
from pipeline.standins.generator.history import spread_stamps
from pipeline.standins.generator.purchase_documents import (
    NUMBER_KEYS,
    derive_purchase_statuses,
    empty_task,
    freight_charge,
    make_bill,
    make_purchase_credit_note,
    pay_bill,
    service_line,
    stock_line,
)
from pipeline.standins.generator.purchase_expectations import (
    BillExpectation,
    PurchaseCreditNoteExpectation,
    SupplierContactExpectation,
    SupplierCustomerMerge,
    SupplierPaymentExpectation,
    contact_expectation,
    purchase_expectations,
)
from pipeline.standins.generator.purchase_tables import INVENTORY_ACCOUNT, INVOICE_NUMBER_FORMATS
from pipeline.standins.generator.sales import due_date
from pipeline.standins.generator.suppliers import make_suppliers
from pipeline.standins.generator.tables import RATES, TAX_RULES
from pipeline.standins.generator.totals import copy_line, recompute_invoice_totals
from pipeline.standins.generator.values import ZERO, format_date, format_timestamp, random_uuid

SIMPLE, ADVANCED, SERVICE = "Simple Purchase", "Advanced Purchase", "Service Purchase"
COVERAGE_MIN_PURCHASES = 20
# How a live bill is settled: nothing paid, part paid, paid by one payment, paid by two or three.
_SETTLEMENTS = ("none", "part", "full", "split")
_CREDIT_KINDS = ("refunded", "open", "draft", "voided")


@dataclass
class PurchaseSet:
    """Generated Cin7 suppliers and purchases plus what a correct sync makes of them in Xero."""

    #: Cin7 supplier JSON exactly as ``GET supplier`` returns rows.
    suppliers: list[dict[str, Any]]
    #: Cin7 purchase detail JSON exactly as ``GET advanced-purchase?ID=`` returns it.
    purchases: list[dict[str, Any]]
    #: One per bill (purchase ``ID`` + ``TaskID``), in purchase order.
    bills: list[BillExpectation] = field(default_factory=list)
    #: Supplier payments of synced bills and refunds of their AUTHORISED credit notes.
    payments: list[SupplierPaymentExpectation] = field(default_factory=list)
    #: One per supplier credit note of any status.
    credit_notes: list[PurchaseCreditNoteExpectation] = field(default_factory=list)
    #: One Xero contact per supplier, in supplier order.
    contacts: list[SupplierContactExpectation] = field(default_factory=list)
    #: Suppliers that are also customers of the sales dataset (one Xero contact each).
    merges: list[SupplierCustomerMerge] = field(default_factory=list)


@dataclass(slots=True)
class _Plan:
    """What one purchase is, decided before its bills are drawn: per bill a (status, settlement)."""

    kind: str
    bills: list[tuple[str, str]]
    credit: str | None = None
    misspelt: bool = False
    freight: bool = False


def with_purchases(dataset: Dataset, purchases: PurchaseSet) -> Dataset:
    """A copy of ``dataset`` that the Cin7 stand-in serves ``purchases``' suppliers and purchases from too."""
    return dataclasses.replace(dataset, suppliers=purchases.suppliers, purchases=purchases.purchases)


def generate_purchases(
    seed: int,
    n_purchases: int,
    *,
    now: datetime,
    customers: list[dict[str, Any]] | None = None,
    since: datetime | None = None,
) -> PurchaseSet:
    """Generate ``n_purchases`` Cin7 purchases, their suppliers and the Xero expectations.

    Deterministic in all the arguments. ``customers`` (a sales dataset's) makes one supplier the same
    business as one of them. ``LastUpdatedDate`` falls in the 3 days before ``now``; with ``since`` (a
    history, for a migration), they are spread evenly from it to ``now``, oldest first, and every bill,
    payment and credit note is dated up to 20 days before its purchase's.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if n_purchases < 0:
        raise ValueError("n_purchases must be >= 0")
    now = now.astimezone(UTC)
    # A stream of its own: with the sales' seed, the same stream would draw the customers' IDs again.
    rng = random.Random(f"purchases:{seed}")
    suppliers, merged = make_suppliers(rng, now, max(8, n_purchases // 5), customers)
    plans = [_plan(rng) for _ in range(n_purchases)]
    if n_purchases >= COVERAGE_MIN_PURCHASES:
        _ensure_coverage(rng, plans)
    if since is not None:
        stamps = spread_stamps(rng, since.astimezone(UTC), now, n_purchases)
    else:
        stamps = _modified_stamps(rng, now, n_purchases)
    numbers: dict[str, list[Any]] = {}
    result = PurchaseSet(suppliers=suppliers, purchases=[])
    for index, plan in enumerate(plans):
        supplier = suppliers[index] if index < len(suppliers) else rng.choice(suppliers)
        purchase = _purchase(rng, index, plan, supplier, stamps[index], numbers)
        result.purchases.append(purchase)
        bills, payments, credit_notes = purchase_expectations(purchase)
        result.bills.extend(bills)
        result.payments.extend(payments)
        result.credit_notes.extend(credit_notes)
    merged_supplier = next((s for s in suppliers if merged is not None and s["Name"] == merged["Name"]), None)
    for supplier in suppliers:
        customer_id = merged["ID"] if merged is not None and supplier is merged_supplier else None
        result.contacts.append(contact_expectation(supplier, customer_id))
    if merged is not None and merged_supplier is not None:
        tax_number = str(merged["TaxNumber"]).replace(" ", "")
        result.merges.append(
            SupplierCustomerMerge(merged_supplier["ID"], merged["ID"], str(merged["Name"]).strip(), tax_number)
        )
    return result


def _bill_plan(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.07:
        return "DRAFT", "none"
    if roll < 0.13:
        return "VOIDED", "none"
    settle = rng.random()
    return "AUTHORISED", "full" if settle < 0.35 else "split" if settle < 0.45 else "part" if settle < 0.65 else "none"


def _plan(rng: random.Random) -> _Plan:
    roll = rng.random()
    kind = SIMPLE if roll < 0.55 else ADVANCED if roll < 0.85 else SERVICE
    n_bills = 2 if kind == ADVANCED and rng.random() < 0.4 else 1
    plan = _Plan(kind, [_bill_plan(rng) for _ in range(n_bills)])
    paid = any(settle in ("full", "split") for _, settle in plan.bills)
    plan.credit = rng.choice(_CREDIT_KINDS) if paid and rng.random() < 0.15 else None
    # Cin7's simple-purchase examples spell the key InvocieNumber; arrays of bills always spell it right.
    plan.misspelt = kind != ADVANCED and rng.random() < 0.5
    plan.freight = kind != SERVICE and rng.random() < 0.4
    return plan


def _reshape(kind: str, bills: list[tuple[str, str]], credit: str | None = None, misspelt: bool = False) -> _Plan:
    return _Plan(kind, bills, credit=credit, misspelt=misspelt, freight=kind != SERVICE)


_Check = Callable[[_Plan], bool]
# (is the case present in a plan, a plan that has it); each missing case is forced onto a plan of its own.
_REQUIRED: list[tuple[_Check, Callable[[], _Plan]]] = [
    (lambda p: p.kind == SIMPLE and p.misspelt, lambda: _reshape(SIMPLE, [("AUTHORISED", "none")], misspelt=True)),
    (lambda p: p.kind == SIMPLE and not p.misspelt, lambda: _reshape(SIMPLE, [("AUTHORISED", "part")])),
    (lambda p: p.kind == ADVANCED and len(p.bills) == 2, lambda: _reshape(ADVANCED, [("AUTHORISED", "full")] * 2)),
    (lambda p: p.kind == SERVICE, lambda: _reshape(SERVICE, [("AUTHORISED", "split")], misspelt=True)),
    (lambda p: any(s == "DRAFT" for s, _ in p.bills), lambda: _reshape(SIMPLE, [("DRAFT", "none")])),
    (lambda p: any(s == "VOIDED" for s, _ in p.bills), lambda: _reshape(ADVANCED, [("VOIDED", "none")])),
    (lambda p: any(k == "part" for _, k in p.bills), lambda: _reshape(ADVANCED, [("AUTHORISED", "part")])),
    (lambda p: any(k == "split" for _, k in p.bills), lambda: _reshape(SIMPLE, [("AUTHORISED", "split")])),
    (lambda p: any(k == "none" for _, k in p.bills), lambda: _reshape(SIMPLE, [("AUTHORISED", "none")])),
    (lambda p: p.freight, lambda: _reshape(SIMPLE, [("AUTHORISED", "full")])),
    *(
        (lambda p, c=credit: p.credit == c, lambda c=credit: _reshape(SIMPLE, [("AUTHORISED", "full")], credit=c))
        for credit in _CREDIT_KINDS
    ),
    # A credit note in an advanced purchase's array too.
    (
        lambda p: p.kind == ADVANCED and p.credit is not None,
        lambda: _reshape(ADVANCED, [("AUTHORISED", "split")], credit="refunded"),
    ),
]


def _ensure_coverage(rng: random.Random, plans: list[_Plan]) -> None:
    """Force each case that no plan has onto a plan whose loss leaves every case already present."""
    order = list(range(len(plans)))
    rng.shuffle(order)
    forced: set[int] = set()
    for check, make in _REQUIRED:
        if any(check(p) for p in plans):
            continue
        present = [c for c, _ in _REQUIRED if any(c(p) for p in plans)]
        plan = make()
        for index in order:
            if index in forced:
                continue
            rest = plans[:index] + plans[index + 1 :]
            if all(c(plan) or any(c(p) for p in rest) for c in present):
                plans[index] = plan
                forced.add(index)
                break


def _bill_number(rng: random.Random, supplier: dict[str, Any], numbers: dict[str, list[Any]]) -> str:
    # Each supplier numbers its own invoices its own way, so numbers repeat across suppliers, as in Xero.
    state = numbers.setdefault(supplier["ID"], [rng.choice(INVOICE_NUMBER_FORMATS), rng.randint(1, 5000)])
    state[1] += rng.randint(1, 3)
    return str(state[0].format(n=state[1]))


def _bills(
    rng: random.Random, plan: _Plan, supplier: dict[str, Any], updated: datetime, numbers: dict[str, list[Any]]
) -> tuple[list[dict[str, Any]], str]:
    """The purchase's bills, drawn, totalled and settled; and its tax calculation."""
    currency, rule = str(supplier["Currency"]), str(supplier["TaxRule"])
    tax_calculation = "Inclusive" if rng.random() < 0.2 else "Exclusive"
    first_day = (updated - timedelta(days=rng.randint(0, 20))).date()
    bills = []
    for i, (status, settle) in enumerate(plan.bills):
        day = min(first_day + timedelta(days=i * rng.randint(1, 7)), updated.date())
        make_line = service_line if plan.kind == SERVICE else stock_line
        lines = [make_line(rng, rule if rng.random() < 0.85 else "GST Free Expenses") for _ in range(rng.randint(1, 4))]
        key = NUMBER_KEYS[1] if plan.misspelt else NUMBER_KEYS[0]
        bill = make_bill(
            rng,
            number=(key, _bill_number(rng, supplier, numbers)),
            status=status,
            days=(day, due_date(day, str(supplier["PaymentTerm"]))),
            rate=RATES[currency],
            lines=lines,
            charges=[freight_charge(rng, rule)] if plan.freight and i == 0 else [],
            tax_calculation=tax_calculation,
        )
        if settle != "none":
            parts = rng.randint(2, 3) if settle == "split" else 1
            fraction = Decimal(rng.randint(20, 80)).scaleb(-2) if settle == "part" else Decimal(1)
            pay_bill(rng, bill, parts, fraction, latest=updated)
        if plan.kind == ADVANCED:
            bill["InvoicingAndReceivingNumber"] = str(i + 1)
        bills.append(bill)
    return bills, tax_calculation


def _credit_notes(
    rng: random.Random, plan: _Plan, bills: list[dict[str, Any]], order_number: str, tax_calculation: str, at: datetime
) -> list[dict[str, Any]]:
    """The purchase's credit note, on its first PAID bill, when it has one (only paid bills are credited, so
    no credit is allocated and each bill's amount due stays its total less its payments).
    """
    target = next((b for b in bills if b["Status"] == "PAID"), None)
    if plan.credit is None or target is None:
        return []
    status = {"draft": "DRAFT", "voided": "VOIDED"}.get(plan.credit, "AUTHORISED")
    number = f"CR-{order_number.removeprefix('PO-')}"
    note = make_purchase_credit_note(
        rng,
        target,
        number=number,
        status=status,
        tax_calculation=tax_calculation,
        refunded=plan.credit == "refunded",
        latest=at,
    )
    return [note]


def _purchase(
    rng: random.Random,
    index: int,
    plan: _Plan,
    supplier: dict[str, Any],
    updated: datetime,
    numbers: dict[str, list[Any]],
) -> dict[str, Any]:
    purchase_id = random_uuid(rng)
    order_number = f"PO-{index + 1:05d}"
    bills, tax_calculation = _bills(rng, plan, supplier, updated, numbers)
    credit_notes = _credit_notes(rng, plan, bills, order_number, tax_calculation, updated)
    order_day = min(b["InvoiceDate"] for b in bills)[:10]
    person = next(p for p in supplier["Contacts"] if p["Default"])
    billing = {k: v for k, v in supplier["Addresses"][-1].items() if k not in ("ID", "Type", "DefaultForType")}
    single = plan.kind != ADVANCED
    order: dict[str, Any] = {
        "Memo": "",
        "Status": "AUTHORISED",
        "Lines": [copy_line(line) for b in bills for line in b["Lines"]],
        "AdditionalCharges": [copy_line(c) for b in bills for c in b["AdditionalCharges"]],
        "TotalBeforeTax": ZERO,
        "Tax": ZERO,
        "Total": ZERO,
    }
    recompute_invoice_totals(order, tax_calculation, TAX_RULES)
    purchase: dict[str, Any] = {
        "ID": purchase_id,
        "Supplier": supplier["Name"],
        "SupplierID": supplier["ID"],
        "Contact": person["Name"],
        "Phone": person["Phone"],
        "InventoryAccount": INVENTORY_ACCOUNT,
        "BlindReceipt": False,
        # Cin7 writes INVOICE or STOCK, but a PUT example has "Stock": compare without case.
        "Approach": "INVOICE" if plan.kind == SERVICE else rng.choice(["INVOICE", "STOCK", "Stock"]),
        "BillingAddress": billing,
        "ShippingAddress": {"Line1": "1 Depot Rd", "Line2": "", "City": "Sydney", "State": "NSW", "Postcode": "2000"},
        "BaseCurrency": "AUD",
        "SupplierCurrency": supplier["Currency"],
        "CurrencyRate": RATES[str(supplier["Currency"])],
        "TaxRule": supplier["TaxRule"],
        "TaxCalculation": tax_calculation,
        "Terms": supplier["PaymentTerm"],
        "RequiredBy": None,
        "Location": "Main Warehouse",
        "Note": "",
        "OrderNumber": order_number,
        "OrderDate": format_date(datetime.fromisoformat(order_day).date() - timedelta(days=rng.randint(0, 10))),
        "Type": plan.kind,
        "CombinedReceivingStatus": "NOT AVAILABLE" if plan.kind == SERVICE else "FULLY RECEIVED",
        "LastUpdatedDate": format_timestamp(updated),
        "Order": order,
        "StockReceived": {"Status": "NOT AVAILABLE", "Lines": []} if single else [],
        "Invoice": bills[0] if single else bills,
        "CreditNote": (credit_notes[0] if credit_notes else empty_task(purchase_id)) if single else credit_notes,
        "AdditionalAttributes": None,
        "Attachments": [],
        "InventoryMovements": [],
    }
    derive_purchase_statuses(purchase)
    return purchase

"""The pieces of a generated Cin7 purchase: lines, bills (its invoices), supplier payments, credit notes,
the purchase-level statuses and its ``purchaseList`` row.

Shapes follow cin7-core.md "Purchases": a simple or service purchase holds ONE ``Invoice`` object and ONE
``CreditNote`` object (``Status: NOT AVAILABLE`` when there is none), an advanced purchase holds arrays
under the same two keys. The bill's number key is spelt ``InvoiceNumber`` or, as in Cin7's simple-purchase
examples, ``InvocieNumber``; :func:`bill_number` reads either. Totals come from ``recompute_invoice_totals``,
the same code as sale invoices.
"""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pipeline.standins.generator.documents import partial_credit_lines, payment_line, split_cents
from pipeline.standins.generator.purchase_tables import (
    FREIGHT_ACCOUNT,
    FREIGHT_PRICES,
    INVENTORY_ACCOUNT,
    SERVICES,
    SERVICES_ACCOUNT,
    STOCK_GOODS,
)
from pipeline.standins.generator.settlement import LIVE_INVOICE_STATUSES, day_between, paid_total
from pipeline.standins.generator.tables import DISCOUNTS, TAX_RULES
from pipeline.standins.generator.totals import recompute_invoice_totals, unpaid_invoice_body
from pipeline.standins.generator.values import ONE, ZERO, format_date, random_uuid, round_cents, to_decimal

#: The two spellings of a bill's number key in Cin7's payloads.
NUMBER_KEYS = ("InvoiceNumber", "InvocieNumber")
NOT_AVAILABLE = "NOT AVAILABLE"


def _as_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, dict) else []


def bills_of(purchase: dict[str, Any]) -> list[dict[str, Any]]:
    """A purchase's bills as a list, whether ``Invoice`` is one object or an array; none NOT AVAILABLE."""
    return [b for b in _as_list(purchase.get("Invoice")) if str(b.get("Status")).upper() != NOT_AVAILABLE]


def credit_notes_of(purchase: dict[str, Any]) -> list[dict[str, Any]]:
    """A purchase's credit notes as a list (``CreditNote`` object or array), leaving out NOT AVAILABLE."""
    return [c for c in _as_list(purchase.get("CreditNote")) if str(c.get("Status")).upper() != NOT_AVAILABLE]


def bill_number(bill: dict[str, Any]) -> str:
    """The supplier's invoice number of a bill, under either spelling of its key."""
    return str(next((bill[k] for k in NUMBER_KEYS if bill.get(k)), ""))


def _line(
    rng: random.Random, tax_rule: str, product: tuple[str | None, str, str], price: Decimal, account: str
) -> dict[str, Any]:
    """A purchase line of ``product`` (ProductID, SKU, name); totals are left for ``recompute_invoice_totals``."""
    product_id, sku, name = product
    return {
        "ProductID": product_id,
        "SKU": sku,
        "Name": name,
        "Quantity": Decimal(rng.randint(1, 200 if product_id else 12)),
        "Price": price,
        # Xero bills take no line discount, so a sync must fold these into the unit price.
        "Discount": rng.choice(DISCOUNTS) if product_id and rng.random() < 0.15 else ZERO,
        "Tax": ZERO,
        "Total": ZERO,
        "TaxRule": tax_rule,
        "Account": account,
        "Comment": "",
    }


def stock_line(rng: random.Random, tax_rule: str) -> dict[str, Any]:
    """A line of bought stock."""
    sku, name = rng.choice(STOCK_GOODS)
    product = (random_uuid(rng), f"{sku}-{rng.randint(1, 9)}", name)
    return _line(rng, tax_rule, product, Decimal(rng.randint(50, 90_000)).scaleb(-2), INVENTORY_ACCOUNT)


def service_line(rng: random.Random, tax_rule: str) -> dict[str, Any]:
    """A line of a service purchase: no product, an expense account."""
    product = (None, "", rng.choice(SERVICES))
    return _line(rng, tax_rule, product, Decimal(rng.randint(5_000, 250_000)).scaleb(-2), SERVICES_ACCOUNT)


def freight_charge(rng: random.Random, tax_rule: str) -> dict[str, Any]:
    """A freight additional charge (purchase charges carry a ``Reference``)."""
    return {
        "Description": "Freight",
        "Reference": f"CON{rng.randint(100000, 999999)}",
        "Quantity": ONE,
        "Price": rng.choice(FREIGHT_PRICES),
        "Discount": ZERO,
        "Tax": ZERO,
        "Total": ZERO,
        "TaxRule": tax_rule,
        "Account": FREIGHT_ACCOUNT,
    }


def make_bill(
    rng: random.Random,
    *,
    number: tuple[str, str],
    status: str,
    days: tuple[date, date],
    rate: Decimal,
    lines: list[dict[str, Any]],
    charges: list[dict[str, Any]],
    tax_calculation: str,
) -> dict[str, Any]:
    """A bill: ``number`` is (key spelling, supplier's number), ``days`` (invoice date, due date)."""
    key, value = number
    bill: dict[str, Any] = {
        "TaskID": random_uuid(rng),
        key: value,
        "InvoiceDate": format_date(days[0]),
        "InvoiceDueDate": format_date(days[1]),
        "Status": status,
        "CurrencyConversionRate": rate,
        "Memo": rng.choice(["", "", "Back order to follow", "Per quote Q-118"]),
        **unpaid_invoice_body(lines, charges),
    }
    recompute_invoice_totals(bill, tax_calculation, TAX_RULES)
    return bill


def pay_bill(rng: random.Random, bill: dict[str, Any], parts: int, fraction: Decimal, *, latest: datetime) -> None:
    """Pay ``fraction`` of a live bill in ``parts`` supplier payments dated after it; PAID when all is paid."""
    owed = round_cents(to_decimal(bill["Total"]) * fraction)
    if owed < Decimal(parts) / 100:
        return
    start = date.fromisoformat(str(bill["InvoiceDate"])[:10])
    rate = bill["CurrencyConversionRate"]
    for value in split_cents(rng, owed, parts):
        payment = payment_line(rng, value, day_between(rng, start, latest.date()), rate, latest=latest)
        payment["Type"] = "PAYMENT"  # purchase payment types are upper case, unlike sale/payment's
        bill["Payments"].append(payment)
    bill["Paid"] = paid_total(bill)
    bill["Status"] = "PAID" if bill["Paid"] >= round_cents(to_decimal(bill["Total"])) else "AUTHORISED"


def make_purchase_credit_note(
    rng: random.Random,
    bill: dict[str, Any],
    *,
    number: str,
    status: str,
    tax_calculation: str,
    refunded: bool,
    latest: datetime,
) -> dict[str, Any]:
    """A supplier credit note of part of ``bill``'s lines; ``refunded`` adds one refund of its whole total."""
    day = day_between(rng, date.fromisoformat(str(bill["InvoiceDate"])[:10]), latest.date())
    credit_note: dict[str, Any] = {
        "TaskID": random_uuid(rng),
        "CreditNoteNumber": number,
        "CreditNoteInvoiceNumber": bill_number(bill),
        "CreditNoteDate": format_date(day),
        "CreditNoteConversionRate": bill["CurrencyConversionRate"],
        "Memo": rng.choice(["Returned goods", "Short shipped", "Damaged in transit"]),
        "Status": status,
        "Lines": partial_credit_lines(rng, bill),
        "AdditionalCharges": [],
        "Refunds": [],
        "TotalBeforeTax": ZERO,
        "Tax": ZERO,
        "Total": ZERO,
    }
    recompute_invoice_totals(credit_note, tax_calculation, TAX_RULES)
    if refunded:
        refund = payment_line(rng, to_decimal(credit_note["Total"]), day, bill["CurrencyConversionRate"], latest=latest)
        refund["Type"] = "REFUND"
        credit_note["Refunds"].append(refund)
    return credit_note


def empty_task(purchase_id: str) -> dict[str, Any]:
    """What a simple purchase holds under ``CreditNote`` when it has none."""
    return {"TaskID": purchase_id, "Status": NOT_AVAILABLE, "Lines": [], "AdditionalCharges": [], "Refunds": []}


def derive_purchase_statuses(purchase: dict[str, Any]) -> None:
    """Set ``Status`` and the ``Combined*Status`` fields of ``purchase`` from its bills and credit notes."""
    bills = bills_of(purchase)
    statuses = [str(b["Status"]).upper() for b in bills]
    live = [b for b in bills if str(b["Status"]).upper() in LIVE_INVOICE_STATUSES]
    credited = any(str(c["Status"]).upper() == "AUTHORISED" for c in credit_notes_of(purchase))
    if statuses and all(s == "VOIDED" for s in statuses):
        purchase["Status"] = "VOIDED"
        purchase["CombinedInvoiceStatus"] = "INVOICED"
        purchase["CombinedPaymentStatus"] = "VOIDED"
        return
    if not live:
        purchase["Status"] = "ORDERED"
        purchase["CombinedInvoiceStatus"] = "NOT INVOICED"
        purchase["CombinedPaymentStatus"] = "UNPAID"
        return
    invoiced = "PARTIALLY INVOICED" if len(live) < len([s for s in statuses if s != "VOIDED"]) else "INVOICED"
    purchase["CombinedInvoiceStatus"] = f"{invoiced} / CREDITED" if credited else invoiced
    paid = [b for b in live if str(b["Status"]).upper() == "PAID"]
    if len(paid) == len(live) and invoiced == "INVOICED":
        purchase["Status"] = "COMPLETED"
        purchase["CombinedPaymentStatus"] = "PAID"
    else:
        purchase["Status"] = "INVOICED"
        money = any(to_decimal(b["Paid"]) > 0 for b in live)
        purchase["CombinedPaymentStatus"] = "PARTIALLY PAID" if money else "UNPAID"


def purchase_list_row(purchase: dict[str, Any]) -> dict[str, Any]:
    """The ``GET purchaseList`` row of a purchase detail; its watermark is ``LastUpdatedDate``."""
    bills = bills_of(purchase)
    first = bills[0] if bills else {}
    live = [b for b in bills if str(b.get("Status", "")).upper() != "VOIDED"]
    credit_notes = credit_notes_of(purchase)
    last_credit = credit_notes[-1] if credit_notes else {}
    return {
        "ID": purchase["ID"],
        "OrderNumber": purchase.get("OrderNumber"),
        "OrderDate": purchase.get("OrderDate"),
        "Status": purchase.get("Status"),
        "Type": purchase.get("Type"),
        "Supplier": purchase.get("Supplier"),
        "SupplierID": purchase.get("SupplierID"),
        "SupplierCurrency": purchase.get("SupplierCurrency"),
        "BaseCurrency": purchase.get("BaseCurrency"),
        "InvoiceNumber": bill_number(first) if first else None,
        "InvoiceDate": first.get("InvoiceDate"),
        "InvoiceDueDate": first.get("InvoiceDueDate"),
        "InvoiceAmount": sum((to_decimal(b.get("Total") or 0) for b in live), ZERO),
        "PaidAmount": sum((to_decimal(b.get("Paid") or 0) for b in live), ZERO),
        "InvoiceStatus": first.get("Status", NOT_AVAILABLE),
        "CombinedInvoiceStatus": purchase.get("CombinedInvoiceStatus"),
        "CombinedPaymentStatus": purchase.get("CombinedPaymentStatus"),
        "CombinedReceivingStatus": purchase.get("CombinedReceivingStatus"),
        "CreditNoteNumber": last_credit.get("CreditNoteNumber"),
        "CreditNoteStatus": last_credit.get("Status", NOT_AVAILABLE),
        "LastUpdatedDate": purchase.get("LastUpdatedDate"),
    }

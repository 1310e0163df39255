"""Builders of the Cin7 Core documents that settle an invoice: payment lines, refunds and credit notes.

Shared by the generator (``scenarios.py``) and the edit helpers (``edits.py``), so that both produce the
same shapes: ``{ID, Reference, Amount, DatePaid, Account, CurrencyRate, DateCreated}`` for a payment or a
refund, and Cin7's ``CreditNotes[]`` item for a credit note.
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from pipeline.standins.generator.settlement import credit_note_number
from pipeline.standins.generator.tables import TAX_RULES
from pipeline.standins.generator.totals import recompute_invoice_totals
from pipeline.standins.generator.values import ZERO, format_date, format_timestamp, random_uuid, round_cents, to_decimal

#: The bank account code of every generated payment and refund.
PAYMENT_ACCOUNT = "090"
_QUANTITY_STEP = Decimal("0.0001")


def created_stamp(rng: random.Random, day: date, latest: datetime) -> str:
    """A ``DateCreated`` during ``day`` (UTC morning) but never after ``latest``."""
    moment = datetime.combine(day, time(hour=rng.randint(0, 9), minute=rng.randint(0, 59)), tzinfo=UTC)
    return format_timestamp(min(moment, latest))


def payment_line(
    rng: random.Random, value: Decimal, day: date, rate: Any, *, latest: datetime, reference: str | None = None
) -> dict[str, Any]:
    """A Sale Payment Line (invoice payment or credit note refund) of ``value``, customer currency, 2 dp."""
    return {
        "ID": random_uuid(rng),
        "Reference": reference if reference is not None else f"EFT {rng.randint(100000, 999999)}",
        "Amount": round_cents(value),
        "DatePaid": format_date(day),
        "Account": PAYMENT_ACCOUNT,
        "CurrencyRate": rate,
        "DateCreated": created_stamp(rng, day, latest),
    }


def make_credit_note(
    rng: random.Random,
    sale: dict[str, Any],
    invoice: dict[str, Any],
    *,
    lines: list[dict[str, Any]],
    charges: list[dict[str, Any]],
    status: str,
    day: date,
    places: int = 2,
) -> dict[str, Any]:
    """A credit note of ``invoice`` holding copies of ``lines``/``charges``, totalled by the invoice rules.

    Its number comes from ``credit_note_number`` (unique within the sale and, by construction, the dataset).
    It is not added to the sale: the caller does, then re-derives statuses.
    """
    credit_note: dict[str, Any] = {
        "TaskID": random_uuid(rng),
        "CreditNoteNumber": credit_note_number(sale, invoice["InvoiceNumber"]),
        "CreditNoteInvoiceNumber": invoice["InvoiceNumber"],
        "CreditNoteDate": format_date(day),
        # Cin7's direction (AUD per customer unit), the same rate as the sale and its invoices.
        "CreditNoteConversionRate": invoice.get("CurrencyConversionRate", sale["CurrencyRate"]),
        "Memo": rng.choice(["", "Returned goods", "Pricing adjustment", "Damaged in transit"]),
        "Status": status,
        "Lines": [copy.deepcopy(line) for line in lines],
        "AdditionalCharges": [copy.deepcopy(charge) for charge in charges],
        "Refunds": [],
        "Restock": [],
        "TotalBeforeTax": ZERO,
        "Tax": ZERO,
        "Total": ZERO,
    }
    # The same rules and rounding as invoices, so that a credit note of every line totals exactly its invoice.
    recompute_invoice_totals(credit_note, sale["TaxCalculation"], TAX_RULES, places=places)
    return credit_note


def scaled_lines(lines: list[dict[str, Any]], fraction: Decimal) -> list[dict[str, Any]]:
    """Copies of ``lines`` with each ``Quantity`` times ``fraction`` (4 dp, as Cin7 keeps quantities)."""
    if not ZERO < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], not {fraction}")
    scaled = []
    for line in lines:
        copied = copy.deepcopy(line)
        quantity = (to_decimal(line["Quantity"]) * fraction).quantize(_QUANTITY_STEP)
        if quantity <= 0:
            raise ValueError(f"quantity {line['Quantity']} times {fraction} rounds to nothing")
        copied["Quantity"] = quantity
        scaled.append(copied)
    return scaled


def partial_credit_lines(rng: random.Random, invoice: dict[str, Any]) -> list[dict[str, Any]]:
    """Part of an invoice's product lines: a random subset, sometimes with the first one's quantity halved.

    Never every line at full quantity, and never its additional charges, so the credit is less than the
    invoice (except when halving rounds back to the same cent on a tiny line, which callers allow for).
    """
    lines = invoice["Lines"]
    chosen = [line for line in lines if rng.random() < 0.5] or [rng.choice(lines)]
    copies = [copy.deepcopy(line) for line in chosen]
    if len(copies) == len(lines) or rng.random() < 0.4:
        copies[0] = scaled_lines([copies[0]], Decimal("0.5"))[0]
    return copies


def split_cents(rng: random.Random, total: Decimal, parts: int) -> list[Decimal]:
    """``total`` (2 dp) cut into ``parts`` positive cent amounts that add up to it exactly."""
    cents = int(round_cents(total) * 100)
    if parts < 1 or cents < parts:
        raise ValueError(f"cannot split {total} into {parts} payments")
    cuts = sorted(rng.sample(range(1, cents), parts - 1)) if parts > 1 else []
    bounds = [0, *cuts, cents]
    return [Decimal(bounds[i + 1] - bounds[i]).scaleb(-2) for i in range(parts)]

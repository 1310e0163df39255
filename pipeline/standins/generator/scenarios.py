"""How generated invoices are settled: part-paid, paid in 2-3 payments, credited, refunded, ...

Only ordinary sales take part (not the hostile ones, whose invoices die, nor the special customers' first
sales, which stay plain AUTHORISED for the contact and edit tests). Each of their AUTHORISED or PAID
invoices draws a scenario from its own seeded generator (``settlement_rng``), so that adding scenarios
left the main draws, and with them which invoices exist, their numbers and totals, unchanged.

Shares of the eligible invoices (about 87% of all invoices):

* of the PAID ones (~24%): 30% paid in 2-3 payments, 12% paid then part-credited and refunded, the rest
  paid by one payment as before;
* of the AUTHORISED ones (~70%): 6% part-paid, 5% fully credited, 6% part-credited with the rest paid,
  2% with a DRAFT credit note, 2% with a VOIDED credit note, the rest unpaid.

In a dataset of at least :data:`COVERAGE_MIN_SALES` sales every scenario is then made present in AUD and
in a foreign currency, by giving it to plain invoices where the draws left it out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pipeline.standins.generator.documents import (
    make_credit_note,
    partial_credit_lines,
    payment_line,
    split_cents,
)
from pipeline.standins.generator.settlement import amount, day_between, document_day, paid_total
from pipeline.standins.generator.totals import derive_statuses
from pipeline.standins.generator.values import ZERO

#: Scenarios of a paid invoice (money covers its Total) and of an unpaid one.
PAID_SCENARIOS = ("paid_split", "refunded")
UNPAID_SCENARIOS = ("part_paid", "credited", "part_credited", "draft_credit_note", "voided_credit_note")
SCENARIOS = (*PAID_SCENARIOS, *UNPAID_SCENARIOS)
COVERAGE_MIN_SALES = 200
# Below this an invoice is too small to split into payments and partial credit worth the name.
_MIN_TOTAL = Decimal("1.00")


def settlement_rng(seed: int) -> random.Random:
    """The scenarios' own generator: a second stream, so the main one draws exactly as before."""
    return random.Random(f"settlements:{seed}")


@dataclass(slots=True)
class Candidate:
    """One eligible invoice: where it is, its currency group and the scenario it got (None = plain)."""

    sale: dict[str, Any]
    invoice: dict[str, Any]
    group: str
    latest: datetime
    scenario: str | None


def candidate(sale: dict[str, Any], invoice: dict[str, Any], latest: datetime) -> Candidate | None:
    """The invoice as a scenario candidate, or None when it cannot take one."""
    status = str(invoice["Status"]).upper()
    if status not in ("AUTHORISED", "PAID") or amount(invoice["Total"]) < _MIN_TOTAL:
        return None
    # Money and credit are dated between the invoice and the sale's LastModifiedOn.
    if document_day(invoice["InvoiceDate"]) > latest.date():
        return None
    group = "AUD" if sale["CustomerCurrency"] == "AUD" else "foreign"
    return Candidate(sale, invoice, group, latest, None)


def pick_scenario(rng: random.Random, status: str) -> str | None:
    """The scenario an invoice of ``status`` draws (None: left as it is)."""
    roll = rng.random()
    if status.upper() == "PAID":
        return "paid_split" if roll < 0.30 else "refunded" if roll < 0.42 else None
    for scenario, bound in (
        ("part_paid", 0.06),
        ("credited", 0.11),
        ("part_credited", 0.17),
        ("draft_credit_note", 0.19),
        ("voided_credit_note", 0.21),
    ):
        if roll < bound:
            return scenario
    return None


def apply_scenario(rng: random.Random, cand: Candidate, scenario: str) -> None:
    """Give ``cand``'s invoice the payments and credit notes of ``scenario``, then re-derive statuses."""
    sale, invoice = cand.sale, cand.invoice
    start, end = document_day(invoice["InvoiceDate"]), cand.latest.date()
    total = amount(invoice["Total"])
    if scenario in UNPAID_SCENARIOS:
        invoice["Payments"] = []
    match scenario:
        case "part_paid":
            parts = rng.choice((1, 2))
            cents = int(total * 100)
            paid = Decimal(rng.randint(max(parts, cents * 2 // 10), max(parts, cents * 8 // 10))).scaleb(-2)
            _pay(rng, cand, split_cents(rng, min(paid, total - Decimal("0.01")), parts), start, end)
        case "paid_split":
            invoice["Payments"] = []
            _pay(rng, cand, split_cents(rng, total, rng.choice((2, 3))), start, end)
        case "credited":
            _credit(rng, cand, invoice["Lines"], invoice.get("AdditionalCharges") or [], "AUTHORISED", start, end)
        case "part_credited":
            credit = _credit(rng, cand, partial_credit_lines(rng, invoice), [], "AUTHORISED", start, end)
            rest = total - amount(credit["Total"])
            if rest > 0:
                parts = rng.choice((1, 2)) if rest >= Decimal("0.02") else 1
                _pay(rng, cand, split_cents(rng, rest, parts), start, end)
        case "refunded":
            if paid_total(invoice) < total:
                invoice["Payments"] = []
                _pay(rng, cand, [total], start, end)
            # Paid in full first, then goods came back: the credit note and its refund follow the last payment.
            last_paid = max(document_day(p["DatePaid"]) for p in invoice["Payments"])
            credit = _credit(rng, cand, partial_credit_lines(rng, invoice), [], "AUTHORISED", last_paid, end)
            refund_day = day_between(rng, document_day(credit["CreditNoteDate"]), end)
            credit["Refunds"].append(
                payment_line(
                    rng, amount(credit["Total"]), refund_day, credit["CreditNoteConversionRate"], latest=cand.latest
                )
            )
        case "draft_credit_note":
            _credit(rng, cand, partial_credit_lines(rng, invoice), [], "DRAFT", start, end)
        case "voided_credit_note":
            # A whole-invoice credit note, so that counting it by mistake would wipe out the amount due.
            _credit(rng, cand, invoice["Lines"], invoice.get("AdditionalCharges") or [], "VOIDED", start, end)
        case _:
            raise ValueError(f"unknown scenario {scenario!r}")
    cand.scenario = scenario
    derive_statuses(sale)


def ensure_coverage(rng: random.Random, candidates: list[Candidate]) -> None:
    """Give every scenario missing from a currency group to one of that group's plain invoices."""
    for group in ("AUD", "foreign"):
        for scenario in SCENARIOS:
            members = [c for c in candidates if c.group == group]
            if any(c.scenario == scenario for c in members):
                continue
            plain = [c for c in members if c.scenario is None]
            # Prefer an invoice whose status fits (a PAID one for a paid scenario), so fewer statuses change.
            fitting = [c for c in plain if (str(c.invoice["Status"]) == "PAID") == (scenario in PAID_SCENARIOS)]
            pool = fitting or plain
            if pool:
                apply_scenario(rng, rng.choice(pool), scenario)


def _pay(rng: random.Random, cand: Candidate, amounts: list[Decimal], start: date, end: date) -> None:
    """Add one payment per amount, on distinct days where the range allows, with distinct references."""
    span = max(0, (end - start).days)
    offsets = sorted(rng.sample(range(span + 1), len(amounts))) if span + 1 >= len(amounts) else [0] * len(amounts)
    taken = {p["Reference"] for p in cand.invoice["Payments"]}
    rate = cand.invoice["CurrencyConversionRate"]
    for value, offset in zip(amounts, offsets, strict=True):
        if value <= ZERO:
            continue
        reference = f"EFT {rng.randint(100000, 999999)}"
        while reference in taken:
            reference = f"EFT {rng.randint(100000, 999999)}"
        taken.add(reference)
        day = date.fromordinal(start.toordinal() + offset)
        cand.invoice["Payments"].append(payment_line(rng, value, day, rate, latest=cand.latest, reference=reference))


def _credit(
    rng: random.Random,
    cand: Candidate,
    lines: list[dict[str, Any]],
    charges: list[dict[str, Any]],
    status: str,
    start: date,
    end: date,
) -> dict[str, Any]:
    """Add a credit note of ``lines``/``charges`` dated in ``[start, end]`` to the sale; return it."""
    credit = make_credit_note(
        rng, cand.sale, cand.invoice, lines=lines, charges=charges, status=status, day=day_between(rng, start, end)
    )
    cand.sale["CreditNotes"].append(credit)
    return credit

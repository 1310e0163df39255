"""The demo's (and the end-to-end tests') check of the whole receivable: payments, credit notes, refunds.

What Xero must hold is computed from Cin7's current sales by the generator's own settlement rules, not
by the pipeline's mapping, so a mistake in one is caught by the other: every invoice with Cin7's
AmountPaid, AmountCredited and AmountDue; every Cin7 payment and refund once in Xero; every authorised
credit note once with Cin7's totals, its allocation and its refunds; no voided or draft one live.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mappings import Cin7Totals, totals_in_xero
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.generator import Dataset
from pipeline.standins.generator.settlement import credit_allocations, invoice_balance, refunded_total
from pipeline.standins.xero import XeroStandIn
from pipeline.xero.sdk import parse_xero_date

CENT = Decimal("0.01")
LIVE = frozenset({"AUTHORISED", "PAID"})


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


@dataclass
class ReceivablesCheck:
    """How many receivable documents were checked, and what did not hold."""

    invoices: int = 0
    payments: int = 0
    credit_notes: int = 0
    refunds: int = 0
    problems: list[str] = field(default_factory=list)


def _payment_key(payment: dict[str, Any]) -> tuple[Decimal, str, str]:
    day = parse_xero_date(payment.get("Date") or payment.get("DatePaid"))
    return _money(payment.get("Amount")), day.isoformat() if day else "", str(payment.get("Reference") or "")


def check_receivables(
    dataset: Dataset, cin7: Cin7StandIn, xero: XeroStandIn, skip: Collection[str] = frozenset()
) -> ReceivablesCheck:
    """Check Xero against Cin7's current sales; `skip` holds invoice numbers a person must settle."""
    result = ReceivablesCheck()
    invoices = {
        str(i.get("InvoiceNumber")): i for i in xero.invoices() if i.get("Type") == "ACCREC" and i["Status"] in LIVE
    }
    notes: dict[str, list[dict[str, Any]]] = {}
    for note in xero.credit_notes():
        if note.get("Type") == "ACCRECCREDIT":
            notes.setdefault(str(note.get("CreditNoteNumber")), []).append(note)
    live_payments: dict[str, list[dict[str, Any]]] = {}
    for payment in xero.payments():
        if str(payment.get("Status")).upper() != "DELETED":
            target = payment.get("Invoice") or payment.get("CreditNote") or {}
            key = str(target.get("InvoiceID") or target.get("CreditNoteID") or "").lower()
            live_payments.setdefault(key, []).append(payment)
    synced = {e.invoice_number for e in dataset.expectations if e.outcome == "synced"} - set(skip)
    for sale_id in sorted({e.sale_id for e in dataset.expectations}):
        sale = cin7.sale(sale_id)
        for invoice in sale.get("Invoices") or []:
            number = str(invoice.get("InvoiceNumber"))
            if number in synced and str(invoice.get("Status")).upper() in LIVE and number in invoices:
                _check_invoice(result, sale, invoice, invoices[number], live_payments)
        for note in sale.get("CreditNotes") or []:
            # Credit for an invoice Xero holds (one held back, e.g. locked, holds its credit notes too).
            if str(note.get("CreditNoteInvoiceNumber")) in synced & invoices.keys():
                _check_credit_note(result, sale, note, notes.get(str(note.get("CreditNoteNumber")), []), live_payments)
    return result


def _check_invoice(
    result: ReceivablesCheck,
    sale: dict[str, Any],
    invoice: dict[str, Any],
    xero_invoice: dict[str, Any],
    live_payments: dict[str, list[dict[str, Any]]],
) -> None:
    number = str(invoice.get("InvoiceNumber"))
    result.invoices += 1
    paid, credited, due = invoice_balance(sale, invoice)
    got = (
        _money(xero_invoice["AmountPaid"]),
        _money(xero_invoice["AmountCredited"]),
        _money(xero_invoice["AmountDue"]),
    )
    if (paid, credited, due) != got:
        result.problems.append(
            f"{number}: Cin7 paid/credited/due {paid}/{credited}/{due} but Xero {got[0]}/{got[1]}/{got[2]}"
        )
    wanted = Counter(_payment_key(p) for p in invoice.get("Payments") or [])
    found = Counter(_payment_key(p) for p in live_payments.get(str(xero_invoice["InvoiceID"]).lower(), []))
    result.payments += sum(wanted.values())
    if wanted != found:
        result.problems.append(
            f"{number}: Cin7 payments {sorted(wanted.elements())} but Xero {sorted(found.elements())}"
        )


def _check_credit_note(
    result: ReceivablesCheck,
    sale: dict[str, Any],
    note: dict[str, Any],
    in_xero: list[dict[str, Any]],
    live_payments: dict[str, list[dict[str, Any]]],
) -> None:
    number = str(note.get("CreditNoteNumber"))
    status = str(note.get("Status")).upper()
    live = [n for n in in_xero if str(n.get("Status")).upper() in LIVE]
    if status != "AUTHORISED":
        if live:
            result.problems.append(f"credit note {number}: {status} in Cin7 but {live[0]['Status']} in Xero")
        return
    result.credit_notes += 1
    if len(live) != 1:
        result.problems.append(f"credit note {number}: {len(live)} live in Xero, expected 1")
        return
    xero_note = live[0]
    should = totals_in_xero(
        Cin7Totals(
            subtotal=Decimal(str(note["TotalBeforeTax"])),
            tax=Decimal(str(note["Tax"])),
            total=Decimal(str(note["Total"])),
        )
    )
    want = (should.subtotal, should.total_tax, should.total)
    got = (_money(xero_note["SubTotal"]), _money(xero_note["TotalTax"]), _money(xero_note["Total"]))
    if want != got:
        result.problems.append(f"credit note {number}: Cin7 totals {want} but Xero {got}")
    invoice = next((i for i in sale["Invoices"] if i.get("InvoiceNumber") == note.get("CreditNoteInvoiceNumber")), None)
    allocations = credit_allocations(invoice, sale.get("CreditNotes") or []) if invoice is not None else []
    allocated = next((a for cn, a in allocations if cn is note), Decimal(0))
    in_xero_allocated = sum(
        (_money(a.get("Amount")) for a in xero_note.get("Allocations") or [] if a.get("IsDeleted") is not True),
        Decimal(0),
    )
    if _money(allocated) != in_xero_allocated:
        result.problems.append(f"credit note {number}: allocates {allocated} in Cin7 but {in_xero_allocated} in Xero")
    refunds = Counter(_payment_key(r) for r in note.get("Refunds") or [])
    found = Counter(_payment_key(p) for p in live_payments.get(str(xero_note["CreditNoteID"]).lower(), []))
    result.refunds += sum(refunds.values())
    if refunds != found:
        result.problems.append(
            f"credit note {number}: Cin7 refunds {sorted(refunds.elements())} but Xero {sorted(found.elements())}"
        )
    remaining = _money(note["Total"]) - _money(allocated) - _money(refunded_total(note))
    if _money(xero_note.get("RemainingCredit")) != remaining:
        result.problems.append(
            f"credit note {number}: remaining credit {remaining} in Cin7 but {xero_note.get('RemainingCredit')} in Xero"
        )

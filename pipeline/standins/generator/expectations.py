"""What the pipeline must do with each generated invoice: its outcome (synced, ignored, dead) and why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pipeline.standins.generator.settlement import (
    amount,
    credit_allocations,
    credit_notes_for,
    document_day,
    invoice_balance,
    refunded_total,
)
from pipeline.standins.generator.tables import (
    LOCK_DATE,
    LOCKED_INVOICE_DATE,
    UNKNOWN_ACCOUNT,
    UNKNOWN_TAX_RULE,
    ZERO_RATED_AS_GST_RULE,
)
from pipeline.standins.generator.values import ZERO

Outcome = Literal["synced", "ignored", "dead_mapping", "dead_xero", "locked"]
CreditNoteOutcome = Literal["synced", "ignored"]
PaymentKind = Literal["payment", "refund"]


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
    #: Xero's AmountPaid, AmountCredited and AmountDue after a correct sync, in the customer currency
    #: (see ``settlement.credit_allocations``). An invoice that is not ``synced`` has neither payments
    #: nor credit, so its ``amount_due`` is its ``total`` (which Xero never holds).
    amount_paid: Decimal
    amount_credited: Decimal
    amount_due: Decimal


@dataclass
class CreditNoteExpectation:
    """What Xero must hold for one Cin7 credit note (one ``TaskID`` in ``CreditNotes[]``) after a sync."""

    sale_id: str
    task_id: str
    credit_note_number: str
    #: The invoice it credits (``CreditNoteInvoiceNumber``).
    invoice_number: str
    customer_id: str
    status: Literal["AUTHORISED", "VOIDED", "DRAFT"]
    #: ``synced`` = an AUTHORISED credit note of a synced invoice; DRAFT and VOIDED ones are ``ignored``.
    outcome: CreditNoteOutcome
    subtotal: Decimal
    total_tax: Decimal
    total: Decimal
    #: Applied to its invoice by the allocation rule (0 unless ``synced``).
    allocated: Decimal
    #: Paid back to the customer (its ``Refunds[]``).
    refunded: Decimal
    #: ``total - allocated - refunded``: credit the customer still holds.
    remaining_credit: Decimal


@dataclass
class PaymentExpectation:
    """One payment (on an invoice) or refund (on a credit note) that must reach Xero."""

    sale_id: str
    #: Cin7's payment ``ID``, the key to the Xero payment.
    payment_id: str
    #: The invoice number (a payment) or the credit note number (a refund) it is applied to.
    document_number: str
    kind: PaymentKind
    #: Customer currency, 2 dp.
    amount: Decimal
    date: dt.date
    account: str
    reference: str


def settlement_expectations(
    sale: dict[str, Any], invoice: dict[str, Any], customer_id: str, outcome: Outcome
) -> tuple[tuple[Decimal, Decimal, Decimal], list[CreditNoteExpectation], list[PaymentExpectation]]:
    """((paid, credited, due), credit notes, payments) expected for ``invoice`` given its ``outcome``.

    Payments and refunds are expected only for a synced invoice and its AUTHORISED credit notes.
    """
    synced = outcome == "synced"
    balance = invoice_balance(sale, invoice) if synced else (ZERO, ZERO, amount(invoice["Total"]))
    if not sale.get("CreditNotes") and not (synced and invoice.get("Payments")):
        return balance, [], []  # the common case, kept cheap: 5 000 sales are generated in well under 2 s
    allocated = {id(cn): a for cn, a in credit_allocations(invoice, sale.get("CreditNotes") or [])} if synced else {}
    credit_notes: list[CreditNoteExpectation] = []
    payments = [
        _payment(sale, p, invoice["InvoiceNumber"], "payment") for p in (invoice.get("Payments") or []) if synced
    ]
    for cn in credit_notes_for(sale, invoice["InvoiceNumber"]):
        status = str(cn["Status"]).upper()
        counted = synced and status == "AUTHORISED"
        total, tax = amount(cn["Total"]), amount(cn["Tax"])
        refunded = refunded_total(cn)
        share = allocated.get(id(cn), ZERO)
        credit_notes.append(
            CreditNoteExpectation(
                sale_id=sale["ID"],
                task_id=cn["TaskID"],
                credit_note_number=cn["CreditNoteNumber"],
                invoice_number=invoice["InvoiceNumber"],
                customer_id=customer_id,
                status=status,  # type: ignore[arg-type]
                outcome="synced" if counted else "ignored",
                subtotal=total - tax,
                total_tax=tax,
                total=total,
                allocated=share,
                refunded=refunded,
                remaining_credit=total - share - refunded,
            )
        )
        if counted:
            payments.extend(_payment(sale, r, cn["CreditNoteNumber"], "refund") for r in cn.get("Refunds") or [])
    return balance, credit_notes, payments


def _payment(sale: dict[str, Any], line: dict[str, Any], number: str, kind: PaymentKind) -> PaymentExpectation:
    return PaymentExpectation(
        sale_id=sale["ID"],
        payment_id=line["ID"],
        document_number=number,
        kind=kind,
        amount=amount(line["Amount"]),
        date=document_day(line["DatePaid"]),
        account=str(line["Account"]),
        reference=str(line.get("Reference") or ""),
    )


def expected_outcome(kind: str, status: str, currency: str) -> tuple[Outcome, str]:
    """The outcome (and why) of an invoice of this status on a sale of this hostile ``kind``."""
    if status == "DRAFT":
        return "ignored", "invoice is DRAFT"
    if status == "VOIDED":
        return "ignored", "invoice VOIDED before it was ever synced"
    match kind:
        case "unknown_tax":
            return "dead_mapping", f"unknown tax rule '{UNKNOWN_TAX_RULE}'"
        case "unknown_account":
            return "dead_mapping", f"account '{UNKNOWN_ACCOUNT}' is not in the Xero chart of accounts"
        case "zero_rate_as_gst":
            return "dead_mapping", f"tax rule '{ZERO_RATED_AS_GST_RULE}' is 0% in Cin7 but maps to OUTPUT at 10%"
        case "jpy":
            return "dead_xero", f"currency {currency} not enabled in Xero"
        case "locked":
            # Never sent: the mapping reads Xero's lock date and holds the invoice as locked.
            return (
                "locked",
                f"invoice date {LOCKED_INVOICE_DATE.isoformat()} is before the Xero period lock date "
                f"{LOCK_DATE.isoformat()}",
            )
        case _:
            return "synced", ""

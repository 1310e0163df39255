"""How payments and allocations settle the Xero stand-in's invoices and credit notes.

An invoice owes ``Total − AmountPaid − AmountCredited``; a credit note has ``Total − AmountPaid −
AmountAllocated`` left to give (its ``RemainingCredit``; payments on it are refunds). Either becomes
PAID when nothing is left and goes back to AUTHORISED when a payment or allocation is taken off again.
Payments and allocations call these so that both sides always agree.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pipeline.standins.xero.documents import CREDIT_NOTE_SPEC, INVOICE_SPEC, DocumentSpec
from pipeline.standins.xero.schemas import INVOICE_TYPES
from pipeline.standins.xero.values import Record

ZERO = Decimal("0.00")


def spec_of(doc: Record) -> DocumentSpec:
    """The spec of a stored invoice or credit note (told apart by its Type)."""
    return INVOICE_SPEC if doc["Type"] in INVOICE_TYPES else CREDIT_NOTE_SPEC


def outstanding(doc: Record) -> Decimal:
    """An invoice's AmountDue or a credit note's RemainingCredit (nothing on a voided or deleted one)."""
    if doc["Status"] in ("VOIDED", "DELETED"):
        return ZERO
    left: Decimal = doc["Total"] - doc["AmountPaid"] - doc[spec_of(doc).applied_key]
    return left


def settle(doc: Record, key: str, amount: Decimal, on: dt.date) -> None:
    """Add ``amount`` to the document's ``key`` (AmountPaid or the applied amount); PAID when nothing is left."""
    doc[key] += amount
    if outstanding(doc) <= 0:
        doc["Status"] = "PAID"
        doc["FullyPaidOnDate"] = on


def unsettle(doc: Record, key: str, amount: Decimal) -> None:
    """Take ``amount`` off the document's ``key`` again; a PAID document that owes something is AUTHORISED."""
    doc[key] -= amount
    if doc["Status"] == "PAID" and outstanding(doc) > 0:
        doc["Status"] = "AUTHORISED"
        doc["FullyPaidOnDate"] = None

"""What the pipeline must do with each generated invoice: its outcome (synced, ignored, dead) and why."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pipeline.standins.generator.tables import (
    LOCK_DATE,
    LOCKED_INVOICE_DATE,
    UNKNOWN_ACCOUNT,
    UNKNOWN_TAX_RULE,
    ZERO_RATED_AS_GST_RULE,
)

Outcome = Literal["synced", "ignored", "dead_mapping", "dead_xero"]


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
            return (
                "dead_xero",
                f"invoice date {LOCKED_INVOICE_DATE.isoformat()} is before the Xero period lock date "
                f"{LOCK_DATE.isoformat()}",
            )
        case _:
            return "synced", ""

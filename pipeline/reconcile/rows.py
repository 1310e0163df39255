"""What reconciliation compares: each side's invoice rows, the ledger's view, and a finding.

Pure data and parsing, no I/O: the comparison and the report read these.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mappings import Cin7Sale
from pipeline.ledger.models import (
    DocumentState,
)

# Differences up to this much (per total) are Xero's or Cin7's rounding, reported apart from mismatches.
CIN7_SALE_LINK = "https://inventory.dearsystems.com/Sale#{id}"

CIN7_LIVE = frozenset({"AUTHORISED", "PAID"})
CIN7_COMPARED = CIN7_LIVE | {"VOIDED"}
# Every status the sync knows what to do with; Cin7 may add others, which are reported, never ignored.
CIN7_KNOWN = CIN7_COMPARED | {"DRAFT", "NOT AVAILABLE"}

ROUNDING_TOLERANCE = Decimal("0.05")


CENT = Decimal("0.01")


XERO_INVOICE_LINK = "https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={id}"


XERO_DEAD = frozenset({"VOIDED", "DELETED"})


HEALABLE_STATES = frozenset({DocumentState.SYNCED.value, DocumentState.IGNORED.value, DocumentState.VOIDED.value})


IN_FLIGHT = frozenset(
    {DocumentState.PENDING.value, DocumentState.READY.value, DocumentState.WRITING.value, DocumentState.RETRY.value}
)


class Kind(enum.StrEnum):
    """What kind of discrepancy a finding is (stable values: they are in stored runs and reports)."""

    MISSING_IN_XERO = "missing_in_xero"
    UNKNOWN_IN_XERO = "unknown_in_xero"
    DUPLICATE = "duplicate"
    MISMATCH = "mismatch"
    ROUNDING = "rounding"
    STATUS = "status"
    CONTACT = "contact"
    DATE = "date"
    UNKNOWN_STATUS = "unknown_status"


KIND_LABELS: dict[Kind, str] = {
    Kind.MISSING_IN_XERO: "Missing in Xero",
    Kind.UNKNOWN_IN_XERO: "In Xero, unknown to Cin7",
    Kind.DUPLICATE: "Duplicate in Xero",
    Kind.MISMATCH: "Totals differ",
    Kind.ROUNDING: "Rounding difference",
    Kind.STATUS: "Status differs",
    Kind.CONTACT: "Different contact",
    Kind.DATE: "Invoice date differs",
    Kind.UNKNOWN_STATUS: "Unknown Cin7 status",
}


@dataclass(frozen=True)
class Cin7InvoiceRow:
    """One Cin7 sale invoice as reconciliation sees it (amounts in the invoice's currency)."""

    sale_id: str
    task_id: str
    number: str
    date: date | None
    customer: str
    customer_id: str | None
    status: str
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    currency: str | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-safe form (amounts as strings), with the link a bookkeeper clicks."""
        return {
            "sale_id": self.sale_id,
            "task_id": self.task_id,
            "number": self.number,
            "date": self.date.isoformat() if self.date else None,
            "customer": self.customer,
            "customer_id": self.customer_id,
            "status": self.status,
            "subtotal": str(self.subtotal),
            "tax": str(self.tax),
            "total": str(self.total),
            "currency": self.currency,
            "link": CIN7_SALE_LINK.format(id=self.sale_id),
        }


@dataclass(frozen=True)
class XeroInvoiceRow:
    """One Xero ACCREC invoice as reconciliation sees it."""

    invoice_id: str
    number: str
    date: date | None
    status: str
    contact_id: str | None
    contact_name: str
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    amount_paid: Decimal = Decimal("0.00")
    currency: str | None = None

    @property
    def live(self) -> bool:
        """Not voided or deleted."""
        return self.status not in XERO_DEAD

    @property
    def paid(self) -> bool:
        """Paid or part-paid (or credited): the sync must not change it."""
        return self.status == "PAID" or self.amount_paid > 0

    def as_json(self) -> dict[str, Any]:
        """JSON-safe form, with the Xero deep link."""
        return {
            "invoice_id": self.invoice_id,
            "number": self.number,
            "date": self.date.isoformat() if self.date else None,
            "status": self.status,
            "contact_id": self.contact_id,
            "contact": self.contact_name,
            "subtotal": str(self.subtotal),
            "tax": str(self.tax),
            "total": str(self.total),
            "amount_paid": str(self.amount_paid),
            "currency": self.currency,
            "link": XERO_INVOICE_LINK.format(id=self.invoice_id),
        }


@dataclass(frozen=True)
class LedgerDoc:
    """What the ledger holds for one Cin7 invoice."""

    doc_id: int
    sale_id: str
    task_id: str
    number: str | None
    state: str
    xero_id: str | None
    dead_letter_id: int | None = None


@dataclass
class LedgerView:
    """The part of the ledger a comparison needs, as plain data."""

    # By (sale id, task id), both lower case.
    documents: dict[tuple[str, str], LedgerDoc] = field(default_factory=dict)
    # Cin7 customer id (lower case) -> Xero ContactID (lower case).
    contact_links: dict[str, str] = field(default_factory=dict)
    # Open sale-level dead letters (the detail could not be read): sale id -> dead letter id.
    dead_sales: dict[str, int] = field(default_factory=dict)

    def by_xero_id(self) -> dict[str, LedgerDoc]:
        """Documents by the Xero InvoiceID they are linked to."""
        return {doc.xero_id.lower(): doc for doc in self.documents.values() if doc.xero_id}


@dataclass(frozen=True)
class Cin7Elsewhere:
    """Cin7 invoices outside the comparison (another date, drafts): they make a Xero invoice "known"."""

    numbers: frozenset[str] = frozenset()
    tasks: frozenset[tuple[str, str]] = frozenset()


@dataclass
class Finding:
    """One discrepancy, with both sides' values."""

    kind: Kind
    detail: str
    cin7: Cin7InvoiceRow | None = None
    xero: tuple[XeroInvoiceRow, ...] = ()
    # Xero minus Cin7, per total, for the totals that differ.
    difference: dict[str, Decimal] = field(default_factory=dict)
    # Why it is already understood (a dead letter, a write in flight); still a discrepancy.
    known: str | None = None
    # `--heal` can hand it back to the sync.
    healable: bool = False
    doc_id: int | None = None
    healed: bool = False

    @property
    def number(self) -> str:
        """The invoice number the finding is about."""
        if self.cin7 is not None:
            return self.cin7.number
        return self.xero[0].number if self.xero else ""

    def as_json(self) -> dict[str, Any]:
        """The stored and reported form."""
        return {
            "kind": self.kind.value,
            "label": KIND_LABELS[self.kind],
            "number": self.number,
            "detail": self.detail,
            "known": self.known,
            "healable": self.healable,
            "healed": self.healed,
            "doc_id": self.doc_id,
            "cin7": self.cin7.as_json() if self.cin7 is not None else None,
            "xero": [row.as_json() for row in self.xero],
            "difference": {key: str(value) for key, value in self.difference.items()},
        }


_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def _decimal(value: object) -> Decimal:
    if value is None or value == "":
        return Decimal("0.00")
    if isinstance(value, Decimal):
        return value
    try:
        # str() first so that a float such as 12.3 becomes exactly Decimal("12.3").
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc


def parse_xero_date(value: object) -> date | None:
    """A Xero date from `/Date(ms+zzzz)/`, an ISO string, or a date."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    match = _MS_DATE.fullmatch(text.strip())
    if match:
        # The offset only says which zone the timestamp was written in; the instant is UTC epoch ms.
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC).date()
    return date.fromisoformat(text.strip()[:10])


def normalise_number(number: str | None) -> str:
    """Invoice numbers compare without surrounding blanks and case, as Xero's uniqueness check does."""
    return (number or "").strip().casefold()


def number_shape(number: str) -> str:
    """A number's shape: digits runs replaced by their length (`INV-00012` -> `INV-#5`)."""
    return re.sub(r"\d+", lambda m: f"#{len(m.group())}", number.strip().upper())


def xero_invoice_row(data: Mapping[str, Any]) -> XeroInvoiceRow:
    """A row from Xero's invoice JSON (as the SDK serialises it, or the stand-in renders it)."""
    contact = data.get("Contact") or {}
    paid = _decimal(data.get("AmountPaid")) + _decimal(data.get("AmountCredited"))
    contact_id = contact.get("ContactID")
    return XeroInvoiceRow(
        invoice_id=str(data.get("InvoiceID") or "").lower(),
        number=str(data.get("InvoiceNumber") or "").strip(),
        date=parse_xero_date(data.get("DateString") or data.get("Date")),
        status=str(data.get("Status") or "").upper(),
        contact_id=str(contact_id).lower() if contact_id else None,
        contact_name=str(contact.get("Name") or ""),
        subtotal=_decimal(data.get("SubTotal")),
        tax=_decimal(data.get("TotalTax")),
        total=_decimal(data.get("Total")),
        amount_paid=paid,
        currency=str(data["CurrencyCode"]) if data.get("CurrencyCode") else None,
    )


def cin7_invoice_rows(sale: Cin7Sale) -> list[Cin7InvoiceRow]:
    """Every invoice of a sale (any status, any date) as rows."""
    rows = []
    for invoice in sale.invoices:
        if not invoice.task_id:
            continue
        rows.append(
            Cin7InvoiceRow(
                sale_id=sale.id,
                task_id=invoice.task_id,
                number=(invoice.invoice_number or "").strip(),
                date=invoice.invoice_date.date() if invoice.invoice_date is not None else None,
                customer=(sale.customer or "").strip(),
                customer_id=sale.customer_id,
                status=str(invoice.status or "NOT AVAILABLE").upper(),
                subtotal=invoice.total_before_tax,
                tax=invoice.tax,
                total=invoice.total,
                currency=sale.customer_currency or sale.base_currency,
            )
        )
    return rows

"""What reconciliation compares: each side's invoice and credit note rows, the ledger's view, and a finding.

Pure data and parsing, no I/O: the comparison and the report read these.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mappings import (
    Cin7CreditNote,
    Cin7Invoice,
    Cin7Purchase,
    Cin7Sale,
    credit_allocations,
    money_total,
    round_half_up,
)
from pipeline.ledger.models import (
    DocumentState,
)
from pipeline.xero.sdk import parse_xero_date

# Differences up to this much (per total) are Xero's or Cin7's rounding, reported apart from mismatches.
CIN7_SALE_LINK = "https://inventory.dearsystems.com/Sale#{id}"

CIN7_LIVE = frozenset({"AUTHORISED", "PAID"})
CIN7_COMPARED = CIN7_LIVE | {"VOIDED"}
# Every status the sync knows what to do with; Cin7 may add others, which are reported, never ignored.
CIN7_KNOWN = CIN7_COMPARED | {"DRAFT", "NOT AVAILABLE"}

ROUNDING_TOLERANCE = Decimal("0.05")


CENT = Decimal("0.01")


XERO_INVOICE_LINK = "https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={id}"
XERO_CREDIT_NOTE_LINK = "https://go.xero.com/AccountsReceivable/ViewCreditNote.aspx?creditNoteID={id}"
XERO_BILL_LINK = "https://go.xero.com/AccountsPayable/View.aspx?InvoiceID={id}"
XERO_SUPPLIER_CREDIT_NOTE_LINK = "https://go.xero.com/AccountsPayable/ViewCreditNote.aspx?creditNoteID={id}"
CIN7_PURCHASE_LINK = "https://inventory.dearsystems.com/Purchase#{id}"

# What a row or finding is about (stable values: they are in stored runs, reports and ledger kinds).
INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
BILL = "bill"
SUPPLIER_CREDIT_NOTE = "supplier_credit_note"
#: A purchase's documents: their Cin7 page is the purchase's, and a heal re-reads the purchase.
PURCHASE_DOCUMENTS = frozenset({BILL, SUPPLIER_CREDIT_NOTE})
DOCUMENT_NOUNS = {
    INVOICE: "invoice",
    CREDIT_NOTE: "credit note",
    BILL: "bill",
    SUPPLIER_CREDIT_NOTE: "supplier credit note",
}
_XERO_LINKS = {
    INVOICE: XERO_INVOICE_LINK,
    CREDIT_NOTE: XERO_CREDIT_NOTE_LINK,
    BILL: XERO_BILL_LINK,
    SUPPLIER_CREDIT_NOTE: XERO_SUPPLIER_CREDIT_NOTE_LINK,
}

ZERO = Decimal("0.00")


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
    BALANCE = "balance"


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
    Kind.BALANCE: "Paid or credited differs",
}


@dataclass(frozen=True)
class Cin7InvoiceRow:
    """One Cin7 sale invoice or credit note as reconciliation sees it (amounts in its currency).

    The balance figures read the same way for both documents, so that `total = paid + credited + due`:
    for an invoice, `paid` is its payments, `credited` the credit notes allocated to it and `due` what
    is still owed (Xero's AmountPaid, AmountCredited, AmountDue); for a credit note, `paid` is its
    refunds, `credited` what it allocates to its invoice and `due` what is left (RemainingCredit).
    """

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
    document: str = INVOICE
    paid: Decimal = ZERO
    credited: Decimal = ZERO

    @property
    def due(self) -> Decimal:
        """What Xero must show as still owed (invoice) or left to use (credit note): its total to the cent
        less what was paid and credited.
        """
        return money_total(self.total) - self.paid - self.credited

    def as_json(self) -> dict[str, Any]:
        """JSON-safe form (amounts as strings), with the link a bookkeeper clicks."""
        return {
            "document": self.document,
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
            "paid": str(self.paid),
            "credited": str(self.credited),
            "due": str(self.due),
            "currency": self.currency,
            "link": (CIN7_PURCHASE_LINK if self.document in PURCHASE_DOCUMENTS else CIN7_SALE_LINK).format(
                id=self.sale_id
            ),
        }


@dataclass(frozen=True)
class XeroInvoiceRow:
    """One Xero ACCREC invoice or ACCRECCREDIT credit note as reconciliation sees it.

    `invoice_id` is the InvoiceID or CreditNoteID. The balance figures mean what they mean on
    `Cin7InvoiceRow`: for a credit note, `amount_paid` is its refunds, `amount_credited` what it
    allocates and `amount_due` its RemainingCredit.
    """

    invoice_id: str
    number: str
    date: date | None
    status: str
    contact_id: str | None
    contact_name: str
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    amount_paid: Decimal = ZERO
    currency: str | None = None
    document: str = INVOICE
    amount_credited: Decimal = ZERO
    # None: Xero's JSON had no figure, so it is read as total - paid - credited.
    amount_due: Decimal | None = None

    @property
    def live(self) -> bool:
        """Not voided or deleted."""
        return self.status not in XERO_DEAD

    @property
    def paid(self) -> bool:
        """Paid, part-paid or credited (a credit note: allocated or refunded): the sync must not change it."""
        return self.status == "PAID" or self.amount_paid > 0 or self.amount_credited > 0

    @property
    def due(self) -> Decimal:
        """AmountDue (RemainingCredit for a credit note)."""
        if self.amount_due is not None:
            return self.amount_due
        return self.total - self.amount_paid - self.amount_credited

    def as_json(self) -> dict[str, Any]:
        """JSON-safe form, with the Xero deep link."""
        return {
            "document": self.document,
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
            "amount_credited": str(self.amount_credited),
            "amount_due": str(self.due),
            "currency": self.currency,
            "link": _XERO_LINKS.get(self.document, XERO_INVOICE_LINK).format(id=self.invoice_id),
        }


@dataclass(frozen=True)
class LedgerDoc:
    """What the ledger holds for one Cin7 invoice or credit note (by its kind's ledger view)."""

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
    # Xero minus Cin7, per total (or balance figure: AmountPaid, AmountCredited, AmountDue) that differs.
    difference: dict[str, Decimal] = field(default_factory=dict)
    # Why it is already understood (a dead letter, a write in flight); still a discrepancy.
    known: str | None = None
    # `--heal` can hand it back to the sync.
    healable: bool = False
    doc_id: int | None = None
    healed: bool = False

    @property
    def document(self) -> str:
        """What the finding is about: "invoice" or "credit_note"."""
        if self.cin7 is not None:
            return self.cin7.document
        return self.xero[0].document if self.xero else INVOICE

    @property
    def number(self) -> str:
        """The invoice (or credit note) number the finding is about."""
        if self.cin7 is not None:
            return self.cin7.number
        return self.xero[0].number if self.xero else ""

    def as_json(self) -> dict[str, Any]:
        """The stored and reported form."""
        return {
            "kind": self.kind.value,
            "label": KIND_LABELS[self.kind],
            "document": self.document,
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


def normalise_number(number: str | None) -> str:
    """Invoice numbers compare without surrounding blanks and case, as Xero's uniqueness check does."""
    return (number or "").strip().casefold()


def number_shape(number: str) -> str:
    """A number's shape: digits runs replaced by their length (`INV-00012` -> `INV-#5`)."""
    return re.sub(r"\d+", lambda m: f"#{len(m.group())}", number.strip().upper())


def _xero_row(
    data: Mapping[str, Any],
    *,
    document: str,
    id_key: str,
    number_key: str,
    paid: Decimal,
    credited: Decimal,
    due: object,
) -> XeroInvoiceRow:
    contact = data.get("Contact") or {}
    contact_id = contact.get("ContactID")
    return XeroInvoiceRow(
        invoice_id=str(data.get(id_key) or "").lower(),
        number=str(data.get(number_key) or "").strip(),
        date=parse_xero_date(data.get("DateString") or data.get("Date")),
        status=str(data.get("Status") or "").upper(),
        contact_id=str(contact_id).lower() if contact_id else None,
        contact_name=str(contact.get("Name") or ""),
        subtotal=_decimal(data.get("SubTotal")),
        tax=_decimal(data.get("TotalTax")),
        total=_decimal(data.get("Total")),
        amount_paid=paid,
        amount_credited=credited,
        amount_due=_decimal(due) if due is not None else None,
        currency=str(data["CurrencyCode"]) if data.get("CurrencyCode") else None,
        document=document,
    )


def xero_invoice_row(data: Mapping[str, Any]) -> XeroInvoiceRow:
    """A row from Xero's invoice JSON (as the SDK serialises it, or the stand-in renders it)."""
    return _xero_row(
        data,
        document=INVOICE,
        id_key="InvoiceID",
        number_key="InvoiceNumber",
        paid=_decimal(data.get("AmountPaid")),
        credited=_decimal(data.get("AmountCredited")),
        due=data.get("AmountDue"),
    )


def xero_credit_note_row(data: Mapping[str, Any], *, document: str = CREDIT_NOTE) -> XeroInvoiceRow:
    """A row from Xero's credit note JSON: refunds are its Payments, the allocated amount its Allocations.

    A listing may leave Allocations out; then what is allocated is what of the total is neither left
    (RemainingCredit) nor refunded.
    """
    total = _decimal(data.get("Total"))
    refunded = sum((_decimal(p.get("Amount")) for p in data.get("Payments") or [] if isinstance(p, Mapping)), ZERO)
    allocations = [a for a in data.get("Allocations") or [] if isinstance(a, Mapping)]
    remaining = data.get("RemainingCredit")
    if allocations:
        allocated = sum((_decimal(a.get("Amount")) for a in allocations), ZERO)
    elif remaining is not None:
        allocated = total - _decimal(remaining) - refunded
    else:
        allocated = ZERO
    return _xero_row(
        data,
        document=document,
        id_key="CreditNoteID",
        number_key="CreditNoteNumber",
        paid=refunded,
        credited=allocated,
        due=remaining,
    )


def _cents(amounts: Iterable[Decimal]) -> Decimal:
    """A sum of Cin7 amounts as Xero holds each of them: to the cent (as `mappings.payments` sends them)."""
    return sum((round_half_up(amount) for amount in amounts), ZERO)


def cin7_row(
    parent: Cin7Sale | Cin7Purchase,
    document: Cin7Invoice | Cin7CreditNote,
    *,
    kind: str,
    number: str | None,
    dated: datetime | None,
    paid: Decimal,
    credited: Decimal,
    task_id: str | None = None,
) -> Cin7InvoiceRow:
    """One Cin7 document of a sale or purchase as reconciliation compares it (its party: the customer
    or supplier; `task_id` when its ledger key is not its own TaskID).
    """
    if isinstance(parent, Cin7Purchase):
        party, party_id = parent.supplier, parent.supplier_id
        currency = parent.supplier_currency or parent.base_currency
    else:
        party, party_id = parent.customer, parent.customer_id
        currency = parent.customer_currency or parent.base_currency
    return Cin7InvoiceRow(
        sale_id=parent.id,
        task_id=task_id or document.task_id or "",
        number=(number or "").strip(),
        date=dated.date() if dated is not None else None,
        customer=(party or "").strip(),
        customer_id=party_id,
        status=str(document.status or "NOT AVAILABLE").upper(),
        subtotal=document.total_before_tax,
        tax=document.tax,
        total=document.total,
        currency=currency,
        document=kind,
        paid=paid,
        credited=credited,
    )


def cin7_invoice_rows(sale: Cin7Sale) -> list[Cin7InvoiceRow]:
    """Every invoice of a sale (any status, any date) as rows, with what Xero must show as paid and credited."""
    credited: dict[str | None, Decimal] = {}
    for allocation in credit_allocations(sale).values():
        key = allocation.invoice.task_id
        credited[key] = credited.get(key, ZERO) + allocation.amount
    return [
        cin7_row(
            sale,
            invoice,
            kind=INVOICE,
            number=invoice.invoice_number,
            dated=invoice.invoice_date,
            paid=_cents(payment.amount for payment in invoice.payments),
            credited=credited.get(invoice.task_id, ZERO),
        )
        for invoice in sale.invoices
        if invoice.task_id
    ]


def cin7_credit_note_rows(sale: Cin7Sale) -> list[Cin7InvoiceRow]:
    """Every credit note of a sale (any status, any date) as rows: refunds as paid, its allocation as credited."""
    allocations = credit_allocations(sale)
    rows = []
    for note in sale.credit_notes:
        if not note.task_id:
            continue
        allocation = allocations.get(note.task_id)
        rows.append(
            cin7_row(
                sale,
                note,
                kind=CREDIT_NOTE,
                number=note.credit_note_number,
                dated=note.credit_note_date,
                paid=_cents(refund.amount for refund in note.refunds),
                credited=allocation.amount if allocation is not None else ZERO,
            )
        )
    return rows

"""Reconciliation: every Cin7 sale invoice in an invoice-date window against Xero's ACCREC invoices.

Two halves. The comparison (`compare` and the row builders) is pure: plain rows in, findings out, so
every kind of discrepancy is unit-testable on hand-built data. The run (`run_reconciliation`) gathers
those rows within the shared rate limits (Xero pages of 1000, yielding to the sync's writer; Cin7 one
saleList pass, reusing the ledger's sale snapshots where Cin7's `Updated` says they are current),
records a ReconciliationRun, writes the report files and raises one alert.

Reconciliation never writes to Xero. `heal` only resets ledger rows and enqueues the normal sync
path (fetch -> map -> write), whose own checks (payments, lookups before creating) still apply.
"""

from __future__ import annotations

import enum
import logging
import re
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from mappings import Cin7Sale, Cin7SaleListRow
from pipeline.context import TenantContext
from pipeline.errors import SyncError
from pipeline.ledger.models import (
    ContactLink,
    DeadLetter,
    DocumentState,
    ReconciliationRun,
    SaleRecord,
    SaleState,
    SyncDocument,
    Tenant,
    utcnow,
)

log = logging.getLogger(__name__)

# Differences up to this much (per total) are Xero's or Cin7's rounding, reported apart from mismatches.
ROUNDING_TOLERANCE = Decimal("0.05")
CENT = Decimal("0.01")
# An invoice can be dated after the sale was last touched (a forward-dated invoice): the saleList pass
# starts this much before the window so that such sales are still read.
FORWARD_DATED_MARGIN = timedelta(days=31)
XERO_PAGE_SIZE = 1000
# Ledger IN (...) lists are chunked below PostgreSQL's comfortable parameter counts.
_IN_CHUNK = 500

XERO_INVOICE_LINK = "https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={id}"
CIN7_SALE_LINK = "https://inventory.dearsystems.com/Sale#{id}"

CIN7_LIVE = frozenset({"AUTHORISED", "PAID"})
CIN7_COMPARED = CIN7_LIVE | {"VOIDED"}
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


KIND_LABELS: dict[Kind, str] = {
    Kind.MISSING_IN_XERO: "Missing in Xero",
    Kind.UNKNOWN_IN_XERO: "In Xero, unknown to Cin7",
    Kind.DUPLICATE: "Duplicate in Xero",
    Kind.MISMATCH: "Totals differ",
    Kind.ROUNDING: "Rounding difference",
    Kind.STATUS: "Status differs",
    Kind.CONTACT: "Different contact",
    Kind.DATE: "Invoice date differs",
}


# --- rows ----------------------------------------------------------------------------------------------


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


# --- pure parsing ----------------------------------------------------------------------------------------

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


def in_window(day: date | None, start: date, end: date) -> bool:
    """`start <= day < end` (end exclusive)."""
    return day is not None and start <= day < end


def split_cin7(rows: Iterable[Cin7InvoiceRow], start: date, end: date) -> tuple[list[Cin7InvoiceRow], Cin7Elsewhere]:
    """Compared invoices (AUTHORISED/PAID/VOIDED dated in the window) and the rest, which only make numbers known."""
    compared: list[Cin7InvoiceRow] = []
    numbers: set[str] = set()
    tasks: set[tuple[str, str]] = set()
    for row in rows:
        if row.status in CIN7_COMPARED and in_window(row.date, start, end):
            compared.append(row)
        else:
            if row.number:
                numbers.add(normalise_number(row.number))
            tasks.add((row.sale_id, row.task_id))
    return compared, Cin7Elsewhere(frozenset(numbers), frozenset(tasks))


# --- pure comparison ---------------------------------------------------------------------------------------


def total_differences(cin7: Cin7InvoiceRow, xero: XeroInvoiceRow) -> dict[str, Decimal]:
    """Xero minus Cin7, to the cent, for each of SubTotal/TotalTax/Total that differs."""
    differences = {}
    for name, ours, theirs in (
        ("SubTotal", cin7.subtotal, xero.subtotal),
        ("TotalTax", cin7.tax, xero.tax),
        ("Total", cin7.total, xero.total),
    ):
        difference = (theirs - ours).quantize(CENT)
        if difference != 0:
            differences[name] = difference
    return differences


def _fmt_differences(differences: Mapping[str, Decimal]) -> str:
    return ", ".join(f"{name} {value:+}" for name, value in differences.items())


def _known(doc: LedgerDoc | None, sale_id: str, ledger: LedgerView) -> str | None:
    if doc is not None and doc.dead_letter_id is not None:
        return f"dead letter {doc.dead_letter_id}"
    if doc is not None and doc.state == DocumentState.DEAD.value:
        return "dead letter (closed without retry)"
    if sale_id in ledger.dead_sales:
        return f"dead letter {ledger.dead_sales[sale_id]}"
    if doc is not None and doc.state in IN_FLIGHT:
        return f"sync in progress ({doc.state})"
    return None


def _healable(doc: LedgerDoc | None, known: str | None) -> bool:
    """The sync can fix it: nothing dead or in flight, and the ledger believes the row is done."""
    if known is not None:
        return False
    return doc is None or doc.state in HEALABLE_STATES


def compare(
    cin7: Sequence[Cin7InvoiceRow],
    xero: Sequence[XeroInvoiceRow],
    ledger: LedgerView,
    *,
    xero_outside: Sequence[XeroInvoiceRow] = (),
    cin7_elsewhere: Cin7Elsewhere | None = None,
    shapes: Collection[str] | None = None,
) -> list[Finding]:
    """Every discrepancy between Cin7's invoices in the window and Xero's.

    `cin7`: Cin7 invoices dated in the window (AUTHORISED, PAID, VOIDED). `xero`: Xero ACCREC invoices
    dated in the window. `xero_outside`: Xero invoices found for those Cin7 invoices outside the window
    (by number or ledger link); they are compared but never reported as unknown. `cin7_elsewhere`: Cin7
    invoices not compared (other dates, drafts), so that a Xero invoice carrying one is not "unknown".
    `shapes`: shapes of Cin7's invoice numbers (default: those of `cin7`) - a Xero invoice whose number
    has one of them, or which the ledger links, carries our reference.
    """
    elsewhere = cin7_elsewhere or Cin7Elsewhere()
    known_shapes = set(shapes) if shapes is not None else {number_shape(row.number) for row in cin7 if row.number}
    findings: list[Finding] = []
    by_id: dict[str, XeroInvoiceRow] = {}
    for row in [*xero, *xero_outside]:
        by_id.setdefault(row.invoice_id, row)
    by_number: dict[str, list[XeroInvoiceRow]] = {}
    for row in by_id.values():
        if row.number:
            by_number.setdefault(normalise_number(row.number), []).append(row)
    linked = ledger.by_xero_id()
    cin7_by_number = {normalise_number(row.number): row for row in cin7 if row.number}
    claimed: set[str] = set()

    # The same number twice in Xero, when the number is ours (Xero's own numbering is not our business).
    duplicate_numbers: set[str] = set()
    for number, rows in by_number.items():
        ours = (
            number in cin7_by_number
            or number in elsewhere.numbers
            or number_shape(rows[0].number) in known_shapes
            or any(row.invoice_id in linked for row in rows)
        )
        if len(rows) < 2 or not ours:
            continue
        duplicate_numbers.add(number)
        owner = cin7_by_number.get(number)
        doc = ledger.documents.get((owner.sale_id, owner.task_id)) if owner else None
        findings.append(
            Finding(
                Kind.DUPLICATE,
                f"invoice number {rows[0].number} is used by {len(rows)} Xero invoices",
                cin7=owner,
                xero=tuple(sorted(rows, key=lambda r: r.invoice_id)),
                doc_id=doc.doc_id if doc else None,
            )
        )

    for invoice in cin7:
        doc = ledger.documents.get((invoice.sale_id, invoice.task_id))
        number = normalise_number(invoice.number)
        candidates: dict[str, XeroInvoiceRow] = {row.invoice_id: row for row in by_number.get(number, [])}
        linked_row = by_id.get(doc.xero_id.lower()) if doc is not None and doc.xero_id else None
        if linked_row is not None:
            candidates[linked_row.invoice_id] = linked_row
        claimed.update(candidates)
        doc_id = doc.doc_id if doc else None
        if len(candidates) > 1 and number not in duplicate_numbers:
            findings.append(
                Finding(
                    Kind.DUPLICATE,
                    f"{len(candidates)} Xero invoices belong to Cin7 invoice {invoice.number} "
                    "(one by its number, one by the ledger's link)",
                    cin7=invoice,
                    xero=tuple(sorted(candidates.values(), key=lambda r: r.invoice_id)),
                    doc_id=doc_id,
                )
            )
        # The one to compare: the ledger's link, else a live one with the number.
        primary = linked_row or next(
            iter(sorted(candidates.values(), key=lambda r: (not r.live, r.invoice_id))),
            None,
        )
        known = _known(doc, invoice.sale_id, ledger)
        if primary is None:
            if invoice.status in CIN7_LIVE:
                findings.append(
                    Finding(
                        Kind.MISSING_IN_XERO,
                        f"Cin7 invoice {invoice.number} ({invoice.status}) has no Xero invoice"
                        + (f"; the ledger says {doc.state}" if doc is not None else "; the ledger has never seen it"),
                        cin7=invoice,
                        known=known,
                        healable=_healable(doc, known),
                        doc_id=doc_id,
                    )
                )
            continue
        findings.extend(_compare_pair(invoice, primary, doc, known, ledger))

    # Xero invoices carrying our reference that no Cin7 invoice accounts for.
    all_cin7_numbers = set(cin7_by_number) | set(elsewhere.numbers)
    all_cin7_tasks = {(row.sale_id, row.task_id) for row in cin7} | set(elsewhere.tasks)
    for row in xero:
        if row.invoice_id in claimed or not row.live:
            continue
        doc = linked.get(row.invoice_id)
        if doc is not None and (doc.sale_id, doc.task_id) in all_cin7_tasks:
            continue
        if row.number and normalise_number(row.number) in all_cin7_numbers:
            continue
        ours = doc is not None or (bool(row.number) and number_shape(row.number) in known_shapes)
        if not ours:
            continue
        reason = "the ledger links it to a Cin7 invoice that no longer exists" if doc else "it has a Cin7 number"
        findings.append(
            Finding(
                Kind.UNKNOWN_IN_XERO,
                f"Xero invoice {row.number or row.invoice_id} ({row.status}) is unknown to Cin7; {reason}",
                xero=(row,),
                doc_id=doc.doc_id if doc else None,
            )
        )
    return findings


def _compare_pair(
    invoice: Cin7InvoiceRow, xero: XeroInvoiceRow, doc: LedgerDoc | None, known: str | None, ledger: LedgerView
) -> list[Finding]:
    findings: list[Finding] = []
    doc_id = doc.doc_id if doc else None
    differences = total_differences(invoice, xero)
    conflict = doc is not None and doc.state == DocumentState.CONFLICT.value
    if invoice.status == "VOIDED":
        if xero.live:
            paid_note = " and paid/credited there" if xero.paid else ""
            findings.append(
                Finding(
                    Kind.STATUS,
                    f"voided in Cin7 but {xero.status} in Xero{paid_note}",
                    cin7=invoice,
                    xero=(xero,),
                    known=known,
                    healable=not xero.paid and not conflict and _healable(doc, known),
                    doc_id=doc_id,
                )
            )
        return findings
    if not xero.live:
        findings.append(
            Finding(
                Kind.STATUS,
                f"{invoice.status} in Cin7 but {xero.status} in Xero",
                cin7=invoice,
                xero=(xero,),
                difference=differences,
                known=known,
                doc_id=doc_id,
            )
        )
        return findings
    if conflict or (differences and xero.paid):
        what = f"totals differ ({_fmt_differences(differences)})" if differences else "changed"
        findings.append(
            Finding(
                Kind.STATUS,
                f"paid in Xero ({xero.status}, {xero.amount_paid} paid/credited) but {what} in Cin7; "
                "the sync does not change paid invoices",
                cin7=invoice,
                xero=(xero,),
                difference=differences,
                known="ledger conflict" if conflict else known,
                doc_id=doc_id,
            )
        )
    elif differences:
        rounding = all(abs(value) <= ROUNDING_TOLERANCE for value in differences.values())
        findings.append(
            Finding(
                Kind.ROUNDING if rounding else Kind.MISMATCH,
                f"{'rounding' if rounding else 'totals'} differ: {_fmt_differences(differences)} (Xero - Cin7)",
                cin7=invoice,
                xero=(xero,),
                difference=differences,
                known=known,
                healable=not rounding and doc is not None and doc.state == DocumentState.SYNCED.value,
                doc_id=doc_id,
            )
        )
    if invoice.date is not None and xero.date is not None and invoice.date != xero.date:
        findings.append(
            Finding(
                Kind.DATE,
                f"dated {invoice.date.isoformat()} in Cin7 but {xero.date.isoformat()} in Xero",
                cin7=invoice,
                xero=(xero,),
                known=known,
                healable=not xero.paid and doc is not None and doc.state == DocumentState.SYNCED.value,
                doc_id=doc_id,
            )
        )
    link = ledger.contact_links.get((invoice.customer_id or "").lower())
    if link is not None and xero.contact_id is not None and link.lower() != xero.contact_id:
        findings.append(
            Finding(
                Kind.CONTACT,
                f"Xero invoice is on contact {xero.contact_name or xero.contact_id} ({xero.contact_id}); "
                f"the ledger links Cin7 customer {invoice.customer} to Xero contact {link}",
                cin7=invoice,
                xero=(xero,),
                known=known,
                doc_id=doc_id,
            )
        )
    return findings


def summarise(findings: Sequence[Finding]) -> dict[str, Any]:
    """Counts per kind (every kind present, zeros included) and of known/healable/healed findings."""
    counts = {kind.value: 0 for kind in Kind}
    for finding in findings:
        counts[finding.kind.value] += 1
    return {
        "total": len(findings),
        "counts": counts,
        "known": sum(1 for f in findings if f.known),
        "healable": sum(1 for f in findings if f.healable),
        "healed": sum(1 for f in findings if f.healed),
    }


# --- the window ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Invoice dates `start <= date < end`; `last` is the inclusive last day a person reads."""

    start: date
    end: date

    @property
    def last(self) -> date:
        """The last day in the window."""
        return self.end - timedelta(days=1)

    def xero_where(self) -> str:
        """Xero's `where` filter for ACCREC invoices dated in the window."""
        s, e = self.start, self.end
        return (
            f"Date >= DateTime({s.year}, {s.month}, {s.day}) && Date < DateTime({e.year}, {e.month}, {e.day})"
            ' && Type == "ACCREC"'
        )


def resolve_window(since: date | None, until: date | None, lookback_days: int, today: date) -> Window:
    """`since`..`until` inclusive; defaults: the last `lookback_days` days up to and including today."""
    last = until or today
    start = since or (last - timedelta(days=lookback_days))
    if start > last:
        raise ValueError(f"--since {start.isoformat()} is after --until {last.isoformat()}")
    return Window(start, last + timedelta(days=1))


def parse_day(value: str | date | None) -> date | None:
    """A date from `YYYY-MM-DD` (a datetime string is cut to its date)."""
    if value is None or isinstance(value, date):
        return value
    text = value.strip()
    return date.fromisoformat(text[:10]) if text else None


# --- gathering (I/O) ----------------------------------------------------------------------------------------


def _chunks(values: Sequence[str], size: int = _IN_CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _writer_busy(ctx: TenantContext) -> bool:
    from pipeline.writer.claim import ready_count

    if ready_count(ctx) > 0:
        return True
    with ctx.sessions() as session:
        tenant = session.get(Tenant, ctx.tenant_pk)
        until = tenant.write_lease_until if tenant is not None else None
    return until is not None and until > utcnow()


def yield_to_writers(ctx: TenantContext, max_wait: float, *, interval: float = 0.5) -> float:
    """Wait (at most `max_wait` seconds) while the sync has writes queued or a writer holds the lease.

    Reconciliation reads share Xero's per-tenant minute with the writer; a report can be late, an
    invoice should not be. Returns the seconds waited.
    """
    started = time.monotonic()
    while time.monotonic() - started < max_wait and _writer_busy(ctx):
        time.sleep(interval)
    return time.monotonic() - started


def read_xero_window(ctx: TenantContext, window: Window, *, yield_seconds: float) -> list[XeroInvoiceRow]:
    """Every ACCREC invoice dated in the window, a page of 1000 at a time."""
    rows: list[XeroInvoiceRow] = []
    page = 1
    where = window.xero_where()
    while True:
        yield_to_writers(ctx, yield_seconds)
        batch = ctx.xero.get_invoices(where=where, page=page)
        rows.extend(xero_invoice_row(data) for data in batch if str(data.get("Type", "ACCREC")).upper() == "ACCREC")
        if len(batch) < XERO_PAGE_SIZE:
            return rows
        page += 1


@dataclass
class Cin7Read:
    """What one pass over Cin7 produced."""

    rows: list[Cin7InvoiceRow] = field(default_factory=list)
    sales_read: set[str] = field(default_factory=set)
    listed: int = 0
    fetched: int = 0
    from_snapshot: int = 0
    errors: list[str] = field(default_factory=list)


def read_cin7_window(ctx: TenantContext, window: Window) -> Cin7Read:
    """Every invoice of every sale updated since shortly before the window.

    One saleList pass; a sale's detail comes from the ledger's snapshot when the listed `Updated` is
    the one the ledger last fetched, and from `sale?ID=` otherwise. Nothing is written to the ledger:
    the sync's own poll decides what to re-fetch.
    """
    result = Cin7Read()
    since = datetime.combine(window.start, datetime.min.time(), tzinfo=UTC) - FORWARD_DATED_MARGIN
    for page in ctx.cin7.iter_sale_pages(since):
        listed: dict[str, Cin7SaleListRow] = {}
        for raw in page:
            try:
                row = Cin7SaleListRow.model_validate(raw)
            except ValidationError as exc:
                result.errors.append(f"unreadable saleList row {raw.get('SaleID')}: {exc.errors()[0]['msg']}")
                continue
            listed[row.sale_id] = row
        result.listed += len(listed)
        with ctx.sessions() as session:
            records = {
                record.sale_id: record
                for record in session.scalars(
                    select(SaleRecord).where(
                        SaleRecord.tenant_id == ctx.tenant_pk, SaleRecord.sale_id.in_(list(listed))
                    )
                )
            }
        for sale_id, row in listed.items():
            record = records.get(sale_id)
            detail: dict[str, Any] | None = None
            if (
                record is not None
                and record.snapshot is not None
                and record.state == SaleState.FETCHED
                and row.updated is not None
                and record.listed_updated == row.updated
            ):
                detail = dict(record.snapshot)
                result.from_snapshot += 1
            else:
                try:
                    detail = ctx.cin7.get_sale(sale_id)
                except SyncError as error:
                    result.errors.append(f"Cin7 sale {sale_id} ({row.order_number}) could not be read: {error.message}")
                    continue
                result.fetched += 1
            try:
                sale = Cin7Sale.model_validate(detail)
            except ValidationError as exc:
                result.errors.append(f"Cin7 sale {sale_id} does not parse: {exc.errors()[0]['msg']}")
                continue
            result.sales_read.add(sale.id)
            result.rows.extend(cin7_invoice_rows(sale))
    return result


def load_ledger_view(
    ctx: TenantContext,
    sale_ids: Collection[str],
    xero_ids: Collection[str],
    numbers: Collection[str],
    customer_ids: Collection[str] = (),
) -> LedgerView:
    """Ledger documents of these sales, or linked to these Xero invoices, or with these numbers; open
    dead letters; and the contact links of these customers (and of the documents' customers)."""
    view = LedgerView()
    docs: dict[int, SyncDocument] = {}
    with ctx.sessions() as session:
        base = select(SyncDocument).where(SyncDocument.tenant_id == ctx.tenant_pk, SyncDocument.kind == "invoice")
        for chunk in _chunks(sorted(sale_ids)):
            docs.update({d.id: d for d in session.scalars(base.where(SyncDocument.sale_id.in_(chunk)))})
        for chunk in _chunks(sorted(xero_ids)):
            docs.update({d.id: d for d in session.scalars(base.where(SyncDocument.xero_id.in_(chunk)))})
        for chunk in _chunks(sorted(numbers)):
            docs.update({d.id: d for d in session.scalars(base.where(SyncDocument.document_number.in_(chunk)))})
        letters: dict[int, int] = {}
        dead_sales: dict[str, int] = {}
        for letter in session.scalars(
            select(DeadLetter).where(DeadLetter.tenant_id == ctx.tenant_pk, DeadLetter.resolved_at.is_(None))
        ):
            if letter.document_id is not None:
                letters[letter.document_id] = letter.id
            elif letter.sale_id:
                dead_sales[letter.sale_id.lower()] = letter.id
        customers = {c.lower() for c in customer_ids} | {d.customer_id.lower() for d in docs.values() if d.customer_id}
        for chunk in _chunks(sorted(customers)):
            for link in session.scalars(
                select(ContactLink).where(
                    ContactLink.tenant_id == ctx.tenant_pk, ContactLink.cin7_customer_id.in_(chunk)
                )
            ):
                view.contact_links[link.cin7_customer_id.lower()] = link.xero_contact_id.lower()
    for doc in docs.values():
        view.documents[(doc.sale_id.lower(), doc.task_id.lower())] = LedgerDoc(
            doc_id=doc.id,
            sale_id=doc.sale_id.lower(),
            task_id=doc.task_id.lower(),
            number=doc.document_number,
            state=str(doc.state),
            xero_id=doc.xero_id.lower() if doc.xero_id else None,
            dead_letter_id=letters.get(doc.id),
        )
    view.dead_sales = dead_sales
    return view


def lookup_outside(
    ctx: TenantContext,
    cin7: Sequence[Cin7InvoiceRow],
    xero: Sequence[XeroInvoiceRow],
    ledger: LedgerView,
    *,
    yield_seconds: float,
) -> list[XeroInvoiceRow]:
    """Xero invoices outside the window for Cin7 invoices the window's read did not find."""
    seen_numbers = {normalise_number(row.number) for row in xero if row.number}
    seen_ids = {row.invoice_id for row in xero}
    numbers: list[str] = []
    ids: list[str] = []
    for invoice in cin7:
        doc = ledger.documents.get((invoice.sale_id, invoice.task_id))
        if doc is not None and doc.xero_id and doc.xero_id not in seen_ids:
            ids.append(doc.xero_id)
        if invoice.number and normalise_number(invoice.number) not in seen_numbers:
            numbers.append(invoice.number)
    found: dict[str, XeroInvoiceRow] = {}
    for values, key in ((sorted(set(numbers)), "numbers"), (sorted(set(ids)), "ids")):
        for chunk in _chunks(values, 40):
            yield_to_writers(ctx, yield_seconds)
            invoices = ctx.xero.get_invoices(numbers=chunk) if key == "numbers" else ctx.xero.get_invoices(ids=chunk)
            for data in invoices:
                if str(data.get("Type", "ACCREC")).upper() != "ACCREC":
                    continue
                row = xero_invoice_row(data)
                found[row.invoice_id] = row
    return [row for row in found.values() if row.invoice_id not in seen_ids]


# --- healing -------------------------------------------------------------------------------------------------


def heal(ctx: TenantContext, findings: Sequence[Finding]) -> list[str]:
    """Hand healable findings back to the sync; return the sale ids to fetch again.

    The ledger row goes back to `pending` with no source hash (so the next fetch re-maps it) and no
    synced hash (so the mapped payload is written even if it equals what we once sent). A missing
    invoice loses its Xero link and is marked uncertain, so the writer looks its number up in Xero
    before creating it. Rows that moved on since the comparison (a write started) are left alone.
    """
    sale_ids: list[str] = []
    with ctx.sessions() as session, session.begin():
        for finding in findings:
            if not finding.healable or finding.cin7 is None:
                continue
            if finding.doc_id is not None:
                doc = session.scalar(select(SyncDocument).where(SyncDocument.id == finding.doc_id).with_for_update())
                if doc is None or doc.state not in HEALABLE_STATES:
                    continue
                doc.state = DocumentState.PENDING
                doc.source_hash = None
                doc.synced_hash = None
                doc.attempts = 0
                doc.next_attempt_at = None
                doc.error_class = None
                doc.last_error = f"reconciliation: {finding.detail}"[:4000]
                doc.enqueued_at = utcnow()
                if finding.kind is Kind.MISSING_IN_XERO:
                    doc.xero_id = None
                    doc.xero_status = None
                    doc.xero_totals = None
                    doc.write_uncertain = True
                elif finding.xero:
                    doc.xero_status = finding.xero[0].status
            finding.healed = True
            if finding.cin7.sale_id not in sale_ids:
                sale_ids.append(finding.cin7.sale_id)
    if sale_ids:
        from pipeline.app import TaskName, send

        for sale_id in sale_ids:
            send(TaskName.FETCH_SALE, ctx.tenant_key, sale_id)
        log.info(
            "reconciliation healed %d findings: %d sales sent to fetch", sum(f.healed for f in findings), len(sale_ids)
        )
    return sale_ids


# --- the run -------------------------------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    """A finished run: its ledger row id, where its files are, and what it found."""

    run_id: int
    window: Window
    findings: list[Finding]
    summary: dict[str, Any]
    report_dir: Path
    files: dict[str, Path]
    healed_sales: list[str] = field(default_factory=list)

    @property
    def report_html(self) -> Path:
        """The bookkeeper's page."""
        return self.files["html"]


def _alert(ctx: TenantContext, result: ReconcileResult) -> None:
    total = int(result.summary["total"])
    if total == 0:
        return
    try:
        from pipeline.operations.alerts import note_problem
    except ImportError:
        log.warning("pipeline.operations.alerts is not available: no alert for %d discrepancies", total)
        return
    counts = ", ".join(
        f"{count} {KIND_LABELS[Kind(kind)].lower()}" for kind, count in result.summary["counts"].items() if count
    )
    message = (
        f"{total} discrepancies between Cin7 and Xero for invoices dated {result.window.start.isoformat()} to "
        f"{result.window.last.isoformat()} ({counts}); report at {result.report_html}"
    )
    with ctx.sessions() as session, session.begin():
        note_problem(session, ctx.tenant_pk, "reconciliation", message)


def run_reconciliation(
    ctx: TenantContext,
    *,
    since: date | None = None,
    until: date | None = None,
    heal_findings: bool = False,
    out_dir: Path | None = None,
    yield_seconds: float = 30.0,
    today: date | None = None,
) -> ReconcileResult:
    """Compare Cin7 and Xero over the window, record the run and its report, alert, and heal if asked."""
    from pipeline.reconcile.report import build_report, write_report_files

    window = resolve_window(since, until, ctx.settings.reconcile_lookback_days, today or utcnow().date())
    with ctx.sessions() as session, session.begin():
        run = ReconciliationRun(
            tenant_id=ctx.tenant_pk,
            window_from=datetime.combine(window.start, datetime.min.time(), tzinfo=UTC),
            window_until=datetime.combine(window.end, datetime.min.time(), tzinfo=UTC),
            started_at=utcnow(),
            healed=heal_findings,
        )
        session.add(run)
        session.flush()
        run_id = run.id
    log.info("reconciliation %d: invoices dated %s..%s", run_id, window.start, window.last)

    xero_rows = read_xero_window(ctx, window, yield_seconds=yield_seconds)
    cin7_read = read_cin7_window(ctx, window)
    compared, elsewhere = split_cin7(cin7_read.rows, window.start, window.end)
    shapes = {number_shape(row.number) for row in cin7_read.rows if row.number}
    ledger = load_ledger_view(
        ctx,
        cin7_read.sales_read,
        [row.invoice_id for row in xero_rows],
        [row.number for row in xero_rows if row.number],
        [row.customer_id for row in compared if row.customer_id],
    )
    # Ledger documents of sales this run did not read still make their numbers known to Cin7.
    unread_numbers = {
        normalise_number(doc.number)
        for doc in ledger.documents.values()
        if doc.sale_id not in cin7_read.sales_read and doc.number
    }
    unread_tasks = {
        (doc.sale_id, doc.task_id) for doc in ledger.documents.values() if doc.sale_id not in cin7_read.sales_read
    }
    elsewhere = Cin7Elsewhere(elsewhere.numbers | unread_numbers, elsewhere.tasks | unread_tasks)
    outside = lookup_outside(ctx, compared, xero_rows, ledger, yield_seconds=yield_seconds)
    findings = compare(compared, xero_rows, ledger, xero_outside=outside, cin7_elsewhere=elsewhere, shapes=shapes)
    findings.sort(key=lambda f: (list(Kind).index(f.kind), f.number, f.cin7.sale_id if f.cin7 else ""))
    healed_sales = heal(ctx, findings) if heal_findings else []

    summary = summarise(findings)
    summary.update(
        {
            "window_from": window.start.isoformat(),
            "window_until": window.last.isoformat(),
            "cin7_invoices": len(compared),
            "xero_invoices": len(xero_rows),
            "xero_outside_window": len(outside),
            "cin7_sales_listed": cin7_read.listed,
            "cin7_sales_fetched": cin7_read.fetched,
            "cin7_sales_from_ledger": cin7_read.from_snapshot,
            "errors": cin7_read.errors,
            "heal": heal_findings,
            "healed_sales": len(healed_sales),
        }
    )
    report_dir = out_dir or (ctx.settings.report_dir / str(run_id))
    finished = utcnow()
    report = build_report(
        run_id=run_id,
        tenant=ctx.tenant_key,
        window_from=window.start,
        window_until=window.last,
        generated_at=finished,
        summary=summary,
        findings=[finding.as_json() for finding in findings],
    )
    files = write_report_files(report, report_dir)
    with ctx.sessions() as session, session.begin():
        stored = session.get(ReconciliationRun, run_id)
        assert stored is not None
        stored.finished_at = finished
        stored.summary = summary
        stored.findings = report["findings"]
        stored.report_dir = str(report_dir.resolve())
    result = ReconcileResult(run_id, window, findings, summary, report_dir, files, healed_sales)
    _alert(ctx, result)
    log.info("reconciliation %d: %d discrepancies, report at %s", run_id, summary["total"], files["html"])
    return result

"""The pure comparison of Cin7's invoices (or credit notes) with Xero's: findings and their summary, no I/O.

Invoices and credit notes are compared by the same rules, one document kind per `compare` call; the
balance figures (paid, credited, due) are compared in `pipeline.reconcile.balance`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

from mappings import Cin7Totals, totals_in_xero
from pipeline.ledger.models import (
    DocumentState,
)
from pipeline.reconcile.balance import balance_finding
from pipeline.reconcile.rows import (
    CENT,
    CIN7_COMPARED,
    CIN7_KNOWN,
    CIN7_LIVE,
    DOCUMENT_NOUNS,
    HEALABLE_STATES,
    IN_FLIGHT,
    INVOICE,
    ROUNDING_TOLERANCE,
    Cin7Elsewhere,
    Cin7InvoiceRow,
    Finding,
    Kind,
    LedgerDoc,
    LedgerView,
    XeroInvoiceRow,
    normalise_number,
    number_shape,
)


def in_window(day: date | None, start: date, end: date) -> bool:
    """`start <= day < end` (end exclusive)."""
    return day is not None and start <= day < end


# Credit notes compare their drafts too: a Cin7 draft credit note must not be live in Xero.
CIN7_CREDIT_NOTES_COMPARED = CIN7_COMPARED | {"DRAFT"}


def unknown_statuses(rows: Iterable[Cin7InvoiceRow], start: date, end: date) -> list[Finding]:
    """Cin7 invoices (or credit notes) dated in the window whose status the sync does not know (so it sent nothing)."""
    return [
        Finding(
            Kind.UNKNOWN_STATUS,
            f"Cin7 {DOCUMENT_NOUNS.get(row.document, row.document)} {row.number} has status {row.status!r}, "
            "which the sync does not know: nothing was sent to Xero for it",
            cin7=row,
        )
        for row in rows
        if row.status not in CIN7_KNOWN and in_window(row.date, start, end)
    ]


def split_cin7(
    rows: Iterable[Cin7InvoiceRow], start: date, end: date, *, statuses: Collection[str] = CIN7_COMPARED
) -> tuple[list[Cin7InvoiceRow], Cin7Elsewhere]:
    """Compared documents (`statuses`, default AUTHORISED/PAID/VOIDED, dated in the window) and the rest,
    which only make numbers known. Credit notes pass `CIN7_CREDIT_NOTES_COMPARED`.
    """
    compared: list[Cin7InvoiceRow] = []
    numbers: set[str] = set()
    tasks: set[tuple[str, str]] = set()
    for row in rows:
        if row.status in statuses and in_window(row.date, start, end):
            compared.append(row)
        else:
            if row.number:
                numbers.add(normalise_number(row.number))
            tasks.add((row.sale_id, row.task_id))
    return compared, Cin7Elsewhere(frozenset(numbers), frozenset(tasks))


def total_differences(cin7: Cin7InvoiceRow, xero: XeroInvoiceRow) -> dict[str, Decimal]:
    """Xero minus what it must show for Cin7's invoice (`mappings.totals_in_xero`), for each that differs."""
    differences = {}
    want = totals_in_xero(Cin7Totals(subtotal=cin7.subtotal, tax=cin7.tax, total=cin7.total))
    for name, ours, theirs in (
        ("SubTotal", want.subtotal, xero.subtotal),
        ("TotalTax", want.total_tax, xero.tax),
        ("Total", want.total, xero.total),
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
    if doc is not None and doc.state == DocumentState.LOCKED.value:
        return "locked: dated on or before Xero's lock date, never written"
    if doc is not None and doc.state == DocumentState.IGNORED.value:
        return "left to the migration (dated before SYNC_START_DATE)"
    return None


def _healable(doc: LedgerDoc | None, known: str | None) -> bool:
    """The sync can fix it: nothing dead or in flight, and the ledger believes the row is done."""
    if known is not None:
        return False
    return doc is None or doc.state in HEALABLE_STATES


@dataclass
class _XeroIndex:
    """Xero's invoices (or credit notes) looked up every way the comparison needs."""

    noun: str
    by_id: dict[str, XeroInvoiceRow]
    by_number: dict[str, list[XeroInvoiceRow]]
    linked: dict[str, LedgerDoc]
    cin7_by_number: dict[str, Cin7InvoiceRow]
    known_shapes: set[str]
    elsewhere: Cin7Elsewhere

    def ours(self, number: str, rows: Sequence[XeroInvoiceRow]) -> bool:
        """The number is one of ours (Xero's own numbering is not our business)."""
        return (
            number in self.cin7_by_number
            or number in self.elsewhere.numbers
            or number_shape(rows[0].number) in self.known_shapes
            or any(row.invoice_id in self.linked for row in rows)
        )


def compare(
    cin7: Sequence[Cin7InvoiceRow],
    xero: Sequence[XeroInvoiceRow],
    ledger: LedgerView,
    *,
    xero_outside: Sequence[XeroInvoiceRow] = (),
    cin7_elsewhere: Cin7Elsewhere | None = None,
    shapes: Collection[str] | None = None,
    document: str = INVOICE,
) -> list[Finding]:
    """Every discrepancy between Cin7's invoices in the window and Xero's (or, with `document`
    "credit_note", between credit notes: then `cin7` also holds DRAFT ones, which must not be in Xero).

    `cin7`: Cin7 invoices dated in the window (AUTHORISED, PAID, VOIDED). `xero`: Xero ACCREC invoices
    dated in the window. `xero_outside`: Xero invoices found for those Cin7 invoices outside the window
    (by number or ledger link); they are compared but never reported as unknown. `cin7_elsewhere`: Cin7
    invoices not compared (other dates, drafts), so that a Xero invoice carrying one is not "unknown".
    `shapes`: shapes of Cin7's invoice numbers (default: those of `cin7`) - a Xero invoice whose number
    has one of them, or which the ledger links, carries our reference.
    """
    by_id: dict[str, XeroInvoiceRow] = {}
    for row in [*xero, *xero_outside]:
        by_id.setdefault(row.invoice_id, row)
    by_number: dict[str, list[XeroInvoiceRow]] = {}
    for row in by_id.values():
        if row.number:
            by_number.setdefault(normalise_number(row.number), []).append(row)
    index = _XeroIndex(
        noun=DOCUMENT_NOUNS.get(document, document),
        by_id=by_id,
        by_number=by_number,
        linked=ledger.by_xero_id(),
        cin7_by_number={normalise_number(row.number): row for row in cin7 if row.number},
        known_shapes=set(shapes) if shapes is not None else {number_shape(row.number) for row in cin7 if row.number},
        elsewhere=cin7_elsewhere or Cin7Elsewhere(),
    )
    findings, duplicate_numbers = _duplicate_numbers(index, ledger)
    claimed: set[str] = set()
    for invoice in cin7:
        findings.extend(_compare_invoice(invoice, index, ledger, duplicate_numbers, claimed))
    findings.extend(_unknown_in_xero(cin7, xero, index, claimed))
    return findings


def _duplicate_numbers(index: _XeroIndex, ledger: LedgerView) -> tuple[list[Finding], set[str]]:
    """The same number of ours twice in Xero."""
    findings: list[Finding] = []
    duplicates: set[str] = set()
    for number, rows in index.by_number.items():
        if len(rows) < 2 or not index.ours(number, rows):
            continue
        duplicates.add(number)
        owner = index.cin7_by_number.get(number)
        doc = ledger.documents.get((owner.sale_id, owner.task_id)) if owner else None
        findings.append(
            Finding(
                Kind.DUPLICATE,
                f"{index.noun} number {rows[0].number} is used by {len(rows)} Xero {index.noun}s",
                cin7=owner,
                xero=tuple(sorted(rows, key=lambda r: r.invoice_id)),
                doc_id=doc.doc_id if doc else None,
            )
        )
    return findings, duplicates


def _compare_invoice(
    invoice: Cin7InvoiceRow, index: _XeroIndex, ledger: LedgerView, duplicate_numbers: set[str], claimed: set[str]
) -> list[Finding]:
    doc = ledger.documents.get((invoice.sale_id, invoice.task_id))
    number = normalise_number(invoice.number)
    candidates: dict[str, XeroInvoiceRow] = {row.invoice_id: row for row in index.by_number.get(number, [])}
    linked_row = index.by_id.get(doc.xero_id.lower()) if doc is not None and doc.xero_id else None
    if linked_row is not None:
        candidates[linked_row.invoice_id] = linked_row
    claimed.update(candidates)
    doc_id = doc.doc_id if doc else None
    findings: list[Finding] = []
    if len(candidates) > 1 and number not in duplicate_numbers:
        findings.append(
            Finding(
                Kind.DUPLICATE,
                f"{len(candidates)} Xero {index.noun}s belong to Cin7 {index.noun} {invoice.number} "
                "(one by its number, one by the ledger's link)",
                cin7=invoice,
                xero=tuple(sorted(candidates.values(), key=lambda r: r.invoice_id)),
                doc_id=doc_id,
            )
        )
    # The one to compare: the ledger's link, else a live one with the number.
    primary = linked_row or next(iter(sorted(candidates.values(), key=lambda r: (not r.live, r.invoice_id))), None)
    known = _known(doc, invoice.sale_id, ledger)
    if primary is not None:
        return [*findings, *_compare_pair(invoice, primary, doc, known, ledger, index.noun)]
    if invoice.status in CIN7_LIVE:
        findings.append(missing_in_xero(invoice, doc, known, index.noun))
    return findings


def missing_in_xero(
    document: Cin7InvoiceRow, doc: LedgerDoc | None, known: str | None, noun: str, whose: str = ""
) -> Finding:
    """A live Cin7 document Xero has nothing for, with what the ledger says of it."""
    return Finding(
        Kind.MISSING_IN_XERO,
        f"Cin7 {noun} {document.number}{whose} ({document.status}) has no Xero {noun}"
        + (f"; the ledger says {doc.state}" if doc is not None else "; the ledger has never seen it"),
        cin7=document,
        known=known,
        healable=_healable(doc, known),
        doc_id=doc.doc_id if doc else None,
    )


def _unknown_in_xero(
    cin7: Sequence[Cin7InvoiceRow], xero: Sequence[XeroInvoiceRow], index: _XeroIndex, claimed: set[str]
) -> list[Finding]:
    """Xero invoices (credit notes) carrying our reference that no Cin7 one accounts for."""
    all_cin7_numbers = set(index.cin7_by_number) | set(index.elsewhere.numbers)
    all_cin7_tasks = {(row.sale_id, row.task_id) for row in cin7} | set(index.elsewhere.tasks)
    findings: list[Finding] = []
    for row in xero:
        if row.invoice_id in claimed or not row.live:
            continue
        doc = index.linked.get(row.invoice_id)
        if doc is not None and (doc.sale_id, doc.task_id) in all_cin7_tasks:
            continue
        if row.number and normalise_number(row.number) in all_cin7_numbers:
            continue
        ours = doc is not None or (bool(row.number) and number_shape(row.number) in index.known_shapes)
        if not ours:
            continue
        reason = f"the ledger links it to a Cin7 {index.noun} that no longer exists" if doc else "it has a Cin7 number"
        findings.append(
            Finding(
                Kind.UNKNOWN_IN_XERO,
                f"Xero {index.noun} {row.number or row.invoice_id} ({row.status}) is unknown to Cin7; {reason}",
                xero=(row,),
                doc_id=doc.doc_id if doc else None,
            )
        )
    return findings


def _used(xero: XeroInvoiceRow) -> str:
    """How a Xero document came to be one the sync must not change, in the words of its kind."""
    if xero.document == INVOICE:
        return f"paid in Xero ({xero.status}, {xero.amount_paid} paid, {xero.amount_credited} credited)"
    return f"used in Xero ({xero.status}, {xero.amount_credited} allocated, {xero.amount_paid} refunded)"


def _compare_pair(
    invoice: Cin7InvoiceRow,
    xero: XeroInvoiceRow,
    doc: LedgerDoc | None,
    known: str | None,
    ledger: LedgerView,
    noun: str,
) -> list[Finding]:
    findings: list[Finding] = []
    doc_id = doc.doc_id if doc else None
    # Every finding of the pair names both sides, the ledger row and what the ledger knows of it.
    found = partial(Finding, cin7=invoice, xero=(xero,), doc_id=doc_id, known=known)
    differences = total_differences(invoice, xero)
    conflict = doc is not None and doc.state == DocumentState.CONFLICT.value
    # VOIDED (or, for a credit note, DRAFT) in Cin7: nothing live may stand for it in Xero.
    if invoice.status not in CIN7_LIVE:
        if xero.live:
            paid_note = " and paid/credited there" if xero.paid else ""
            findings.append(
                found(
                    Kind.STATUS,
                    f"{invoice.status.lower()} in Cin7 but {xero.status} in Xero{paid_note}",
                    healable=not xero.paid and not conflict and _healable(doc, known),
                )
            )
        return findings
    if not xero.live:
        findings.append(
            found(
                Kind.STATUS,
                f"{invoice.status} in Cin7 but {xero.status} in Xero",
                difference=differences,
            )
        )
        return findings
    if conflict:
        # The sync itself saw Cin7 change a document Xero had already paid (or allocated) and stopped.
        what = f"totals differ ({_fmt_differences(differences)})" if differences else "changed"
        findings.append(
            found(
                Kind.STATUS,
                f"{_used(xero)} but {what} in Cin7; the sync does not change a paid or credited {noun}",
                difference=differences,
                known="ledger conflict",
            )
        )
    elif differences:
        rounding = all(abs(value) <= ROUNDING_TOLERANCE for value in differences.values())
        # Now that the sync pays invoices and allocates credit notes, being paid is normal: the totals
        # still differ as totals, but the sync may not rewrite the document, so it is never healable.
        paid_note = f"; {_used(xero)}, which the sync does not change" if xero.paid else ""
        findings.append(
            found(
                Kind.ROUNDING if rounding else Kind.MISMATCH,
                f"{'rounding' if rounding else 'totals'} differ: {_fmt_differences(differences)} (Xero - Cin7)"
                + paid_note,
                difference=differences,
                healable=not rounding and not xero.paid and doc is not None and doc.state == DocumentState.SYNCED.value,
            )
        )
    if invoice.date is not None and xero.date is not None and invoice.date != xero.date:
        findings.append(
            found(
                Kind.DATE,
                f"dated {invoice.date.isoformat()} in Cin7 but {xero.date.isoformat()} in Xero",
                healable=not xero.paid and doc is not None and doc.state == DocumentState.SYNCED.value,
            )
        )
    link = ledger.contact_links.get((invoice.customer_id or "").lower())
    if link is not None and xero.contact_id is not None and link.lower() != xero.contact_id:
        findings.append(
            found(
                Kind.CONTACT,
                f"Xero {noun} is on contact {xero.contact_name or xero.contact_id} ({xero.contact_id}); "
                f"the ledger links Cin7 customer {invoice.customer} to Xero contact {link}",
            )
        )
    balance = balance_finding(invoice, xero, differences, noun=noun, known=known, doc_id=doc_id)
    if balance is not None:
        findings.append(balance)
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

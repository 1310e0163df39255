"""Hand-built reconciliation data shared by the comparison and report tests.

Cin7 invoice rows, the Xero invoices a sync made of them, the ledger that links the two, the findings of a
run that has one of every kind, and the report document built from findings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pipeline.reconcile.compare import compare, summarise, unknown_statuses
from pipeline.reconcile.report import build_report
from pipeline.reconcile.rows import CREDIT_NOTE, Cin7InvoiceRow, Finding, LedgerDoc, LedgerView, XeroInvoiceRow

CUSTOMER = "c0000000-0000-0000-0000-000000000001"
CONTACT = "x0000000-0000-0000-0000-00000000000a"
HOSTILE_NAME = "<img src=x onerror=\"document.title='pwned'\"> O'Brien & Sons"
#: What a run that found `every_kind_findings()` read of each side.
EVERY_KIND_COUNTS = {"cin7_invoices": 9, "xero_invoices": 9, "cin7_credit_notes": 2, "xero_credit_notes": 1}


def cin7_row(
    n: int, *, status: str = "AUTHORISED", total: str = "110.00", day: int = 10, **changes: Any
) -> Cin7InvoiceRow:
    """Cin7 invoice INV-<n> of May 2024 in AUD, with 10% GST in `total`; `changes` replace any other field."""
    amount = Decimal(total)
    tax = (amount / 11).quantize(Decimal("0.01"))
    row = Cin7InvoiceRow(
        sale_id=f"sale-{n}",
        task_id=f"task-{n}",
        number=f"INV-{n:05d}",
        date=date(2024, 5, day),
        customer="O'Brien & Sons",
        customer_id=CUSTOMER,
        status=status,
        subtotal=amount - tax,
        tax=tax,
        total=amount,
        currency="AUD",
    )
    return replace(row, **changes)


def xero_for(row: Cin7InvoiceRow, **changes: Any) -> XeroInvoiceRow:
    """The AUTHORISED Xero invoice a sync made of `row` (its number, date and totals); `changes` replace fields."""
    base = XeroInvoiceRow(
        invoice_id=f"xero-{row.number.lower()}",
        number=row.number,
        date=row.date,
        status="AUTHORISED",
        contact_id=CONTACT,
        contact_name="O'Brien & Sons",
        subtotal=row.subtotal,
        tax=row.tax,
        total=row.total,
    )
    return replace(base, **changes)


def ledger_for(
    rows: Sequence[Cin7InvoiceRow], *, state: str = "synced", overrides: Mapping[str, LedgerDoc] | None = None
) -> LedgerView:
    """A ledger linking CUSTOMER to CONTACT and each row (by number, unless `overrides` has it) to its Xero twin."""
    overrides = overrides or {}
    view = LedgerView(contact_links={CUSTOMER: CONTACT})
    for index, row in enumerate(rows, start=1):
        view.documents[(row.sale_id, row.task_id)] = overrides.get(
            row.number,
            LedgerDoc(
                doc_id=index,
                sale_id=row.sale_id,
                task_id=row.task_id,
                number=row.number,
                state=state,
                xero_id=f"xero-{row.number.lower()}",
            ),
        )
    return view


def may_report(findings: Sequence[Finding], *, run_id: int, counts: Mapping[str, int]) -> dict[str, Any]:
    """The report of a run over May 2024 that read `counts` of each side, found `findings` and met no error."""
    return build_report(
        run_id=run_id,
        tenant="default",
        window_from=date(2024, 5, 1),
        window_until=date(2024, 5, 31),
        generated_at=datetime(2024, 6, 1, 3, 15, tzinfo=UTC),
        summary=summarise(list(findings)) | {**counts, "errors": []},
        findings=[f.as_json() for f in findings],
    )


def _cin7(n: int, *, status: str = "AUTHORISED") -> Cin7InvoiceRow:
    # Real-looking IDs and a customer of its own each, so that the report's links and rows can be told apart.
    return cin7_row(
        n,
        status=status,
        day=1 + n % 28,
        sale_id=f"5a1e0000-0000-0000-0000-{n:012d}",
        task_id=f"7a5c0000-0000-0000-0000-{n:012d}",
        customer=HOSTILE_NAME if n == 1 else f"Customer {n}",
        customer_id="c1",
    )


def _xero(row: Cin7InvoiceRow, **changes: Any) -> XeroInvoiceRow:
    invoice_id = f"1e7o0000-0000-0000-0000-{row.number[-5:]:0>12}"
    return xero_for(row, **{"invoice_id": invoice_id, "contact_id": "x1", "contact_name": row.customer, **changes})


def every_kind_findings() -> list[Finding]:
    """Findings of every kind, on invoices and credit notes, one customer named to break HTML (HOSTILE_NAME)."""
    rows = [_cin7(n) for n in range(1, 9)] + [_cin7(10)]
    rows[4] = _cin7(5, status="VOIDED")
    ledger = LedgerView(contact_links={"c1": "x1"})
    for index, row in enumerate(rows, start=1):
        ledger.documents[(row.sale_id, row.task_id)] = LedgerDoc(
            index, row.sale_id, row.task_id, row.number, "synced", _xero(row).invoice_id
        )
    dead = rows[7]
    ledger.documents[(dead.sale_id, dead.task_id)] = LedgerDoc(
        8, dead.sale_id, dead.task_id, dead.number, "dead", None, 31
    )
    xero = [
        _xero(rows[1], total=Decimal("120.00"), subtotal=Decimal("110.00")),
        _xero(rows[2], total=Decimal("110.03")),
        _xero(rows[3]),
        replace(_xero(rows[3]), invoice_id="1e7o0000-0000-0000-0000-dup000000004"),
        _xero(rows[4]),
        _xero(rows[5], contact_id="x2", contact_name="Someone Else"),
        _xero(rows[6], date=date(2024, 5, 30)),
        _xero(rows[8], amount_paid=Decimal("50.00")),  # paid in Xero, not in Cin7
        _xero(_cin7(77)),
    ]
    credited = _cin7(9, status="CREDITED")
    # A credit note (with the hostile customer) missing in Xero, and one whose refund Xero lacks.
    note = replace(_cin7(1), number="CR-00001", task_id="c4ed0000-0000-0000-0000-000000000001", document=CREDIT_NOTE)
    refunded = replace(
        _cin7(2), number="CR-00002", task_id="c4ed0000-0000-0000-0000-000000000002", document=CREDIT_NOTE
    )
    refunded = replace(refunded, paid=refunded.total)
    notes = compare(
        [note, refunded], [replace(_xero(refunded), document=CREDIT_NOTE)], LedgerView(), document=CREDIT_NOTE
    )
    return [
        *compare(rows, xero, ledger),
        *notes,
        *unknown_statuses([credited], date(2024, 1, 1), date(2025, 1, 1)),
    ]

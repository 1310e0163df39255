"""Migration plan files: the test run of a cutover as plan.html, plan.csv and plan.json.

The page follows the reconciliation report (`pipeline.reconcile.report`) and reuses its escaping,
amount cells, links and CSS so the two pages a bookkeeper reads look and behave alike: self-contained
(inline CSS, no scripts, no external assets), every value escaped, the summary on top and then one row
per document. The markup is also well-formed XML (quoted attributes, closed tags, self-closed void
elements) so a test, or a tool downstream, can parse it strictly.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

from pipeline.migration.plan_rows import FATE_LABELS, Fate, MigrationPlan, PlanCost, PlanRow

# Private helpers of the reconciliation report, imported rather than copied so a fix to the escaping
# or the CSS reaches both pages.
from pipeline.reconcile.report import _CSS, _amount, _cell, _e, _link
from pipeline.reconcile.rows import (
    CIN7_PURCHASE_LINK,
    CIN7_SALE_LINK,
    XERO_BILL_LINK,
    XERO_CREDIT_NOTE_LINK,
    XERO_INVOICE_LINK,
    XERO_SUPPLIER_CREDIT_NOTE_LINK,
)

PLAN_FILES = {"html": "plan.html", "csv": "plan.csv", "json": "plan.json"}

CSV_COLUMNS = (
    "kind",
    "number",
    "date",
    "customer",
    "currency",
    "total",
    "fate",
    "reason",
    "sale_id",
    "task_id",
    "xero_id",
)

# Kinds in display order; the per-kind table always lists these (zeros included) so two plans compare
# at a glance, and any other kind a newer planner emits is appended rather than dropped.
_KIND_LABELS = {
    "invoice": "Invoice",
    "credit_note": "Credit note",
    "payment": "Payment",
    "refund": "Refund",
    "allocation": "Allocation",
}
# A purchase's kinds, listed after the sale's when the plan has any (`SYNC_PURCHASES`).
_PURCHASE_KIND_LABELS = {
    "bill": "Bill",
    "supplier_credit_note": "Supplier credit note",
    "bill_payment": "Bill payment",
    "supplier_refund": "Supplier refund",
    "supplier_allocation": "Supplier allocation",
}

# Only these document kinds have a Xero page we can address by id; payments, refunds and allocations
# live on their invoice's or credit note's page.
_XERO_LINKS = {
    "invoice": XERO_INVOICE_LINK,
    "credit_note": XERO_CREDIT_NOTE_LINK,
    "bill": XERO_BILL_LINK,
    "supplier_credit_note": XERO_SUPPLIER_CREDIT_NOTE_LINK,
}
# Only an adopted or conflicting row points at an existing Xero document worth opening.
_LINKED_FATES = frozenset({Fate.ADOPT, Fate.CONFLICT})

# Added to the reconciliation CSS: fate pills, rows and cards, so what stops a cutover stands out. Its
# class names avoid the reconciliation page's (`.document`, `.kind` are styled there for other uses).
_PLAN_CSS = """
.fate { display: inline-block; border-radius: 10px; padding: 1px 8px; font-size: 12px; white-space: nowrap;
        background: #e4e7eb; }
.fate.fate-create { background: #e3f9e5; color: #0e5814; }
.fate.fate-adopt { background: #e0e8f9; color: #19216c; }
.fate.fate-synced, .fate.fate-skipped { background: #f0f4f8; color: #52606d; }
.fate.fate-conflict, .fate.fate-blocked { background: #ffe3e3; color: #8a041a; font-weight: 600; }
.fate.fate-locked { background: #fff3c4; color: #8d2b0b; font-weight: 600; }
tr.fate-conflict td, tr.fate-blocked td { background: #fff5f5; }
tr.fate-locked td { background: #fffbea; }
.card.fate-conflict, .card.fate-blocked { border: 2px solid #e66a6a; }
.card.fate-locked { border: 2px solid #f0b429; }
.card.zero { border: 1px solid #d9e2ec; }
table.by-kind { width: auto; }
dl.cost { display: grid; grid-template-columns: max-content auto; gap: 4px 16px; margin: 0 0 8px; }
dl.cost dt { color: #52606d; }
dl.cost dd { margin: 0; font-variant-numeric: tabular-nums; }
"""


# --- ordering -------------------------------------------------------------------------------------------

_DIGITS = re.compile(r"(\d+)")


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    """A number's sort key with its digit runs compared as integers: INV-9 before INV-10."""
    return tuple((1, int(part), "") if part.isdigit() else (0, 0, part) for part in _DIGITS.split(text) if part)


def sorted_rows(rows: Iterable[PlanRow]) -> list[PlanRow]:
    """Documents by date then number (undated last); kind and ids break ties so the order is stable."""
    return sorted(
        rows,
        key=lambda row: (
            row.date is None,
            row.date or date.min,
            _natural(row.number),
            row.kind,
            row.sale_id,
            row.task_id,
        ),
    )


def _kinds(plan: MigrationPlan) -> list[str]:
    present = {row.kind for row in plan.rows}
    purchases = [kind for kind in _PURCHASE_KIND_LABELS if kind in present]
    return list(_KIND_LABELS) + purchases + sorted(present - set(_KIND_LABELS) - set(_PURCHASE_KIND_LABELS))


def _label(kind: str) -> str:
    return _KIND_LABELS.get(kind) or _PURCHASE_KIND_LABELS.get(kind) or kind


# --- CSV ------------------------------------------------------------------------------------------------


def csv_rows(plan: MigrationPlan) -> list[dict[str, str]]:
    """One row per document, in the page's order; free text is made formula-safe for spreadsheets."""
    return [
        {
            "kind": row.kind,
            "number": _cell(row.number),
            "date": row.date.isoformat() if row.date else "",
            "customer": _cell(row.customer),
            "currency": row.currency or "",
            # Exact decimal strings, never floats; a negative amount is a number, not a formula.
            "total": "" if row.total is None else str(row.total),
            "fate": row.fate.value,
            "reason": _cell(row.reason),
            "sale_id": row.sale_id,
            "task_id": row.task_id,
            "xero_id": row.xero_id or "",
        }
        for row in sorted_rows(plan.rows)
    ]


def render_csv(plan: MigrationPlan) -> str:
    """The documents as CSV with a header row (`CSV_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(csv_rows(plan))
    return buffer.getvalue()


def render_json(plan: MigrationPlan) -> str:
    """plan.json: `plan.as_json()`, non-ASCII kept readable."""
    return json.dumps(plan.as_json(), indent=2, ensure_ascii=False) + "\n"


# --- HTML -----------------------------------------------------------------------------------------------


def _when(moment: datetime) -> str:
    """A timestamp as a person reads it; an aware one in UTC, a naive one as given (its zone unknown)."""
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _counts_html(plan: MigrationPlan) -> str:
    counts = plan.counts()
    cards = [
        f'<div class="card total" data-fate="total"><span class="count" id="count-total">{len(plan.rows)}</span>'
        '<span class="what">documents in the window</span></div>'
    ]
    for fate in Fate:
        count = counts[fate.value]
        zero = " zero" if count == 0 else ""
        cards.append(
            f'<div class="card fate-{_e(fate.value)}{zero}" data-fate="{_e(fate.value)}">'
            f'<span class="count" id="count-{_e(fate.value)}">{count}</span>'
            f'<span class="what">{_e(FATE_LABELS[fate])}</span></div>'
        )
    return f'<section class="summary" id="summary">{"".join(cards)}</section>'


def _by_kind_html(plan: MigrationPlan) -> str:
    table = plan.counts_by_kind()
    head = "".join(f'<th title="{_e(FATE_LABELS[fate])}">{_e(fate.value)}</th>' for fate in Fate)
    body = []
    for kind in _kinds(plan):
        counts = table.get(kind, {})
        cells = "".join(
            f'<td class="amount" data-kind="{_e(kind)}" data-fate="{_e(fate.value)}">{counts.get(fate.value, 0)}</td>'
            for fate in Fate
        )
        total = sum(counts.values())
        body.append(
            f'<tr data-kind="{_e(kind)}"><th>{_e(_label(kind))}</th>{cells}'
            f'<td class="amount" data-kind="{_e(kind)}" data-fate="total">{total}</td></tr>'
        )
    return (
        '<h2>By kind</h2><table class="by-kind" id="by-kind">'
        f"<thead><tr><th>Kind</th>{head}<th>total</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _cost_html(plan: MigrationPlan) -> str:
    cost: PlanCost = plan.cost
    lock = plan.lock_date.isoformat() if plan.lock_date else "none set"
    facts = [
        ("lock-date", "Xero lock date", lock),
        (
            "cin7-calls",
            "Cin7 calls",
            f"{cost.cin7_calls} ({cost.cin7_list_calls} list pages + {cost.cin7_detail_calls} details)",
        ),
        (
            "xero-calls",
            "Xero calls",
            f"{cost.xero_calls} ({cost.xero_read_calls} reads + {cost.xero_write_calls} writes)",
        ),
        ("hours", "Wall time", f"{cost.hours:.2f} hours"),
        ("xero-days", "Xero's daily budget", f"{cost.xero_days:.2f} days"),
        (
            "limits",
            "At the limits",
            f"Cin7 {cost.cin7_calls_per_minute} calls/minute · Xero {cost.xero_calls_per_minute} calls/minute, "
            f"{cost.xero_calls_per_day} calls/day",
        ),
    ]
    items = "".join(f'<dt>{_e(label)}</dt><dd id="{_e(key)}">{_e(value)}</dd>' for key, label, value in facts)
    return f'<h2>Lock date and cost</h2><dl class="cost" id="cost">{items}</dl>'


def _errors_html(plan: MigrationPlan) -> str:
    if not plan.errors:
        return ""
    items = "".join(f"<li>{_e(error)}</li>" for error in plan.errors)
    return (
        "<h2>Errors</h2><p>Some Cin7 documents could not be read; they are not in the plan:</p>"
        f'<ul class="errors" id="errors">{items}</ul>'
    )


def _xero_cell(row: PlanRow) -> str:
    template = _XERO_LINKS.get(row.kind)
    if row.fate in _LINKED_FATES and row.xero_id and template:
        return f'<td class="nowrap">{_link(template.format(id=row.xero_id), "open in Xero")}</td>'
    return "<td></td>"


def _row_html(index: int, row: PlanRow) -> str:
    fate = row.fate.value
    cin7 = CIN7_PURCHASE_LINK if row.kind in _PURCHASE_KIND_LABELS else CIN7_SALE_LINK
    number = _link(cin7.format(id=row.sale_id) if row.sale_id else "", row.number or "(no number)")
    return (
        f'<tr class="plan-row fate-{_e(fate)}" id="document-{index}" data-kind="{_e(row.kind)}" '
        f'data-number="{_e(row.number)}" data-fate="{_e(fate)}" data-sale-id="{_e(row.sale_id)}" '
        f'data-task-id="{_e(row.task_id)}">'
        f'<td class="nowrap">{_e(_label(row.kind))}</td>'
        f'<td class="nowrap">{number}</td>'
        f'<td class="nowrap">{_e(row.date.isoformat() if row.date else "")}</td>'
        f"<td>{_e(row.customer)}</td>"
        f'<td class="nowrap">{_e(row.currency)}</td>'
        f"{_amount(row.total)}"
        f'<td><span class="fate fate-{_e(fate)}" title="{_e(FATE_LABELS[row.fate])}">{_e(fate)}</span></td>'
        f'<td class="note">{_e(row.reason)}</td>'
        f"{_xero_cell(row)}</tr>"
    )


def _documents_html(plan: MigrationPlan) -> str:
    if not plan.rows:
        return '<p class="clean" id="empty">No Cin7 documents in the window: the cutover has nothing to do.</p>'
    head = (
        "<tr><th>Kind</th><th>Number</th><th>Date</th><th>Customer</th><th>Currency</th><th>Total</th>"
        "<th>Fate</th><th>Why</th><th>Xero</th></tr>"
    )
    rows = "".join(_row_html(index, row) for index, row in enumerate(sorted_rows(plan.rows), start=1))
    return (
        f'<h2>{len(plan.rows)} documents</h2><table id="documents"><thead>{head}</thead><tbody>{rows}</tbody></table>'
    )


def render_html(plan: MigrationPlan) -> str:
    """The bookkeeper's page: counts, per-kind table, lock date and cost on top, then every document."""
    window_from, window_until = plan.window_from.isoformat(), plan.window_until.isoformat()
    title = f"Cin7 → Xero migration plan: {plan.tenant}, {window_from} to {window_until}"
    header = (
        f"<h1>{_e(title)}</h1>"
        '<p class="meta">A test run: nothing was written to Xero. Documents dated '
        f'<strong id="window-from">{_e(window_from)}</strong> to '
        f'<strong id="window-until">{_e(window_until)}</strong> (both days included) · '
        f'tenant <span id="tenant">{_e(plan.tenant)}</span> · migration {_e(plan.migration_id)} · '
        f"generated {_e(_when(plan.generated_at))} · amounts in each document's currency</p>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{_e(title)}</title><style>{_CSS}{_PLAN_CSS}</style></head>"
        f"<body>{header}{_counts_html(plan)}{_by_kind_html(plan)}{_cost_html(plan)}{_errors_html(plan)}"
        f"{_documents_html(plan)}</body></html>\n"
    )


# --- files ----------------------------------------------------------------------------------------------


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader sees the old file or the new one, never half of one.

    The temporary file is in the same directory (a rename is only atomic within one filesystem) and is
    opened with mode 0o666 so the umask decides the final permissions, as for a plain write; tempfile's
    0o600 would make the plan unreadable to the bookkeeper's account.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        # newline="": the CSV carries its own \r\n and nothing else should be translated.
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_plan_files(plan: MigrationPlan, out_dir: Path) -> dict[str, Path]:
    """Write plan.html, plan.csv and plan.json into `out_dir` (created if needed); their paths by key."""
    # Render everything before touching the directory: a rendering error leaves the previous plan whole.
    texts = {"html": render_html(plan), "csv": render_csv(plan), "json": render_json(plan)}
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in PLAN_FILES.items()}
    for key, path in paths.items():
        _write_atomically(path, texts[key])
    return paths

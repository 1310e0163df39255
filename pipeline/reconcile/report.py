"""Reconciliation report files: an HTML page a bookkeeper reads, and the same rows as CSV and JSON.

Everything renders from the report document (`build_report`), the same JSON that report.json holds
and the ledger stores, so a stored run can be rendered again. The HTML page is self-contained (inline
CSS, no scripts, no external assets) and every value in it is escaped.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from html import escape
from pathlib import Path
from typing import Any

from pipeline.reconcile.balance import BALANCE_KEYS, CREDITED, DUE, PAID, balance_words
from pipeline.reconcile.rows import DOCUMENT_NOUNS, INVOICE, KIND_LABELS

REPORT_FILES = {"html": "report.html", "csv": "report.csv", "json": "report.json"}

# Kinds in display order with their labels; unknown kinds (a newer run read by older code) still render.
_LABELS = {kind.value: label for kind, label in KIND_LABELS.items()}

CSV_COLUMNS = (
    "kind",
    "label",
    "document",
    "known",
    "healable",
    "healed",
    "cin7_number",
    "cin7_date",
    "cin7_customer",
    "cin7_status",
    "cin7_subtotal",
    "cin7_tax",
    "cin7_total",
    "cin7_currency",
    "xero_number",
    "xero_date",
    "xero_status",
    "xero_contact",
    "xero_subtotal",
    "xero_tax",
    "xero_total",
    "diff_subtotal",
    "diff_tax",
    "diff_total",
    "cin7_paid",
    "cin7_credited",
    "cin7_due",
    "xero_paid",
    "xero_credited",
    "xero_due",
    "diff_paid",
    "diff_credited",
    "diff_due",
    "detail",
    "cin7_link",
    "xero_links",
)


def build_report(
    *,
    run_id: int,
    tenant: str,
    window_from: date,
    window_until: date,
    generated_at: datetime,
    summary: Mapping[str, Any],
    findings: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The report document (JSON-safe): the window is inclusive of both days."""
    return {
        "run_id": run_id,
        "tenant": tenant,
        "window": {"from": window_from.isoformat(), "until": window_until.isoformat()},
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "summary": dict(summary),
        "findings": [dict(f) for f in findings],
    }


def write_report_files(report: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write report.html, report.csv and report.json into `out_dir` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in REPORT_FILES.items()}
    paths["html"].write_text(render_html(report), encoding="utf-8")
    paths["csv"].write_text(render_csv(report), encoding="utf-8", newline="")
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return paths


# --- CSV ------------------------------------------------------------------------------------------------


def _cell(value: object) -> str:
    """Text as a spreadsheet will not execute it (a leading =, +, - or @ starts a formula in Excel)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _side(finding: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = finding.get(key)
    return value if isinstance(value, Mapping) else {}


def _xero_rows(finding: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rows = finding.get("xero") or []
    return [row for row in rows if isinstance(row, Mapping)]


def _document(finding: Mapping[str, Any]) -> str:
    """What a finding is about; a run stored before credit notes were compared was about invoices."""
    return str(finding.get("document") or INVOICE)


def csv_rows(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per finding (amounts as exact decimal strings; text made formula-safe).

    The paid/credited/due columns hold, for a credit note, its refunds, its allocations and its
    remaining credit.
    """
    out = []
    for finding in report.get("findings") or []:
        cin7 = _side(finding, "cin7")
        xero = _xero_rows(finding)
        first = xero[0] if xero else {}
        difference = finding.get("difference") or {}
        out.append(
            {
                "kind": str(finding.get("kind") or ""),
                "label": str(finding.get("label") or ""),
                "document": _document(finding),
                "known": _cell(finding.get("known")),
                "healable": "yes" if finding.get("healable") else "no",
                "healed": "yes" if finding.get("healed") else "no",
                "cin7_number": _cell(cin7.get("number")),
                "cin7_date": str(cin7.get("date") or ""),
                "cin7_customer": _cell(cin7.get("customer")),
                "cin7_status": str(cin7.get("status") or ""),
                "cin7_subtotal": str(cin7.get("subtotal") or ""),
                "cin7_tax": str(cin7.get("tax") or ""),
                "cin7_total": str(cin7.get("total") or ""),
                "cin7_currency": str(cin7.get("currency") or ""),
                "xero_number": _cell(" | ".join(str(row.get("number") or "") for row in xero)),
                "xero_date": str(first.get("date") or ""),
                "xero_status": " | ".join(str(row.get("status") or "") for row in xero),
                "xero_contact": _cell(first.get("contact")),
                "xero_subtotal": str(first.get("subtotal") or ""),
                "xero_tax": str(first.get("tax") or ""),
                "xero_total": str(first.get("total") or ""),
                "diff_subtotal": str(difference.get("SubTotal") or ""),
                "diff_tax": str(difference.get("TotalTax") or ""),
                "diff_total": str(difference.get("Total") or ""),
                "cin7_paid": str(cin7.get("paid") or ""),
                "cin7_credited": str(cin7.get("credited") or ""),
                "cin7_due": str(cin7.get("due") or ""),
                "xero_paid": str(first.get("amount_paid") or ""),
                "xero_credited": str(first.get("amount_credited") or ""),
                "xero_due": str(first.get("amount_due") or ""),
                "diff_paid": str(difference.get(PAID) or ""),
                "diff_credited": str(difference.get(CREDITED) or ""),
                "diff_due": str(difference.get(DUE) or ""),
                "detail": _cell(finding.get("detail")),
                "cin7_link": str(cin7.get("link") or ""),
                "xero_links": " ".join(str(row.get("link") or "") for row in xero),
            }
        )
    return out


def render_csv(report: Mapping[str, Any]) -> str:
    """The findings as CSV with a header row."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(csv_rows(report))
    return buffer.getvalue()


# --- HTML -----------------------------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2933;
       margin: 0; padding: 24px 32px; background: #f7f8fa; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
p.meta { color: #52606d; margin: 0 0 16px; }
section.summary { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 8px; }
.card { background: #fff; border: 1px solid #d9e2ec; border-radius: 6px; padding: 10px 14px; min-width: 150px; }
.card .count { font-size: 24px; font-weight: 600; display: block; }
.card .what { color: #52606d; font-size: 12px; }
.card.total { border-color: #1f2933; }
.card.zero .count { color: #9aa5b1; }
.clean { background: #e3f9e5; border: 1px solid #57ae5b; border-radius: 6px; padding: 12px 16px; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
th, td { border: 1px solid #d9e2ec; padding: 6px 8px; vertical-align: top; text-align: left; }
th { background: #eef2f7; position: sticky; top: 0; }
td.amount { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.diff { color: #ab091e; font-weight: 600; }
td.nowrap { white-space: nowrap; }
td.note { min-width: 200px; }
.kind { display: inline-block; border-radius: 10px; padding: 1px 8px; font-size: 12px; white-space: nowrap;
        background: #e4e7eb; }
.kind-missing_in_xero, .kind-mismatch, .kind-duplicate { background: #ffe3e3; color: #8a041a; }
.kind-unknown_in_xero, .kind-status, .kind-contact, .kind-date { background: #fff3c4; color: #8d2b0b; }
.kind-rounding { background: #e0e8f9; color: #19216c; }
.kind-balance { background: #fce8d4; color: #7a3a00; }
.document { display: block; color: #52606d; font-size: 12px; margin-top: 4px; white-space: nowrap; }
td.balance { white-space: nowrap; font-variant-numeric: tabular-nums; text-align: right; font-size: 12px; }
.known { display: block; color: #52606d; font-style: italic; margin-top: 4px; }
.healed { display: block; color: #0e7c86; margin-top: 4px; }
.muted { color: #9aa5b1; }
a { color: #0b69a3; }
ul.errors { color: #8a041a; }
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _amount(value: object, *, diff: bool = False) -> str:
    text = "" if value in (None, "") else str(value)
    if diff and text and not text.startswith("-"):
        text = "+" + text
    css = "amount diff" if diff and text else "amount"
    return f'<td class="{css}">{_e(text)}</td>'


def _when(value: object) -> str:
    """An ISO timestamp as a person reads it (UTC, to the minute)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value or "")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _link(url: object, text: object) -> str:
    if not url:
        return _e(text)
    return f'<a href="{_e(url)}" target="_blank" rel="noopener noreferrer">{_e(text)}</a>'


def _side_cells(document: str, texts: list[str], side: Mapping[str, Any], balance_keys: list[str]) -> str:
    """One side's cells: number, date, contact and status (already escaped), then its amounts."""
    number, dated, contact, status = texts
    return (
        f'<td class="nowrap">{number}</td><td class="nowrap">{dated}</td><td>{contact}</td>'
        f'<td class="nowrap">{status}</td>'
        + "".join(_amount(side.get(key)) for key in ("subtotal", "tax", "total"))
        + _balance_cell(document, [side.get(key) for key in balance_keys])
    )


def _balance_cell(document: str, values: Sequence[object], *, diff: bool = False) -> str:
    """Paid, credited and due (refunded, allocated, remaining) stacked in one cell; blanks left out."""
    words = balance_words(document)
    lines = []
    for word, value in zip(words, values, strict=True):
        text = "" if value in (None, "") else str(value)
        if not text:
            continue
        if diff and not text.startswith("-"):
            text = "+" + text
        lines.append(f"{_e(word)} {_e(text)}")
    css = "balance diff" if diff and lines else "balance"
    return f'<td class="{css}">{"<br>".join(lines)}</td>'


def _summary_html(report: Mapping[str, Any]) -> str:
    summary = report.get("summary") or {}
    counts: Mapping[str, Any] = summary.get("counts") or {}
    total = int(summary.get("total") or 0)
    cards = [
        f'<div class="card total" data-kind="total"><span class="count" id="count-total">{total}</span>'
        '<span class="what">discrepancies</span></div>'
    ]
    labels = dict(_LABELS)
    for kind in counts:
        labels.setdefault(str(kind), str(kind))
    for kind, label in labels.items():
        count = int(counts.get(kind) or 0)
        zero = " zero" if count == 0 else ""
        cards.append(
            f'<div class="card{zero}" data-kind="{_e(kind)}"><span class="count" id="count-{_e(kind)}">{count}</span>'
            f'<span class="what">{_e(label)}</span></div>'
        )
    facts = (
        f"Cin7 invoices compared: {_e(summary.get('cin7_invoices', 0))} · "
        f"Xero invoices in the window: {_e(summary.get('xero_invoices', 0))} · "
        f'Cin7 credit notes compared: <span id="cin7-credit-notes">{_e(summary.get("cin7_credit_notes", 0))}</span> · '
        f"Xero credit notes in the window: {_e(summary.get('xero_credit_notes', 0))} · "
        f"already explained (dead letters, in progress): {_e(summary.get('known', 0))} · "
        f"fixable by the sync: {_e(summary.get('healable', 0))} · "
        f"sent back to the sync: {_e(summary.get('healed', 0))}"
    )
    parts = [f'<section class="summary" id="summary">{"".join(cards)}</section>', f'<p class="meta">{facts}</p>']
    errors = summary.get("errors") or []
    if errors:
        items = "".join(f"<li>{_e(error)}</li>" for error in errors)
        parts.append(f'<p>Some Cin7 sales could not be read; they are not compared:</p><ul class="errors">{items}</ul>')
    return "".join(parts)


def _row_html(index: int, finding: Mapping[str, Any]) -> str:
    kind = str(finding.get("kind") or "")
    label = str(finding.get("label") or _LABELS.get(kind, kind))
    cin7 = _side(finding, "cin7")
    xero = _xero_rows(finding)
    difference = finding.get("difference") or {}
    number = str(finding.get("number") or cin7.get("number") or "")
    document = _document(finding)
    if cin7:
        cin7_number = _link(cin7.get("link"), cin7.get("number") or "(no number)")
        cin7_cells = _side_cells(
            document,
            [cin7_number, _e(cin7.get("date")), _e(cin7.get("customer")), _e(cin7.get("status"))],
            cin7,
            ["paid", "credited", "due"],
        )
    else:
        cin7_cells = '<td colspan="8" class="muted">not in Cin7</td>'
    if xero:
        links = "<br>".join(_link(row.get("link"), row.get("number") or row.get("invoice_id")) for row in xero)
        statuses = "<br>".join(_e(row.get("status")) for row in xero)
        dates = "<br>".join(_e(row.get("date")) for row in xero)
        contacts = "<br>".join(_e(row.get("contact")) for row in xero)
        xero_cells = _side_cells(
            document, [links, dates, contacts, statuses], xero[0], ["amount_paid", "amount_credited", "amount_due"]
        )
    else:
        xero_cells = '<td colspan="8" class="muted">not in Xero</td>'
    diff_cells = "".join(_amount(difference.get(key), diff=True) for key in ("SubTotal", "TotalTax", "Total"))
    diff_cells += _balance_cell(document, [difference.get(key) for key in BALANCE_KEYS], diff=True)
    note = _e(finding.get("detail"))
    if finding.get("known"):
        note += f'<span class="known">known: {_e(finding.get("known"))}</span>'
    if finding.get("healed"):
        note += '<span class="healed">sent back to the sync (--heal)</span>'
    elif finding.get("healable"):
        note += '<span class="healed">the sync can fix this (run with --heal)</span>'
    return (
        f'<tr class="finding" id="finding-{index}" data-kind="{_e(kind)}" data-document="{_e(document)}" '
        f'data-number="{_e(number)}">'
        f'<td><span class="kind kind-{_e(kind)}">{_e(label)}</span>'
        f'<span class="document">{_e(DOCUMENT_NOUNS.get(document, document))}</span></td>'
        f'{cin7_cells}{xero_cells}{diff_cells}<td class="note">{note}</td></tr>'
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The bookkeeper's page: summary on top, then one row per discrepancy with both sides."""
    window = report.get("window") or {}
    findings = list(report.get("findings") or [])
    title = f"Cin7 ↔ Xero reconciliation: {window.get('from', '')} to {window.get('until', '')}"
    header = (
        f"<h1>{_e(title)}</h1>"
        '<p class="meta">Invoices and credit notes dated '
        f'<strong id="window-from">{_e(window.get("from"))}</strong> to '
        f'<strong id="window-until">{_e(window.get("until"))}</strong> (both days included) · '
        f"tenant {_e(report.get('tenant'))} · run {_e(report.get('run_id'))} · "
        f"generated {_e(_when(report.get('generated_at')))} · amounts in each document's currency · "
        "differences are Xero minus Cin7 · for a credit note, paid/credited/due are its refunds, its "
        "allocation to the invoice and its remaining credit</p>"
    )
    if findings:
        head = (
            "<tr><th rowspan=2>Kind</th><th colspan=8>Cin7</th><th colspan=8>Xero</th>"
            "<th colspan=4>Difference</th><th rowspan=2>What we found</th></tr>"
            "<tr><th>Number</th><th>Date</th><th>Customer</th><th>Status</th><th>Subtotal</th><th>Tax</th>"
            "<th>Total</th><th>Paid / credited / due</th><th>Number</th><th>Date</th><th>Contact</th>"
            "<th>Status</th><th>Subtotal</th><th>Tax</th><th>Total</th><th>Paid / credited / due</th>"
            "<th>Subtotal</th><th>Tax</th><th>Total</th><th>Paid / credited / due</th></tr>"
        )
        rows = "".join(_row_html(index, finding) for index, finding in enumerate(findings, start=1))
        body = (
            f"<h2>{len(findings)} discrepancies</h2>"
            f'<table id="findings"><thead>{head}</thead><tbody>{rows}</tbody></table>'
        )
    else:
        body = (
            '<p class="clean" id="clean">No discrepancies: every Cin7 invoice and credit note in the window '
            "matches Xero.</p>"
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body>{header}{_summary_html(report)}{body}</body></html>\n"
    )

"""The report's credit note and balance rows, without a browser: well-formed HTML, and CSV/JSON fields."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from pipeline.reconcile.report import CSV_COLUMNS, render_html, write_report_files
from pipeline.reconcile.rows import Kind
from tests.pipeline.reconcile.builders import EVERY_KIND_COUNTS, every_kind_findings, may_report

VOID_TAGS = frozenset({"br", "img", "meta", "link", "input", "hr"})
# Kind, Cin7's 8 cells, Xero's 8, 4 differences, the note.
COLUMNS = 1 + 8 + 8 + 4 + 1


class _Structure(HTMLParser):
    """Checks that every element closes in order, and counts each table row's columns (colspans included)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self._section = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag in ("thead", "tbody"):
            self._section = tag
        if tag == "tr":
            self.rows.append({"section": self._section, "columns": 0, "attrs": attributes})
        if tag in ("td", "th") and self.rows:
            rowspan = int(attributes.get("rowspan") or 1)
            self.rows[-1]["columns"] += int(attributes.get("colspan") or 1)
            self.rows[-1].setdefault("rowspans", 0)
            self.rows[-1]["rowspans"] += rowspan > 1
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def _report() -> dict[str, Any]:
    return may_report(every_kind_findings(), run_id=3, counts=EVERY_KIND_COUNTS)


def test_the_fixture_covers_every_kind_and_both_documents() -> None:
    findings = every_kind_findings()
    assert {f.kind for f in findings} == set(Kind)
    assert {f.document for f in findings} == {"invoice", "credit_note"}


def test_the_html_is_well_formed_and_every_row_has_every_column() -> None:
    page = render_html(_report())
    parser = _Structure()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    head = [row for row in parser.rows if row["section"] == "thead"]
    body = [row for row in parser.rows if row["section"] == "tbody"]
    # The first heading row spans two rows for Kind and the note, the second heads the rest.
    assert head[0]["columns"] == COLUMNS and head[1]["columns"] + head[0]["rowspans"] == COLUMNS
    assert body and all(row["columns"] == COLUMNS for row in body), [r["columns"] for r in body]
    documents = {row["attrs"]["data-number"]: row["attrs"]["data-document"] for row in body}
    assert documents["CR-00001"] == "credit_note" and documents["INV-00010"] == "invoice"
    assert 'id="count-balance">2<' in page
    assert "Paid or credited differs" in page
    assert 'href="https://go.xero.com/AccountsReceivable/ViewCreditNote.aspx?creditNoteID=' in page


def test_an_old_stored_report_without_documents_still_renders_as_invoices() -> None:
    report = _report()
    for finding in report["findings"]:
        finding.pop("document")
        for side in [finding.get("cin7") or {}, *finding.get("xero", [])]:
            for key in ("document", "paid", "credited", "due", "amount_credited", "amount_due"):
                side.pop(key, None)
    parser = _Structure()
    parser.feed(render_html(report))
    assert parser.errors == []
    assert all(row["attrs"].get("data-document") == "invoice" for row in parser.rows if row["section"] == "tbody")


def test_csv_and_json_carry_the_document_and_both_sides_balances(tmp_path: Path) -> None:
    files = write_report_files(_report(), tmp_path / "out")
    header = files["csv"].read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header == list(CSV_COLUMNS)
    parsed = list(csv.DictReader(io.StringIO(files["csv"].read_text(encoding="utf-8"))))
    by_key = {(r["kind"], r["cin7_number"] or r["xero_number"]): r for r in parsed}
    refund = by_key[("balance", "CR-00002")]
    assert refund["document"] == "credit_note"
    assert (refund["cin7_paid"], refund["cin7_credited"], refund["cin7_due"]) == ("110.00", "0.00", "0.00")
    assert (refund["xero_paid"], refund["xero_credited"], refund["xero_due"]) == ("0.00", "0.00", "110.00")
    assert (refund["diff_paid"], refund["diff_credited"], refund["diff_due"]) == ("-110.00", "", "110.00")
    assert by_key[("mismatch", "INV-00002")]["document"] == "invoice"
    document = json.loads(files["json"].read_text(encoding="utf-8"))
    note = next(f for f in document["findings"] if f["number"] == "CR-00001")
    assert note["document"] == "credit_note" and note["cin7"]["document"] == "credit_note"
    assert document["summary"]["cin7_credit_notes"] == 2
    assert document["summary"]["counts"]["balance"] == 2

"""The migration plan files: every fate and kind, hostile names, three formats that agree."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.migration.plan_rows import FATE_LABELS, Fate, MigrationPlan, PlanCost, PlanRow
from pipeline.migration.report import (
    CSV_COLUMNS,
    PLAN_FILES,
    render_csv,
    render_html,
    render_json,
    sorted_rows,
    write_plan_files,
)

KINDS = ("invoice", "credit_note", "payment", "refund", "allocation")
HOSTILE = (
    'Zoë\'s "Best" Café',
    "O'Brien & Sons",
    "<script>alert('x')</script> Ltd",
    "Ampersand &amp; Co </td></tr>",
)
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _row(n: int, kind: str, fate: Fate, **changes: object) -> PlanRow:
    values: dict[str, object] = {
        "kind": kind,
        "sale_id": f"sale-{n:04d}",
        "task_id": f"{kind}:sale-{n:04d}",
        "number": f"INV-{n}" if kind != "credit_note" else f"CR-{n}",
        "date": date(2024, 1, 1 + n % 28),
        "customer": HOSTILE[n % len(HOSTILE)],
        "currency": "NZD",
        "total": Decimal(f"{n}.50"),
        "fate": fate,
        "reason": f"reason {n}: <b>&\"'" if fate is not Fate.CREATE else "",
        "xero_id": f"xero-{n}" if fate in (Fate.ADOPT, Fate.CONFLICT) else None,
    }
    values.update(changes)
    return PlanRow(**values)  # type: ignore[arg-type]


def _plan(rows: list[PlanRow] | None = None, *, errors: list[str] | None = None) -> MigrationPlan:
    if rows is None:
        # Every kind with every fate, plus a few with the edge cases: no date, no total, no currency.
        rows = [_row(i * 10 + j, kind, fate) for i, kind in enumerate(KINDS) for j, fate in enumerate(Fate)]
        rows += [
            _row(900, "invoice", Fate.BLOCKED, date=None, total=None, currency=None, reason="no account for SKU"),
            _row(901, "credit_note", Fate.CONFLICT, total=Decimal("-12.00"), reason="Total differs"),
            _row(902, "invoice", Fate.CREATE, customer='=HYPERLINK("http://evil")', number="+1"),
        ]
    return MigrationPlan(
        migration_id=7,
        tenant='Zoë & Co\'s "tenant"',
        window_from=date(2024, 1, 1),
        window_until=date(2024, 6, 30),
        generated_at=datetime(2024, 7, 1, 9, 30, tzinfo=UTC),
        lock_date=date(2024, 1, 31),
        cost=PlanCost(
            cin7_list_calls=12,
            cin7_detail_calls=345,
            xero_read_calls=60,
            xero_write_calls=5_000,
            cin7_calls_per_minute=60,
            xero_calls_per_minute=60,
            xero_calls_per_day=5_000,
        ),
        rows=rows,
        errors=['sale sale-9999: <500> Cin7 said "no" & gave up'] if errors is None else errors,
    )


class _Page(HTMLParser):
    """Checks that tags balance; collects texts by id, document rows, links and per-kind cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.texts: dict[str, str] = {}
        self.documents: list[dict[str, str]] = []
        self.cells: dict[tuple[str, str], str] = {}
        self.links: list[str] = []
        self.title = ""
        self._ids: list[tuple[int, str]] = []
        self._cell: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "tr" and "plan-row" in attributes.get("class", "").split():
            self.documents.append(attributes | {"text": "", "links": ""})
        if tag == "a":
            self.links.append(attributes["href"])
            if self.documents and "tr" in self.stack:
                self.documents[-1]["links"] += attributes["href"] + " "
        if tag == "td" and "data-fate" in attributes and "data-kind" in attributes:
            self._cell = (attributes["data-kind"], attributes["data-fate"])
            self.cells[self._cell] = ""
        if tag in VOID:
            return
        self.stack.append(tag)
        if "id" in attributes:
            self._ids.append((len(self.stack), attributes["id"]))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.problems.append(f"self-closed non-void <{tag}/>")
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"end tag for void <{tag}>")
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()
        self._ids = [(depth, name) for depth, name in self._ids if depth <= len(self.stack)]
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self.stack[-1:] == ["title"]:
            self.title += data
        for _, name in self._ids:
            self.texts[name] = self.texts.get(name, "") + data
        if self.documents and "tr" in self.stack:
            self.documents[-1]["text"] += data + "|"
        if self._cell:
            self.cells[self._cell] += data


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.problems == []
    assert parser.stack == []
    return parser


def test_html_is_well_formed_html5_and_xml() -> None:
    page = render_html(_plan())
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    _parse(page)
    # The markup is XHTML-compatible, so a strict XML parser accepts it once the doctype is gone.
    root = ET.fromstring(page.removeprefix("<!DOCTYPE html>\n"))
    assert root.tag == "html"
    assert root.find("head/meta").attrib == {"charset": "utf-8"}  # type: ignore[union-attr]


def test_html_escapes_every_value() -> None:
    plan = _plan()
    page = render_html(plan)
    dom = _parse(page)
    assert "<script>" not in page
    assert "<b>" not in page
    assert "&lt;script&gt;" in page
    # What the reader sees is the original text, quotes, apostrophes, ampersands and accents intact.
    seen = " ".join(row["text"] for row in dom.documents)
    for name in HOSTILE:
        assert name in seen
    assert "reason 1: <b>&\"'" in seen
    assert dom.texts["tenant"] == plan.tenant
    assert plan.tenant in dom.title
    assert "2024-01-01" in dom.title
    assert "2024-06-30" in dom.title
    assert dom.texts["errors"] == plan.errors[0]


def test_html_counts_equal_the_plans_counts() -> None:
    plan = _plan()
    dom = _parse(render_html(plan))
    assert int(dom.texts["count-total"]) == len(plan.rows)
    for fate, count in plan.counts().items():
        assert int(dom.texts[f"count-{fate}"]) == count
    page = render_html(plan)
    for label in FATE_LABELS.values():
        assert label.replace("'", "&#x27;") in page
    by_kind = plan.counts_by_kind()
    for kind in KINDS:
        for fate in Fate:
            assert int(dom.cells[(kind, fate.value)]) == by_kind[kind][fate.value]
        assert int(dom.cells[(kind, "total")]) == sum(by_kind[kind].values())


def test_html_shows_zero_fates_and_kinds() -> None:
    plan = _plan([_row(1, "invoice", Fate.CREATE)], errors=[])
    dom = _parse(render_html(plan))
    for fate in Fate:
        assert dom.texts[f"count-{fate.value}"] == ("1" if fate is Fate.CREATE else "0")
    assert dom.cells[("refund", "blocked")] == "0"
    assert "errors" not in dom.texts


def test_html_cost_and_lock_date() -> None:
    plan = _plan()
    dom = _parse(render_html(plan))
    assert dom.texts["lock-date"] == "2024-01-31"
    assert dom.texts["cin7-calls"] == "357 (12 list pages + 345 details)"
    assert dom.texts["xero-calls"] == "5060 (60 reads + 5000 writes)"
    assert dom.texts["hours"] == f"{plan.cost.hours:.2f} hours"
    assert dom.texts["xero-days"] == f"{plan.cost.xero_days:.2f} days"
    assert "5000 calls/day" in dom.texts["limits"]
    no_lock = _plan([], errors=[])
    no_lock.lock_date = None
    assert _parse(render_html(no_lock)).texts["lock-date"] == "none set"


def test_html_documents_once_each_sorted_with_fate_classes_and_links() -> None:
    plan = _plan()
    dom = _parse(render_html(plan))
    assert sorted(row["data-task-id"] for row in dom.documents) == sorted(row.task_id for row in plan.rows)
    assert [row["data-task-id"] for row in dom.documents] == [row.task_id for row in sorted_rows(plan.rows)]
    by_task = {row.task_id: row for row in plan.rows}
    for shown in dom.documents:
        row = by_task[shown["data-task-id"]]
        assert f"fate-{row.fate.value}" in shown["class"].split()
        assert f"https://inventory.dearsystems.com/Sale#{row.sale_id}" in shown["links"]
        xero = row.fate in (Fate.ADOPT, Fate.CONFLICT) and row.kind in ("invoice", "credit_note")
        if xero and row.kind == "invoice":
            assert f"https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={row.xero_id}" in shown["links"]
        elif xero:
            expected = f"https://go.xero.com/AccountsReceivable/ViewCreditNote.aspx?creditNoteID={row.xero_id}"
            assert expected in shown["links"]
        else:
            assert "go.xero.com" not in shown["links"]
    # Undated rows sort last; dated ones by date then by number with its digits compared as numbers.
    assert dom.documents[-1]["data-task-id"] == "invoice:sale-0900"
    ordered = sorted_rows(
        [
            _row(1, "invoice", Fate.CREATE, number="INV-10", date=date(2024, 2, 1)),
            _row(2, "invoice", Fate.CREATE, number="INV-9", date=date(2024, 2, 1)),
            _row(3, "invoice", Fate.CREATE, number="INV-100", date=date(2024, 1, 15)),
            _row(4, "payment", Fate.CREATE, number="INV-9", date=date(2024, 2, 1)),
            _row(5, "invoice", Fate.CREATE, number="A-1", date=None),
        ]
    )
    assert [(r.number, r.kind) for r in ordered] == [
        ("INV-100", "invoice"),
        ("INV-9", "invoice"),
        ("INV-9", "payment"),
        ("INV-10", "invoice"),
        ("A-1", "invoice"),
    ]


def test_html_without_documents() -> None:
    dom = _parse(render_html(_plan([], errors=[])))
    assert "empty" in dom.texts
    assert dom.documents == []


def test_csv_round_trips() -> None:
    plan = _plan()
    text = render_csv(plan)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    rows = list(reader)
    assert len(rows) == len(plan.rows)
    assert [r["task_id"] for r in rows] == [row.task_id for row in sorted_rows(plan.rows)]
    by_task = {row.task_id: row for row in plan.rows}
    for got in rows:
        row = by_task[got["task_id"]]
        safe = row.customer.startswith("=")
        assert got["customer"] == ("'" + row.customer if safe else row.customer)
        assert got["number"] == ("'" + row.number if row.number.startswith("+") else row.number)
        assert got["kind"] == row.kind
        assert got["date"] == (row.date.isoformat() if row.date else "")
        assert got["currency"] == (row.currency or "")
        assert got["total"] == ("" if row.total is None else str(row.total))
        assert got["fate"] == row.fate.value
        assert got["reason"] == row.reason
        assert got["sale_id"] == row.sale_id
        assert got["xero_id"] == (row.xero_id or "")
    assert Decimal(next(r for r in rows if r["task_id"] == "credit_note:sale-0901")["total"]) == Decimal("-12.00")


def test_json_is_the_plans_json() -> None:
    plan = _plan()
    document = json.loads(render_json(plan))
    assert document == plan.as_json()
    assert len(document["documents"]) == len(plan.rows)
    assert sorted(d["task_id"] for d in document["documents"]) == sorted(r.task_id for r in plan.rows)
    assert "Zoë" in render_json(plan)


def test_write_plan_files_writes_and_replaces(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "7"
    first = _plan()
    paths = write_plan_files(first, out)
    assert paths == {key: out / name for key, name in PLAN_FILES.items()}
    assert paths["html"].read_text(encoding="utf-8") == render_html(first)
    assert paths["csv"].read_bytes() == render_csv(first).encode("utf-8")
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == first.as_json()

    second = _plan([_row(1, "refund", Fate.LOCKED)], errors=[])
    again = write_plan_files(second, out)
    assert again == paths
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == second.as_json()
    assert paths["html"].read_text(encoding="utf-8") == render_html(second)
    assert len(list(csv.DictReader(io.StringIO(paths["csv"].read_text(encoding="utf-8"))))) == 1
    # No temporary files are left behind, and the files get the umask's permissions, not 0600.
    assert sorted(p.name for p in out.iterdir()) == sorted(PLAN_FILES.values())
    umask = os.umask(0)
    os.umask(umask)
    for path in paths.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_write_failure_keeps_the_previous_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _plan()
    paths = write_plan_files(first, tmp_path)

    def fail(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("pipeline.migration.report.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_plan_files(_plan([], errors=[]), tmp_path)
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == first.as_json()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PLAN_FILES.values())

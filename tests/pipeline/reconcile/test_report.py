"""The reconciliation report as a bookkeeper sees it: rendered by headless Chromium (Debian's package)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.reconcile.compare import compare, summarise, unknown_statuses
from pipeline.reconcile.report import build_report, write_report_files
from pipeline.reconcile.rows import CREDIT_NOTE, Cin7InvoiceRow, Finding, Kind, LedgerDoc, LedgerView, XeroInvoiceRow

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HOSTILE_NAME = "<img src=x onerror=\"document.title='pwned'\"> O'Brien & Sons"


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    pytest.skip("Chromium not found (install it with: apt-get update && apt-get install -y chromium)")


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


class _Dom(HTMLParser):
    """Texts of elements with an id, the finding rows' attributes, and the page title."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: dict[str, str] = {}
        self.rows: list[dict[str, str]] = []
        self.title = ""
        self._open: list[tuple[str, str | None]] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "tr" and "finding" in attributes.get("class", "").split():
            self.rows.append(attributes | {"text": ""})
        if tag == "title":
            self._in_title = True
        if tag not in ("br", "img", "meta", "link", "input"):
            self._open.append((tag, attributes.get("id")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        while self._open:
            open_tag, _ = self._open.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        for _, element_id in self._open:
            if element_id:
                self.texts[element_id] = self.texts.get(element_id, "") + data
        if self.rows and any(tag == "tr" for tag, _ in self._open):
            self.rows[-1]["text"] += data + " "


def _cin7(n: int, *, status: str = "AUTHORISED") -> Cin7InvoiceRow:
    return Cin7InvoiceRow(
        sale_id=f"5a1e0000-0000-0000-0000-{n:012d}",
        task_id=f"7a5c0000-0000-0000-0000-{n:012d}",
        number=f"INV-{n:05d}",
        date=date(2024, 5, 1 + n % 28),
        customer=HOSTILE_NAME if n == 1 else f"Customer {n}",
        customer_id="c1",
        status=status,
        subtotal=Decimal("100.00"),
        tax=Decimal("10.00"),
        total=Decimal("110.00"),
        currency="AUD",
    )


def _xero(row: Cin7InvoiceRow, **changes: object) -> XeroInvoiceRow:
    base = XeroInvoiceRow(
        invoice_id=f"1e7o0000-0000-0000-0000-{row.number[-5:]:0>12}",
        number=row.number,
        date=row.date,
        status="AUTHORISED",
        contact_id="x1",
        contact_name=row.customer,
        subtotal=row.subtotal,
        tax=row.tax,
        total=row.total,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _findings() -> list[Finding]:
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


def test_the_report_renders_in_chromium_with_its_summary_and_every_discrepancy(tmp_path: Path) -> None:
    binary = _chromium()
    findings = _findings()
    assert {f.kind for f in findings} == set(Kind), "the fixture should cover every kind"
    summary = summarise(findings) | {
        "cin7_invoices": 9,
        "xero_invoices": 9,
        "cin7_credit_notes": 2,
        "xero_credit_notes": 1,
        "errors": [],
    }
    report = build_report(
        run_id=12,
        tenant="default",
        window_from=date(2024, 5, 1),
        window_until=date(2024, 5, 31),
        generated_at=datetime(2024, 6, 1, 3, 15, tzinfo=UTC),
        summary=summary,
        findings=[f.as_json() for f in findings],
    )
    files = write_report_files(report, tmp_path / "report")
    url = files["html"].resolve().as_uri()

    dumped = _run_chromium(binary, tmp_path / "profile", "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = _Dom()
    dom.feed(dumped.stdout)

    # Summary on top: the window and a count per kind.
    assert dom.texts["window-from"] == "2024-05-01" and dom.texts["window-until"] == "2024-05-31"
    assert dom.texts["count-total"] == str(len(findings))
    for kind in Kind:
        assert dom.texts[f"count-{kind.value}"] == str(summary["counts"][kind.value]), kind
    # One row per discrepancy, with both sides' values.
    assert sorted((r["data-kind"], r["data-number"]) for r in dom.rows) == sorted(
        (f.kind.value, f.number) for f in findings
    )
    rows = {(r["data-kind"], r["data-number"]): r["text"] for r in dom.rows}
    mismatch = rows[("mismatch", "INV-00002")]
    assert "110.00" in mismatch and "120.00" in mismatch and "+10.00" in mismatch
    assert "known: dead letter 31" in rows[("missing_in_xero", "INV-00008")]
    # Credit notes say so, and a balance finding shows both sides' paid/credited/due.
    assert dom.texts["cin7-credit-notes"] == "2"
    assert "credit note" in rows[("missing_in_xero", "CR-00001")]
    assert HOSTILE_NAME in rows[("missing_in_xero", "CR-00001")]
    refund = rows[("balance", "CR-00002")]
    assert "refunded 110.00" in refund and "refunded 0.00" in refund and "refunded -110.00" in refund
    balance = rows[("balance", "INV-00010")]
    assert "paid 0.00" in balance and "paid 50.00" in balance and "paid +50.00" in balance
    # The hostile customer name is text, not markup: nothing ran, and it reads as typed.
    assert dom.title.startswith("Cin7 ↔ Xero reconciliation")
    assert HOSTILE_NAME in rows[("missing_in_xero", "INV-00001")]
    assert "<img" not in dumped.stdout

    screenshot = tmp_path / "report.png"
    shot = _run_chromium(
        binary, tmp_path / "profile-shot", "--window-size=1600,1200", f"--screenshot={screenshot}", url
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

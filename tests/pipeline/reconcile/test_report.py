"""The reconciliation report as a bookkeeper sees it: rendered by headless Chromium (Debian's package)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from pipeline.reconcile.report import write_report_files
from pipeline.reconcile.rows import Kind
from tests.browser import chromium as _chromium
from tests.browser import run_chromium as _run_chromium
from tests.pipeline.reconcile.builders import EVERY_KIND_COUNTS, HOSTILE_NAME, every_kind_findings, may_report


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


def test_the_report_renders_in_chromium_with_its_summary_and_every_discrepancy(tmp_path: Path) -> None:
    binary = _chromium()
    findings = every_kind_findings()
    assert {f.kind for f in findings} == set(Kind), "the fixture should cover every kind"
    report = may_report(findings, run_id=12, counts=EVERY_KIND_COUNTS)
    summary = report["summary"]
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

"""The pure comparison of Cin7 and Xero invoices, and the report files, on hand-built data."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from mappings import Cin7Sale
from pipeline.reconcile.compare import compare, split_cin7, summarise, total_differences, unknown_statuses
from pipeline.reconcile.report import render_csv, render_html, write_report_files
from pipeline.reconcile.rows import (
    Cin7Elsewhere,
    Finding,
    Kind,
    LedgerDoc,
    LedgerView,
    cin7_invoice_rows,
    number_shape,
    xero_invoice_row,
)
from pipeline.reconcile.window import resolve_window
from pipeline.xero.sdk import parse_xero_date
from tests.pipeline.reconcile.builders import CONTACT, CUSTOMER, cin7_row, ledger_for, may_report, xero_for

D = Decimal


def kinds(findings: list[Finding]) -> list[tuple[Kind, str]]:
    return sorted((f.kind, f.number) for f in findings)


def test_clean_data_finds_nothing() -> None:
    cin7 = [cin7_row(n) for n in range(1, 6)] + [cin7_row(9, status="VOIDED")]
    xero = [xero_for(row) for row in cin7[:5]] + [xero_for(cin7[5], status="VOIDED")]
    assert compare(cin7, xero, ledger_for(cin7)) == []


def test_a_voided_cin7_invoice_never_sent_to_xero_is_not_a_discrepancy() -> None:
    voided = cin7_row(1, status="VOIDED")
    assert compare([voided], [], ledger_for([voided], state="ignored")) == []


def test_an_invoice_missing_in_xero_is_found_and_healable_when_the_ledger_thinks_it_is_synced() -> None:
    cin7 = [cin7_row(1), cin7_row(2)]
    findings = compare(cin7, [xero_for(cin7[0])], ledger_for(cin7))
    assert kinds(findings) == [(Kind.MISSING_IN_XERO, "INV-00002")]
    assert findings[0].healable and findings[0].known is None and findings[0].doc_id == 2
    assert findings[0].xero == ()


def test_an_invoice_the_ledger_never_saw_is_missing_and_healable() -> None:
    row = cin7_row(1)
    (finding,) = compare([row], [], LedgerView())
    assert finding.kind is Kind.MISSING_IN_XERO and finding.healable and finding.doc_id is None


def test_a_dead_lettered_invoice_is_still_missing_but_marked_known() -> None:
    row = cin7_row(1)
    dead = LedgerDoc(7, row.sale_id, row.task_id, row.number, "dead", None, dead_letter_id=42)
    (finding,) = compare([row], [], ledger_for([row], overrides={row.number: dead}))
    assert finding.kind is Kind.MISSING_IN_XERO
    assert finding.known == "dead letter 42"
    assert not finding.healable


def test_a_sale_whose_detail_is_dead_marks_its_missing_invoices_known() -> None:
    row = cin7_row(1)
    (finding,) = compare([row], [], LedgerView(dead_sales={row.sale_id: 5}))
    assert finding.known == "dead letter 5" and not finding.healable


def test_an_invoice_being_written_is_missing_but_in_progress_and_not_healed() -> None:
    row = cin7_row(1)
    writing = LedgerDoc(1, row.sale_id, row.task_id, row.number, "writing", None)
    (finding,) = compare([row], [], ledger_for([row], overrides={row.number: writing}))
    assert finding.known == "sync in progress (writing)" and not finding.healable


def test_a_xero_invoice_with_a_cin7_number_but_no_cin7_invoice_is_unknown() -> None:
    cin7 = [cin7_row(1)]
    stray = xero_for(cin7_row(99))
    xero_native = replace(xero_for(cin7_row(98)), number="INV-0001", invoice_id="xero-native")
    findings = compare(cin7, [xero_for(cin7[0]), stray, xero_native], ledger_for(cin7))
    assert kinds(findings) == [(Kind.UNKNOWN_IN_XERO, "INV-00099")]
    assert findings[0].cin7 is None and findings[0].xero == (stray,)


def test_a_xero_invoice_the_ledger_links_to_a_vanished_cin7_invoice_is_unknown_whatever_its_number() -> None:
    gone = cin7_row(3)
    renamed = replace(xero_for(gone), number="Manual 17")
    ledger = ledger_for([gone])
    (finding,) = compare([], [renamed], ledger)
    assert finding.kind is Kind.UNKNOWN_IN_XERO and finding.doc_id == 1


def test_a_xero_invoice_whose_cin7_invoice_lies_outside_the_window_is_not_unknown() -> None:
    elsewhere_row = cin7_row(4)
    xero = [xero_for(elsewhere_row)]
    findings = compare(
        [], xero, LedgerView(), cin7_elsewhere=Cin7Elsewhere(numbers=frozenset({"inv-00004"})), shapes={"INV-#5"}
    )
    assert findings == []


def test_voided_xero_invoices_unknown_to_cin7_are_not_reported() -> None:
    stray = xero_for(cin7_row(99), status="VOIDED")
    assert compare([cin7_row(1)], [xero_for(cin7_row(1)), stray], LedgerView()) == []


def test_the_same_number_twice_in_xero_is_a_duplicate() -> None:
    row = cin7_row(1)
    first = xero_for(row)
    second = replace(first, invoice_id="xero-second")
    findings = compare([row], [first, second], ledger_for([row]))
    assert kinds(findings) == [(Kind.DUPLICATE, "INV-00001")]
    assert {x.invoice_id for x in findings[0].xero} == {first.invoice_id, second.invoice_id}
    assert not findings[0].healable


def test_duplicated_numbers_of_xero_s_own_numbering_are_not_ours_to_report() -> None:
    row = cin7_row(1)
    native = replace(xero_for(cin7_row(2)), number="INV-0001", invoice_id="native-1")
    twin = replace(native, invoice_id="native-2")
    assert compare([row], [xero_for(row), native, twin], ledger_for([row])) == []


def test_two_xero_invoices_linked_to_one_cin7_invoice_are_a_duplicate() -> None:
    row = cin7_row(1)
    linked = replace(xero_for(row), number="INV-00001-OLD")
    by_number = replace(xero_for(row), invoice_id="xero-recreated")
    findings = compare([row], [linked, by_number], ledger_for([row]))
    assert kinds(findings) == [(Kind.DUPLICATE, "INV-00001")]
    assert {x.invoice_id for x in findings[0].xero} == {linked.invoice_id, by_number.invoice_id}


def test_totals_differences_of_at_most_five_cents_are_rounding_and_larger_ones_mismatches() -> None:
    rounding, mismatch, edge = cin7_row(1), cin7_row(2), cin7_row(3)
    xero = [
        xero_for(rounding, tax=rounding.tax + D("0.02"), total=rounding.total + D("0.02")),
        xero_for(mismatch, subtotal=mismatch.subtotal + D("10.00"), total=mismatch.total + D("10.00")),
        xero_for(edge, total=edge.total - D("0.06")),
    ]
    findings = compare([rounding, mismatch, edge], xero, ledger_for([rounding, mismatch, edge]))
    assert kinds(findings) == [
        (Kind.MISMATCH, "INV-00002"),
        (Kind.MISMATCH, "INV-00003"),
        (Kind.ROUNDING, "INV-00001"),
    ]
    by_number = {f.number: f for f in findings}
    assert by_number["INV-00001"].difference == {"TotalTax": D("0.02"), "Total": D("0.02")}
    assert not by_number["INV-00001"].healable
    assert by_number["INV-00002"].difference == {"SubTotal": D("10.00"), "Total": D("10.00")}
    assert by_number["INV-00002"].healable
    assert by_number["INV-00003"].difference == {"Total": D("-0.06")}


def test_a_mismatch_is_healable_only_when_the_ledger_thinks_it_is_synced() -> None:
    row = cin7_row(1)
    xero = [xero_for(row, total=row.total + 1)]
    conflict_free = LedgerDoc(1, row.sale_id, row.task_id, row.number, "ready", "xero-inv-00001")
    (finding,) = compare([row], xero, ledger_for([row], overrides={row.number: conflict_free}))
    assert finding.kind is Kind.MISMATCH and not finding.healable
    assert finding.known == "sync in progress (ready)"


def test_totals_are_compared_to_the_cent() -> None:
    row = cin7_row(1)
    xero = xero_for(row, total=row.total + D("0.004"))
    assert total_differences(row, xero) == {}
    assert total_differences(row, xero_for(row, total=row.total + D("0.01"))) == {"Total": D("0.01")}


def test_voided_in_cin7_but_live_in_xero_is_a_status_difference() -> None:
    row = cin7_row(1, status="VOIDED")
    (finding,) = compare([row], [xero_for(row)], ledger_for([row]))
    assert finding.kind is Kind.STATUS
    assert "voided in Cin7 but AUTHORISED in Xero" in finding.detail
    assert finding.healable


def test_voided_in_cin7_but_paid_in_xero_is_not_healable() -> None:
    row = cin7_row(1, status="VOIDED")
    (finding,) = compare([row], [xero_for(row, status="PAID", amount_paid=row.total)], ledger_for([row]))
    assert finding.kind is Kind.STATUS and not finding.healable


def test_paid_in_xero_but_changed_in_cin7_is_a_status_difference_from_the_ledger_conflict() -> None:
    row = cin7_row(1, total="121.00")
    paid = xero_for(replace(row, subtotal=D("100.00"), tax=D("10.00"), total=D("110.00")), status="PAID")
    ledger = ledger_for([row], state="conflict")
    (finding,) = compare([row], [paid], ledger)
    assert finding.kind is Kind.STATUS
    assert "paid in Xero" in finding.detail and finding.known == "ledger conflict"
    assert finding.difference["Total"] == D("-11.00")
    assert not finding.healable


def test_live_in_cin7_but_voided_in_xero_is_a_status_difference() -> None:
    row = cin7_row(1)
    (finding,) = compare([row], [xero_for(row, status="VOIDED")], ledger_for([row]))
    assert finding.kind is Kind.STATUS and "AUTHORISED in Cin7 but VOIDED in Xero" in finding.detail


def test_an_invoice_on_another_contact_than_the_ledger_links_is_a_contact_difference() -> None:
    row = cin7_row(1)
    (finding,) = compare([row], [xero_for(row, contact_id="someone-else", contact_name="Other")], ledger_for([row]))
    assert finding.kind is Kind.CONTACT
    assert "someone-else" in finding.detail and CONTACT in finding.detail


def test_an_invoice_found_outside_the_window_is_compared_and_its_date_difference_reported() -> None:
    row = cin7_row(1)
    moved = xero_for(row, date=date(2024, 7, 1))
    findings = compare([row], [], ledger_for([row]), xero_outside=[moved])
    assert kinds(findings) == [(Kind.DATE, "INV-00001")]
    assert findings[0].healable


def test_every_kind_at_once_is_counted_per_kind() -> None:
    rows = [cin7_row(n) for n in range(1, 9)]
    rows[4] = cin7_row(5, status="VOIDED")
    xero = [
        # 1 missing
        xero_for(rows[1], total=rows[1].total + 5),  # mismatch
        xero_for(rows[2], total=rows[2].total + D("0.01")),  # rounding
        xero_for(rows[3]),
        replace(xero_for(rows[3]), invoice_id="dup"),  # duplicate
        xero_for(rows[4]),  # voided in Cin7, live in Xero
        xero_for(rows[5], contact_id="other"),  # contact
        xero_for(rows[6], date=date(2024, 5, 11)),  # date
        xero_for(rows[7], amount_paid=D("10.00")),  # balance: paid in Xero, not in Cin7
        xero_for(cin7_row(50)),  # unknown
    ]
    credited = unknown_statuses([cin7_row(60, status="CREDITED")], date(2024, 5, 1), date(2024, 6, 1))
    summary = summarise([*compare(rows, xero, ledger_for(rows)), *credited])
    assert summary["total"] == 10
    assert all(count == 1 for count in summary["counts"].values()), summary["counts"]


def test_number_shapes_tell_cin7_numbers_from_xero_ones() -> None:
    assert number_shape("INV-00012") == number_shape("inv-99999") == "INV-#5"
    assert number_shape("INV-0001") != number_shape("INV-00001")


def test_xero_json_becomes_a_row_with_exact_amounts_and_a_utc_date() -> None:
    row = xero_invoice_row(
        {
            "InvoiceID": "ABC",
            "InvoiceNumber": " INV-00001 ",
            "Date": "/Date(1714521600000+0000)/",
            "Status": "authorised",
            "Contact": {"ContactID": "C1", "Name": "Zoë"},
            "SubTotal": 100.1,
            "TotalTax": 10.01,
            "Total": 110.11,
            "AmountPaid": 0.0,
            "AmountCredited": 1.5,
            "AmountDue": 108.61,
        }
    )
    assert row.invoice_id == "abc" and row.number == "INV-00001" and row.status == "AUTHORISED"
    assert row.date == date(2024, 5, 1)
    assert (row.subtotal, row.tax, row.total) == (D("100.1"), D("10.01"), D("110.11"))
    # Paid and credited are apart (each is compared with Cin7's); `paid` still means "paid or credited".
    assert (row.amount_paid, row.amount_credited, row.due) == (D("0.0"), D("1.5"), D("108.61"))
    assert row.paid and row.document == "invoice"
    assert parse_xero_date("2024-05-01T00:00:00") == date(2024, 5, 1)


def test_cin7_invoices_outside_the_window_and_drafts_only_make_numbers_known() -> None:
    sale = Cin7Sale.model_validate(
        {
            "ID": "SALE-1",
            "Customer": "Acme",
            "CustomerID": CUSTOMER,
            "CustomerCurrency": "AUD",
            "Invoices": [
                {
                    "TaskID": "T1",
                    "InvoiceNumber": "INV-1",
                    "Status": "AUTHORISED",
                    "InvoiceDate": "2024-05-02T00:00:00",
                },
                {"TaskID": "T2", "InvoiceNumber": "INV-2", "Status": "DRAFT", "InvoiceDate": "2024-05-02T00:00:00"},
                {"TaskID": "T3", "InvoiceNumber": "INV-3", "Status": "PAID", "InvoiceDate": "2024-06-02T00:00:00"},
            ],
        }
    )
    compared, elsewhere = split_cin7(cin7_invoice_rows(sale), date(2024, 5, 1), date(2024, 6, 1))
    assert [row.number for row in compared] == ["INV-1"]
    assert compared[0].sale_id == "sale-1" and compared[0].task_id == "t1"
    assert elsewhere.numbers == {"inv-2", "inv-3"}


def test_the_window_defaults_to_the_lookback_and_includes_until() -> None:
    window = resolve_window(None, None, 35, date(2024, 6, 30))
    assert (window.start, window.last, window.end) == (date(2024, 5, 26), date(2024, 6, 30), date(2024, 7, 1))
    assert window.xero_where() == ('Date >= DateTime(2024, 5, 26) && Date < DateTime(2024, 7, 1) && Type == "ACCREC"')
    with pytest.raises(ValueError, match="after"):
        resolve_window(date(2024, 7, 1), date(2024, 6, 1), 35, date(2024, 6, 30))


# --- report files ---------------------------------------------------------------------------------------


def _report(findings: list[Finding]) -> dict[str, object]:
    return may_report(findings, run_id=7, counts={"cin7_invoices": 3, "xero_invoices": 3})


def test_the_html_report_escapes_names_and_links_both_sides(tmp_path: Path) -> None:
    row = replace(cin7_row(1), customer='<script>alert("x")</script> & Co')
    mismatch = compare([row], [xero_for(row, total=row.total + 3)], ledger_for([row]))
    page = render_html(_report(mismatch))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in page
    assert 'href="https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID=xero-inv-00001"' in page
    assert 'href="https://inventory.dearsystems.com/Sale#sale-1"' in page
    assert 'id="count-mismatch">1<' in page
    assert "http://" not in page and "<link" not in page and "<script" not in page


def test_a_clean_report_says_so() -> None:
    page = render_html(_report([]))
    assert 'id="clean"' in page and 'id="count-total">0<' in page


def test_csv_and_json_hold_one_row_per_finding_with_exact_amounts(tmp_path: Path) -> None:
    rows = [cin7_row(1), cin7_row(2)]
    rows[1] = replace(rows[1], customer="=HYPERLINK(1)")
    findings = compare(rows, [xero_for(rows[0], total=rows[0].total + D("0.03"))], ledger_for(rows))
    files = write_report_files(_report(findings), tmp_path / "out")
    assert sorted(p.name for p in files.values()) == ["report.csv", "report.html", "report.json"]
    parsed = list(csv.DictReader(io.StringIO(files["csv"].read_text(encoding="utf-8"))))
    assert [r["kind"] for r in parsed] == [f.kind.value for f in findings]
    rounding = next(r for r in parsed if r["kind"] == "rounding")
    assert rounding["diff_total"] == "0.03" and rounding["xero_total"] == str(rows[0].total + D("0.03"))
    missing = next(r for r in parsed if r["kind"] == "missing_in_xero")
    assert missing["cin7_customer"] == "'=HYPERLINK(1)"
    document = json.loads(files["json"].read_text(encoding="utf-8"))
    assert document["window"] == {"from": "2024-05-01", "until": "2024-05-31"}
    assert len(document["findings"]) == 2
    assert render_csv(_report([])).strip().split(",")[0] == "kind"


def test_an_unknown_cin7_status_in_the_window_is_a_finding_never_silence() -> None:
    rows = [cin7_row(1, status="CREDITED"), cin7_row(2), cin7_row(3, status="DRAFT"), cin7_row(4, status="X", day=28)]
    findings = unknown_statuses(rows, date(2024, 5, 1), date(2024, 5, 20))
    assert [(f.kind, f.cin7.number if f.cin7 else None) for f in findings] == [(Kind.UNKNOWN_STATUS, "INV-00001")]
    assert "'CREDITED'" in findings[0].detail and "nothing was sent to Xero" in findings[0].detail
    assert summarise(findings)["counts"][Kind.UNKNOWN_STATUS.value] == 1


def test_totals_compare_against_what_xero_must_show_for_four_dp_cin7_totals() -> None:
    row = replace(cin7_row(1), subtotal=D("100.0049"), tax=D("10.0005"), total=D("110.0054"))
    # Xero shows Cin7's Tax and Total to the cent, 10.00 and 110.01, so its SubTotal is 100.01.
    assert total_differences(row, xero_for(row, subtotal=D("100.01"), tax=D("10.00"), total=D("110.01"))) == {}
    assert total_differences(row, xero_for(row, subtotal=D("100.00"), tax=D("10.00"), total=D("110.00"))) == {
        "SubTotal": D("-0.01"),
        "Total": D("-0.01"),
    }

"""The pure comparison of what was paid, credited and refunded, and of credit notes, on hand-built data.

Cin7's side is built from Cin7 sale JSON (so `mappings.credit_allocations` decides what each credit
note allocates); Xero's from the JSON Xero answers with, as the sync would have left it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from mappings import Cin7Sale
from pipeline.reconcile.balance import balance_differences
from pipeline.reconcile.compare import CIN7_CREDIT_NOTES_COMPARED, compare, split_cin7, unknown_statuses
from pipeline.reconcile.rows import (
    CREDIT_NOTE,
    Cin7InvoiceRow,
    Finding,
    Kind,
    XeroInvoiceRow,
    cin7_credit_note_rows,
    cin7_invoice_rows,
    xero_credit_note_row,
    xero_invoice_row,
)
from tests.pipeline.reconcile.builders import CONTACT, CUSTOMER, ledger_for

D = Decimal
START, END = date(2024, 5, 1), date(2024, 6, 1)


def _payment(amount: str) -> dict[str, Any]:
    return {"Amount": amount, "DatePaid": "2024-05-12T00:00:00", "Account": "090"}


def _note(
    n: int, amount: str, *, refunds: Sequence[str] = (), status: str = "AUTHORISED", day: int = 15
) -> dict[str, Any]:
    total = D(amount)
    tax = (total / 11).quantize(D("0.01"))
    return {
        "TaskID": f"cn-task-{n}",
        "CreditNoteNumber": f"CR-{n:05d}",
        "CreditNoteInvoiceNumber": "INV-00001",
        "CreditNoteDate": f"2024-05-{day:02d}T00:00:00",
        "Status": status,
        "TotalBeforeTax": str(total - tax),
        "Tax": str(tax),
        "Total": amount,
        "Refunds": [_payment(r) for r in refunds],
    }


def sale(*, payments: Sequence[str] = (), notes: Sequence[dict[str, Any]] = (), status: str = "AUTHORISED") -> Cin7Sale:
    """One invoice INV-00001 of 110.00 (10.00 GST), its payments and its credit notes."""
    return Cin7Sale.model_validate(
        {
            "ID": "sale-1",
            "Customer": "Acme",
            "CustomerID": CUSTOMER,
            "CustomerCurrency": "AUD",
            "Invoices": [
                {
                    "TaskID": "inv-task-1",
                    "InvoiceNumber": "INV-00001",
                    "Status": status,
                    "InvoiceDate": "2024-05-10T00:00:00",
                    "TotalBeforeTax": "100.00",
                    "Tax": "10.00",
                    "Total": "110.00",
                    "Payments": [_payment(p) for p in payments],
                }
            ],
            "CreditNotes": list(notes),
        }
    )


def _xero_document(row: Cin7InvoiceRow, noun: str, xero_type: str, *, settled: bool) -> dict[str, Any]:
    """What Xero's JSON of an invoice (`noun` "Invoice") or credit note ("CreditNote") of `row` holds of it."""
    return {
        f"{noun}ID": f"xero-{row.number.lower()}",
        f"{noun}Number": row.number,
        "Type": xero_type,
        "Date": row.date.isoformat() if row.date else None,
        "Status": "PAID" if settled else "AUTHORISED",
        "Contact": {"ContactID": CONTACT, "Name": "Acme"},
        "SubTotal": str(row.subtotal),
        "TotalTax": str(row.tax),
        "Total": str(row.total),
    }


def xero_invoice(
    row: Cin7InvoiceRow, *, paid: str, credited: str = "0", due: str | None = None, **extra: Any
) -> XeroInvoiceRow:
    """The Xero invoice the sync leaves for `row`, with these balance figures (due: what follows)."""
    amount_due = D(due) if due is not None else row.total - D(paid) - D(credited)
    return xero_invoice_row(
        _xero_document(row, "Invoice", "ACCREC", settled=amount_due == 0)
        | {"AmountPaid": paid, "AmountCredited": credited, "AmountDue": str(amount_due)}
        | extra
    )


def xero_note(
    row: Cin7InvoiceRow,
    *,
    allocated: str = "0",
    refunded: Sequence[str] = (),
    remaining: str | None = None,
    listed_allocations: bool = True,
    **extra: Any,
) -> XeroInvoiceRow:
    """The Xero ACCRECCREDIT for `row` with this allocation to its invoice and these refunds."""
    left = D(remaining) if remaining is not None else row.total - D(allocated) - sum((D(r) for r in refunded), D(0))
    data = _xero_document(row, "CreditNote", "ACCRECCREDIT", settled=left == 0) | {
        "RemainingCredit": str(left),
        "Payments": [{"Amount": r} for r in refunded],
    }
    if listed_allocations:
        data["Allocations"] = (
            [{"Amount": allocated, "Invoice": {"InvoiceID": "xero-inv-00001"}}] if D(allocated) else []
        )
    return xero_credit_note_row(data | extra)


def compare_sale(
    cin7: Cin7Sale, xero_invoices: list[XeroInvoiceRow], xero_notes: list[XeroInvoiceRow]
) -> list[Finding]:
    """Both comparisons of a run: invoices, then credit notes (drafts included)."""
    invoices, _ = split_cin7(cin7_invoice_rows(cin7), START, END)
    notes, _ = split_cin7(cin7_credit_note_rows(cin7), START, END, statuses=CIN7_CREDIT_NOTES_COMPARED)
    return [
        *compare(invoices, xero_invoices, ledger_for(invoices)),
        *compare(notes, xero_notes, ledger_for(notes), document=CREDIT_NOTE),
    ]


def rows_of(cin7: Cin7Sale) -> tuple[Cin7InvoiceRow, list[Cin7InvoiceRow]]:
    (invoice,) = cin7_invoice_rows(cin7)
    return invoice, cin7_credit_note_rows(cin7)


# --- a clean receivable gives no finding -----------------------------------------------------------------


def test_an_unpaid_invoice_agrees_with_nothing_paid_in_xero() -> None:
    cin7 = sale()
    invoice, _ = rows_of(cin7)
    assert (invoice.paid, invoice.credited, invoice.due) == (D("0.00"), D("0.00"), D("110.00"))
    assert compare_sale(cin7, [xero_invoice(invoice, paid="0")], []) == []


def test_a_part_paid_invoice_agrees() -> None:
    cin7 = sale(payments=["40.00", "10.005"])
    invoice, _ = rows_of(cin7)
    # Each payment counts as Xero holds it, to the cent (10.005 -> 10.01).
    assert invoice.paid == D("50.01")
    assert compare_sale(cin7, [xero_invoice(invoice, paid="50.01")], []) == []


def test_a_fully_paid_invoice_agrees_and_being_paid_in_xero_is_no_finding() -> None:
    cin7 = sale(payments=["110.00"], status="PAID")
    invoice, _ = rows_of(cin7)
    xero = xero_invoice(invoice, paid="110.00")
    assert xero.status == "PAID" and xero.paid and xero.due == 0
    assert compare_sale(cin7, [xero], []) == []


def test_a_fully_credited_invoice_agrees_with_its_credit_note() -> None:
    cin7 = sale(notes=[_note(1, "110.00")])
    invoice, (note,) = rows_of(cin7)
    assert (invoice.credited, invoice.due, note.credited, note.due) == (D("110.00"), D(0), D("110.00"), D(0))
    findings = compare_sale(
        cin7, [xero_invoice(invoice, paid="0", credited="110.00")], [xero_note(note, allocated="110.00")]
    )
    assert findings == []


def test_a_part_paid_and_part_credited_invoice_agrees() -> None:
    cin7 = sale(payments=["50.00"], notes=[_note(1, "22.00"), _note(2, "11.00", day=20)])
    invoice, notes = rows_of(cin7)
    assert (invoice.paid, invoice.credited, invoice.due) == (D("50.00"), D("33.00"), D("27.00"))
    xero_notes = [xero_note(notes[0], allocated="22.00"), xero_note(notes[1], allocated="11.00")]
    assert compare_sale(cin7, [xero_invoice(invoice, paid="50.00", credited="33.00")], xero_notes) == []


def test_a_credit_note_larger_than_what_is_owed_allocates_the_rest_and_keeps_its_remaining_credit() -> None:
    cin7 = sale(payments=["100.00"], notes=[_note(1, "22.00")])
    invoice, (note,) = rows_of(cin7)
    assert (note.credited, note.due) == (D("10.00"), D("12.00"))
    xero = [xero_invoice(invoice, paid="100.00", credited="10.00")]
    assert compare_sale(cin7, xero, [xero_note(note, allocated="10.00")]) == []


def test_an_overpaid_invoice_whose_credit_note_was_refunded_agrees() -> None:
    # Paid in full, then credited 22.00: nothing is left to allocate, and the 22.00 went back as a refund.
    cin7 = sale(payments=["110.00"], status="PAID", notes=[_note(1, "22.00", refunds=["22.00"])])
    invoice, (note,) = rows_of(cin7)
    assert (note.paid, note.credited, note.due) == (D("22.00"), D("0.00"), D("0.00"))
    xero_notes = [xero_note(note, refunded=["22.00"])]
    assert xero_notes[0].status == "PAID"
    assert compare_sale(cin7, [xero_invoice(invoice, paid="110.00")], xero_notes) == []


def test_a_listing_without_allocations_derives_them_from_the_remaining_credit() -> None:
    cin7 = sale(notes=[_note(1, "22.00", refunds=["2.00"])])
    invoice, (note,) = rows_of(cin7)
    listed = xero_note(note, allocated="20.00", refunded=["2.00"], listed_allocations=False)
    assert (listed.amount_credited, listed.amount_paid, listed.due) == (D("20.00"), D("2.00"), D("0.00"))
    assert compare_sale(cin7, [xero_invoice(invoice, paid="0", credited="20.00")], [listed]) == []


# --- balance findings --------------------------------------------------------------------------------------


def test_a_payment_missing_in_xero_is_a_balance_finding_naming_both_sides_figures() -> None:
    cin7 = sale(payments=["50.00"])
    invoice, _ = rows_of(cin7)
    (finding,) = compare_sale(cin7, [xero_invoice(invoice, paid="0")], [])
    assert finding.kind is Kind.BALANCE and finding.document == "invoice"
    assert finding.difference == {"AmountPaid": D("-50.00"), "AmountDue": D("50.00")}
    assert "Cin7 paid 50.00, credited 0.00, due 60.00" in finding.detail
    assert "Xero paid 0.00, credited 0.00, due 110.00" in finding.detail
    assert "not healed automatically" in finding.detail and not finding.healable


def test_an_allocation_missing_in_xero_is_found_on_the_invoice_and_on_the_credit_note() -> None:
    cin7 = sale(notes=[_note(1, "22.00")])
    invoice, (note,) = rows_of(cin7)
    findings = compare_sale(cin7, [xero_invoice(invoice, paid="0")], [xero_note(note)])
    assert sorted((f.kind, f.document) for f in findings) == [(Kind.BALANCE, "credit_note"), (Kind.BALANCE, "invoice")]
    on_note = next(f for f in findings if f.document == "credit_note")
    assert on_note.difference == {"AmountCredited": D("-22.00"), "AmountDue": D("22.00")}
    assert "credit note refunded/allocated differs" in on_note.detail
    assert "Cin7 refunded 0.00, allocated 22.00, remaining 0.00" in on_note.detail


def test_a_refund_missing_in_xero_is_a_balance_finding_on_the_credit_note() -> None:
    cin7 = sale(payments=["110.00"], status="PAID", notes=[_note(1, "22.00", refunds=["22.00"])])
    invoice, (note,) = rows_of(cin7)
    (finding,) = compare_sale(cin7, [xero_invoice(invoice, paid="110.00")], [xero_note(note)])
    assert finding.kind is Kind.BALANCE and finding.number == "CR-00001"
    assert finding.difference == {"AmountPaid": D("-22.00"), "AmountDue": D("22.00")}


def test_an_amount_due_that_does_not_follow_is_a_balance_finding_even_when_paid_and_credited_agree() -> None:
    invoice, _ = rows_of(sale())
    assert balance_differences(invoice, xero_invoice(invoice, paid="0", due="100.00")) == {"AmountDue": D("-10.00")}


def test_when_totals_differ_the_amount_due_is_left_to_the_totals_finding() -> None:
    cin7 = sale(payments=["50.00"])
    invoice, _ = rows_of(cin7)
    bigger = xero_invoice(replace(invoice, total=D("120.00"), subtotal=D("110.00")), paid="50.00")
    findings = compare_sale(cin7, [bigger], [])
    # Only the totals finding: being paid is normal now, but it keeps the sync from rewriting the invoice.
    (finding,) = findings
    assert finding.kind is Kind.MISMATCH and not finding.healable
    assert finding.detail.endswith(
        "; paid in Xero (AUTHORISED, 50.00 paid, 0 credited), which the sync does not change"
    )


def test_balances_of_voided_documents_are_not_compared() -> None:
    invoice, _ = rows_of(sale(status="VOIDED"))
    voided = xero_invoice(invoice, paid="0", Status="VOIDED")
    assert compare([invoice], [voided], ledger_for([invoice])) == []


# --- credit notes ----------------------------------------------------------------------------------------


def test_an_authorised_credit_note_missing_in_xero_is_found_and_healable() -> None:
    cin7 = sale(notes=[_note(1, "22.00")])
    invoice, _ = rows_of(cin7)
    findings = compare_sale(cin7, [xero_invoice(invoice, paid="0", credited="22.00")], [])
    (finding,) = findings
    assert finding.kind is Kind.MISSING_IN_XERO and finding.document == "credit_note"
    assert finding.detail.startswith("Cin7 credit note CR-00001 (AUTHORISED) has no Xero credit note")
    assert finding.healable and finding.doc_id == 1
    assert finding.as_json()["document"] == "credit_note"
    assert finding.as_json()["cin7"]["document"] == "credit_note"


def test_allocated_credit_notes_whose_totals_differ_are_rounding_or_mismatch_but_never_healable() -> None:
    cin7 = sale(notes=[_note(1, "22.00"), _note(2, "11.00", day=16)])
    invoice, notes = rows_of(cin7)
    xero_notes = [
        xero_note(notes[0], allocated="22.00", Total="22.03", TotalTax="2.03"),
        xero_note(notes[1], allocated="11.00", Total="16.00", SubTotal="15.00"),
    ]
    findings = compare_sale(cin7, [xero_invoice(invoice, paid="0", credited="33.00")], xero_notes)
    by_number = {f.number: f for f in findings}
    assert {(f.kind, f.number) for f in findings} == {(Kind.ROUNDING, "CR-00001"), (Kind.MISMATCH, "CR-00002")}
    # Allocated in Xero: the sync will not change them.
    assert "used in Xero (PAID, 11.00 allocated, 0.00 refunded)" in by_number["CR-00002"].detail
    assert not any(f.healable for f in findings)
    assert by_number["CR-00002"].difference == {"SubTotal": D("5.00"), "Total": D("5.00")}


def test_unallocated_credit_note_totals_differences_are_compared_with_the_invoice_tolerance() -> None:
    cin7 = sale(payments=["110.00"], status="PAID", notes=[_note(1, "22.00"), _note(2, "11.00", day=16)])
    invoice, notes = rows_of(cin7)
    assert [n.credited for n in notes] == [0, 0]
    xero_notes = [
        xero_note(notes[0], Total="22.03", TotalTax="2.03", RemainingCredit="22.03"),
        xero_note(notes[1], Total="16.00", SubTotal="15.00", RemainingCredit="16.00"),
    ]
    findings = compare_sale(cin7, [xero_invoice(invoice, paid="110.00")], xero_notes)
    assert sorted((f.kind, f.number) for f in findings) == [(Kind.MISMATCH, "CR-00002"), (Kind.ROUNDING, "CR-00001")]
    assert all(f.document == "credit_note" for f in findings)
    assert [f.healable for f in sorted(findings, key=lambda f: f.number)] == [False, True]  # rounding is left alone


def test_a_voided_credit_note_must_be_voided_deleted_or_absent_in_xero() -> None:
    cin7 = sale(
        notes=[
            _note(1, "22.00", status="VOIDED"),
            _note(2, "11.00", status="VOIDED"),
            _note(3, "5.50", status="VOIDED"),
        ]
    )
    invoice, notes = rows_of(cin7)
    xero_notes = [xero_note(notes[0], Status="VOIDED"), xero_note(notes[1], Status="DELETED")]
    assert compare_sale(cin7, [xero_invoice(invoice, paid="0")], xero_notes) == []
    (finding,) = compare_sale(cin7, [xero_invoice(invoice, paid="0")], [xero_note(notes[2])])
    assert finding.kind is Kind.STATUS and finding.detail == "voided in Cin7 but AUTHORISED in Xero"
    assert finding.document == "credit_note" and finding.healable


def test_a_draft_credit_note_must_be_absent_in_xero() -> None:
    cin7 = sale(notes=[_note(1, "22.00", status="DRAFT")])
    invoice, (note,) = rows_of(cin7)
    assert note.credited == 0  # a draft allocates nothing
    assert compare_sale(cin7, [xero_invoice(invoice, paid="0")], []) == []
    (finding,) = compare_sale(cin7, [xero_invoice(invoice, paid="0")], [xero_note(note)])
    assert finding.kind is Kind.STATUS and finding.detail == "draft in Cin7 but AUTHORISED in Xero"


def test_an_authorised_credit_note_voided_in_xero_is_a_status_finding() -> None:
    cin7 = sale(payments=["110.00"], status="PAID", notes=[_note(1, "22.00")])
    invoice, (note,) = rows_of(cin7)
    (finding,) = compare_sale(cin7, [xero_invoice(invoice, paid="110.00")], [xero_note(note, Status="VOIDED")])
    assert finding.kind is Kind.STATUS and finding.detail == "AUTHORISED in Cin7 but VOIDED in Xero"


def test_an_unknown_credit_note_status_says_credit_note() -> None:
    (note,) = cin7_credit_note_rows(sale(notes=[_note(1, "22.00", status="CREDITED")]))
    (finding,) = unknown_statuses([note], START, END)
    assert finding.kind is Kind.UNKNOWN_STATUS and finding.detail.startswith("Cin7 credit note CR-00001")


def test_a_xero_credit_note_with_a_cin7_number_but_no_cin7_credit_note_is_unknown() -> None:
    cin7 = sale(payments=["110.00"], status="PAID", notes=[_note(1, "22.00")])
    invoice, (note,) = rows_of(cin7)
    stray = xero_note(replace(note, number="CR-00099"), CreditNoteID="xero-stray")
    findings = compare_sale(cin7, [xero_invoice(invoice, paid="110.00")], [xero_note(note), stray])
    (finding,) = findings
    assert finding.kind is Kind.UNKNOWN_IN_XERO and finding.document == "credit_note"
    assert finding.detail.startswith("Xero credit note CR-00099 (AUTHORISED) is unknown to Cin7")
    assert "ViewCreditNote.aspx?creditNoteID=xero-stray" in finding.as_json()["xero"][0]["link"]

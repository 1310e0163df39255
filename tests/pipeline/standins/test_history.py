"""The generated two-year history (``generate_history``) and invoices seeded into the Xero stand-in as typed by hand."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests

from pipeline.standins.cin7 import DEFAULT_ACCOUNT_ID, DEFAULT_APPLICATION_KEY, Cin7StandIn
from pipeline.standins.generator import History, format_timestamp, generate_history, parse_timestamp
from pipeline.standins.generator.hand_entry import typed_invoice
from pipeline.standins.generator.tables import LOCKED_INVOICE_DATE, SPECIAL_CUSTOMERS
from pipeline.standins.xero import XeroStandIn

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CIN7_AUTH = {"api-auth-accountid": DEFAULT_ACCOUNT_ID, "api-auth-applicationkey": DEFAULT_APPLICATION_KEY}
FATES = {"create", "adopt", "conflict", "locked", "blocked", "skipped"}


@pytest.fixture(scope="module")
def history() -> History:
    return generate_history(11, 1500, now=NOW)


def day(value: str) -> date:
    return date.fromisoformat(value[:10])


def document_days(sale: dict[str, Any]) -> list[date]:
    """Every document date of a sale but the hostile locked invoice's (and its order's, just before it)."""
    invoices = sale["Invoices"]
    if invoices and day(invoices[0]["InvoiceDate"]) == LOCKED_INVOICE_DATE:
        return []
    days = [day(sale["SaleOrderDate"])]
    for inv in invoices:
        days += [day(inv["InvoiceDate"]), *(day(p["DatePaid"]) for p in inv["Payments"])]
    for note in sale["CreditNotes"]:
        days += [day(note["CreditNoteDate"]), *(day(r["DatePaid"]) for r in note["Refunds"])]
    return days


def invoice_rows(history: History) -> Iterator[tuple[dict[str, Any], Any]]:
    """(Cin7 invoice, its expectation) for every invoice of the history."""
    invoices = [inv for sale in history.dataset.sales for inv in sale["Invoices"]]
    return zip(invoices, history.dataset.expectations, strict=True)


def cin7_totals(history: History, number: str) -> tuple[Decimal, Decimal, Decimal]:
    exp = next(e for e in history.dataset.expectations if e.invoice_number == number)
    return exp.subtotal, exp.total_tax, exp.total


# --- the generated history --------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_history_and_another_seed_another() -> None:
    first, again = generate_history(4, 300, now=NOW), generate_history(4, 300, now=NOW)
    assert first.dataset.sales == again.dataset.sales
    assert first.xero_invoices == again.xero_invoices
    assert first.fates == again.fates and first.lock_date == again.lock_date == date(2024, 3, 1)
    assert generate_history(5, 300, now=NOW).dataset.sales != first.dataset.sales


def test_dates_spread_evenly_over_two_years_oldest_first_and_never_after_now(history: History) -> None:
    assert history.start == date(2023, 3, 1)
    stamps = [parse_timestamp(sale["LastModifiedOn"]) for sale in history.dataset.sales]
    assert stamps == sorted(stamps) and stamps[-1] <= NOW
    for sale, stamp in zip(history.dataset.sales, stamps, strict=True):
        days = document_days(sale)
        assert all(history.start <= d <= stamp.date() for d in days)
        # LastModifiedOn follows the sale's last document closely, not at the end of the history.
        assert not days or (stamp.date() - max(days)).days <= 26
    # Eight quarters of the two years, each with about an eighth of the invoices.
    firsts = [day(s["Invoices"][0]["InvoiceDate"]) for s in history.dataset.sales if document_days(s)[1:]]
    quarters = Counter(min(7, (d - history.start).days * 8 // 731) for d in firsts)
    assert sorted(quarters) == list(range(8))
    assert all(0.09 < n / len(firsts) < 0.16 for n in quarters.values())


def test_the_locked_invoice_is_still_dated_before_the_history_and_locked(history: History) -> None:
    locked = [inv for inv, _ in invoice_rows(history) if day(inv["InvoiceDate"]) == LOCKED_INVOICE_DATE]
    assert locked and all(history.fates[inv["InvoiceNumber"]] == "locked" for inv in locked)


def test_invoice_numbers_are_unique_and_each_one_has_a_fate(history: History) -> None:
    numbers = [inv["InvoiceNumber"] for inv, _ in invoice_rows(history)]
    assert len(numbers) == len(set(numbers))
    assert numbers == [f"INV-{i:05d}" for i in range(1, len(numbers) + 1)]  # no gaps for uninvoiced sales
    assert set(history.fates) == set(numbers) and set(history.fates.values()) == FATES


def test_fates_follow_the_lock_date_the_outcomes_and_what_was_typed_into_xero(history: History) -> None:
    typed = {inv["InvoiceNumber"] for inv in history.xero_invoices}
    for inv, exp in invoice_rows(history):
        fate, locked = history.fates[exp.invoice_number], day(inv["InvoiceDate"]) <= history.lock_date
        if exp.outcome == "ignored":
            expected = "skipped"
        elif exp.invoice_number in typed:
            assert exp.outcome == "synced"
            assert fate in ("adopt", "conflict")
            continue
        elif exp.outcome == "dead_mapping":
            expected = "blocked"
        elif locked:
            expected = "locked"
        else:
            expected = "create"  # synced, or dead_xero (JPY): the plan cannot know Xero refuses it
        assert fate == expected, (exp.invoice_number, exp.outcome, inv["InvoiceDate"])
    synced = sum(1 for e in history.dataset.expectations if e.outcome == "synced")
    counts = Counter(history.fates[n] for n in typed)
    assert counts["adopt"] == round(synced * 0.15) and counts["conflict"] == round(synced * 0.03)
    # Never a special customer's: what their hand-typed invoices should become depends on contact links.
    special = {c["ID"] for c in history.dataset.customers[: len(SPECIAL_CUSTOMERS)]}
    assert not any(e.customer_id in special for e in history.dataset.expectations if e.invoice_number in typed)
    # A mapping problem dated on or before the lock date is blocked: the plan maps it before looking at dates.
    assert any(
        history.fates[e.invoice_number] == "blocked" and day(inv["InvoiceDate"]) <= history.lock_date
        for inv, e in invoice_rows(history)
    )
    # Typed ones dated on or before the lock date are adopted or in conflict all the same.
    early = [i for i in history.xero_invoices if date.fromisoformat(i["Date"]) <= history.lock_date]
    assert {history.fates[i["InvoiceNumber"]] for i in early} == {"adopt", "conflict"}


def test_typed_invoices_carry_cin7s_totals_when_adopted_and_other_totals_in_conflict(history: History) -> None:
    for typed in history.xero_invoices:
        assert typed["Type"] == "ACCREC" and typed["Status"] == "AUTHORISED" and "Payments" not in typed
        cin7 = cin7_totals(history, typed["InvoiceNumber"])
        same = (typed["SubTotal"], typed["TotalTax"], typed["Total"]) == cin7
        assert same == (history.fates[typed["InvoiceNumber"]] == "adopt")


def test_a_four_place_invoice_typed_by_hand_takes_a_rounding_line_to_reach_cin7s_totals(history: History) -> None:
    four_dp = [
        (sale, inv)
        for sale in history.dataset.sales
        for inv in sale["Invoices"]
        if inv["Status"] == "AUTHORISED"
        and any(line["Price"].as_tuple().exponent == -4 for line in inv["Lines"])
        and inv["Total"] != round(inv["Total"], 2)
    ]
    typed = [typed_invoice(sale, inv) for sale, inv in four_dp]
    assert any(line["Description"] == "Rounding" for t in typed for line in t["LineItems"])
    xero = XeroStandIn(seed_invoices=typed)
    for inv in xero.invoices():
        assert (inv["SubTotal"], inv["TotalTax"], inv["Total"]) == cin7_totals(history, inv["InvoiceNumber"])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="years"):
        generate_history(1, 10, now=NOW, years=0)
    with pytest.raises(ValueError, match="shares"):
        generate_history(1, 10, now=NOW, pre_entered=0.9, altered=0.2)
    with pytest.raises(ValueError, match="timezone"):
        generate_history(1, 10, now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="lock date"):
        generate_history(1, 10, now=datetime(2020, 1, 1, tzinfo=UTC))


# --- the never-invoiced orders in the Cin7 stand-in --------------------------------------------------------


def test_never_invoiced_orders_list_without_an_invoice_number(history: History) -> None:
    since = format_timestamp(datetime.combine(history.start, datetime.min.time(), UTC))
    with Cin7StandIn(dataset=history.dataset) as cin7, requests.Session() as http:
        http.headers.update(CIN7_AUTH)
        rows: list[dict[str, Any]] = []
        while len(rows) < len(history.dataset.sales):
            page = {"UpdatedSince": since, "Page": str(len(rows) // 1000 + 1), "Limit": "1000"}
            rows += http.get(f"{cin7.api_url}/saleList", params=page, timeout=10).json()["SaleList"]
        bare = [row for row in rows if row["InvoiceNumber"] is None]
        assert all(row["CombinedInvoiceStatus"] == "NOT INVOICED" and row["InvoiceDate"] is None for row in bare)
        assert 0.07 < len(bare) / len(rows) < 0.13
        detail = http.get(f"{cin7.api_url}/sale", params={"ID": bare[0]["SaleID"]}, timeout=10).json()
        assert detail["Invoices"] == [] and detail["Order"]["Lines"] and detail["Status"] == "ORDERED"


# --- invoices seeded into the Xero stand-in ---------------------------------------------------------------


def test_seeded_invoices_are_in_xero_with_the_totals_their_fates_say(history: History) -> None:
    xero = XeroStandIn(
        seed_contacts=history.dataset.xero_contacts,
        seed_invoices=history.xero_invoices,
        period_lock_date=history.lock_date,
    )
    seeded = {inv["InvoiceNumber"]: inv for inv in xero.invoices()}
    assert set(seeded) == {inv["InvoiceNumber"] for inv in history.xero_invoices}
    for number, inv in seeded.items():
        totals = (inv["SubTotal"], inv["TotalTax"], inv["Total"])
        assert (totals == cin7_totals(history, number)) == (history.fates[number] == "adopt")
        assert inv["Status"] == "AUTHORISED" and inv["AmountPaid"] == 0 and inv["Payments"] == []
    customers = {s["Customer"].strip() for s in history.dataset.sales}
    assert {inv["Contact"]["Name"] for inv in seeded.values()} <= customers
    assert xero.stats()["calls"] == 0
    xero.reset()
    assert sorted(i["InvoiceNumber"] for i in xero.invoices()) == sorted(seeded)


def test_seeding_over_http_is_all_or_nothing_and_never_counted() -> None:
    history = generate_history(2, 200, now=NOW)
    typed = history.xero_invoices
    assert any(date.fromisoformat(i["Date"]) <= history.lock_date for i in typed)
    with XeroStandIn(period_lock_date=history.lock_date) as xero:
        url = xero.url + "/_standin/invoices"
        answer = requests.post(url, data=json.dumps({"Invoices": typed}, default=str), timeout=10)
        assert answer.status_code == 200
        assert [i["InvoiceNumber"] for i in answer.json()] == [i["InvoiceNumber"] for i in typed]
        assert [Decimal(i["Total"]) for i in answer.json()] == [i["Total"] for i in typed]
        # A number Xero has already refuses the whole batch: the new invoice before it is not seeded either.
        batch = [typed[0] | {"InvoiceNumber": "HAND-1"}, typed[1]]
        again = requests.post(url, data=json.dumps(batch, default=str), timeout=10)
        assert again.status_code == 400 and "Invoice 1: Invoice # must be unique" in again.json()["error"]
        assert requests.post(url, data=b'{"Invoices": 3}', timeout=10).status_code == 400
        assert [i["InvoiceNumber"] for i in requests.get(url, timeout=10).json()] == [i["InvoiceNumber"] for i in typed]
        assert requests.get(xero.url + "/_standin/stats", timeout=10).json()["calls"] == 0

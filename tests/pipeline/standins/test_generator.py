"""The seeded Cin7 data generator: determinism, the amount conventions, and the hostile cases."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from pipeline.standins.generator import (
    TAX_RULES,
    Dataset,
    edit_invoice,
    generate,
    parse_timestamp,
    sale_list_row,
    void_invoice,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RATES = {
    "GST on Income": Decimal("0.1"),
    "GST Free Income": Decimal(0),
    "GST Free Exports": Decimal(0),
    "BAS Excluded": Decimal(0),
    "Zero Rated Imports": Decimal(0),
    "Tax on Sales": Decimal(0),
}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(11, 600, now=NOW)


def cents(value: Decimal, places: int = 2) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _places(doc: dict[str, Any]) -> int:
    # A 4-dp invoice (Cin7 keeps amounts to 4 places) has line totals or tax that are not whole cents.
    amounts = [Decimal(line[key]) for line in doc["Lines"] + doc["AdditionalCharges"] for key in ("Total", "Tax")]
    return 4 if any(amount != cents(amount) for amount in amounts) else 2


def independent_totals(doc: dict[str, Any], calculation: str, places: int = 2) -> tuple[Decimal, Decimal, Decimal]:
    """Recompute (TotalBeforeTax, Tax, Total) from the conventions, checking each line on the way."""
    line_total_sum = Decimal(0)
    tax_sum = Decimal(0)
    for line in doc["Lines"] + doc["AdditionalCharges"]:
        q, p, d = Decimal(line["Quantity"]), Decimal(line["Price"]), Decimal(line["Discount"])
        total = cents(q * p * (1 - d / 100), places)
        rate = RATES[line["TaxRule"]]
        tax = cents(total * rate / (1 + rate), places) if calculation == "Inclusive" else cents(total * rate, places)
        assert line["Total"] == total, line
        assert line["Tax"] == tax, line
        line_total_sum += total
        tax_sum += tax
    if calculation == "Inclusive":
        return line_total_sum - tax_sum, tax_sum, line_total_sum
    return line_total_sum, tax_sum, line_total_sum + tax_sum


def all_invoices(ds: Dataset) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(sale, inv) for sale in ds.sales for inv in sale["Invoices"]]


def test_same_seed_count_and_now_give_an_identical_dataset() -> None:
    assert generate(5, 120, now=NOW) == generate(5, 120, now=NOW)


def test_a_different_seed_gives_different_data() -> None:
    assert generate(5, 120, now=NOW).sales != generate(6, 120, now=NOW).sales


def test_every_invoice_and_order_total_obeys_the_amount_conventions(dataset: Dataset) -> None:
    for sale, invoice in all_invoices(dataset):
        calc = sale["TaxCalculation"]
        expected = independent_totals(invoice, calc, _places(invoice))
        assert (invoice["TotalBeforeTax"], invoice["Tax"], invoice["Total"]) == expected
        order = sale["Order"]
        assert (order["TotalBeforeTax"], order["Tax"], order["Total"]) == independent_totals(order, calc)


def test_amounts_are_decimals_with_at_most_four_places(dataset: Dataset) -> None:
    for _, invoice in all_invoices(dataset):
        for line in invoice["Lines"]:
            for key in ("Quantity", "Price", "Discount", "Tax", "Total"):
                assert isinstance(line[key], Decimal)
                exponent = line[key].as_tuple().exponent
                assert isinstance(exponent, int) and -exponent <= 4


def test_the_data_mixes_calculations_currencies_rounding_traps_and_split_invoices(dataset: Dataset) -> None:
    sales = dataset.sales
    assert {s["TaxCalculation"] for s in sales} == {"Inclusive", "Exclusive"}
    assert {"NZD", "USD"} <= {s["CustomerCurrency"] for s in sales}
    lines = [line for _, inv in all_invoices(dataset) for line in inv["Lines"]]
    assert any(-line["Price"].as_tuple().exponent == 4 for line in lines)
    assert any(line["Quantity"] != line["Quantity"].to_integral_value() for line in lines)
    assert {Decimal(5), Decimal(10), Decimal("12.5")} <= {line["Discount"] for line in lines}
    assert any(inv["AdditionalCharges"] for _, inv in all_invoices(dataset))
    assert any(len(s["Invoices"]) == 2 and s["Type"] == "Advanced Sale" for s in sales)
    assert any(inv["InvoiceDueDate"] is None for _, inv in all_invoices(dataset))
    statuses = Counter(inv["Status"] for _, inv in all_invoices(dataset))
    assert {"AUTHORISED", "PAID", "DRAFT", "VOIDED"} <= set(statuses)


def test_invoice_numbers_and_task_ids_are_unique(dataset: Dataset) -> None:
    invoices = [inv for _, inv in all_invoices(dataset)]
    assert len({inv["InvoiceNumber"] for inv in invoices}) == len(invoices)
    assert len({inv["TaskID"] for inv in invoices}) == len(invoices)


def test_paid_invoices_carry_one_payment_of_the_total(dataset: Dataset) -> None:
    paid = [inv for _, inv in all_invoices(dataset) if inv["Status"] == "PAID"]
    assert paid
    for inv in paid:
        assert [p["Amount"] for p in inv["Payments"]] == [inv["Total"]]
        assert inv["Paid"] == inv["Total"]


def test_expectations_cover_every_invoice_with_cin7_totals(dataset: Dataset) -> None:
    by_task = {e.task_id: e for e in dataset.expectations}
    invoices = all_invoices(dataset)
    assert len(by_task) == len(invoices)
    for sale, inv in invoices:
        exp = by_task[inv["TaskID"]]
        # What Xero must show: Cin7's Tax and Total to the cent, the subtotal between them.
        total, tax = cents(inv["Total"]), cents(inv["Tax"])
        assert (exp.subtotal, exp.total_tax, exp.total) == (total - tax, tax, total)
        if _places(inv) == 2:
            assert (exp.subtotal, exp.total_tax, exp.total) == (inv["TotalBeforeTax"], inv["Tax"], inv["Total"])
        assert exp.customer_id == sale["CustomerID"]
        if inv["Status"] in ("DRAFT", "VOIDED"):
            assert exp.outcome == "ignored"


def test_each_hostile_case_is_present_with_its_expected_outcome(dataset: Dataset) -> None:
    by_task = {e.task_id: e for e in dataset.expectations}
    found: Counter[str] = Counter()
    for sale, inv in all_invoices(dataset):
        exp = by_task[inv["TaskID"]]
        if any(line["TaxRule"] == "Zero Rated Imports" for line in inv["Lines"]):
            assert exp.outcome == "dead_mapping" and "Zero Rated Imports" in exp.reason
            found["tax"] += 1
        if any(line["Account"] == "999" for line in inv["Lines"]):
            assert exp.outcome == "dead_mapping" and "999" in exp.reason
            found["account"] += 1
        if sale["CustomerCurrency"] == "JPY":
            assert exp.outcome == "dead_xero" and exp.reason == "currency JPY not enabled in Xero"
            found["jpy"] += 1
        if inv["InvoiceDate"] == "2019-05-10T00:00:00":
            assert exp.outcome == "dead_xero" and "2020-06-30" in exp.reason
            found["lock"] += 1
        if any(line["TaxRule"] == "Tax on Sales" for line in inv["Lines"]):
            assert exp.outcome == "dead_mapping" and "is 0% in Cin7 but maps to OUTPUT" in exp.reason
            found["zero_rate_as_gst"] += 1
        if _places(inv) == 4:
            # Still synced: a rounding line makes Xero's 2-dp totals Cin7's.
            assert exp.outcome == "synced"
            found["four_dp"] += 1
    assert set(found) == {"tax", "account", "jpy", "lock", "zero_rate_as_gst", "four_dp"}
    assert all(1 <= n <= 0.03 * len(dataset.sales) for n in found.values())


def test_hostile_cases_appear_at_fifty_sales_and_vanish_when_disabled() -> None:
    outcomes = Counter(e.outcome for e in generate(1, 50, now=NOW).expectations)
    assert outcomes["dead_mapping"] >= 2 and outcomes["dead_xero"] >= 2
    tame = generate(1, 50, now=NOW, hostile=False)
    assert {e.outcome for e in tame.expectations} <= {"synced", "ignored"}


def test_several_sales_share_the_exact_same_updated_millisecond(dataset: Dataset) -> None:
    counts = Counter(s["LastModifiedOn"] for s in dataset.sales)
    groups = [n for n in counts.values() if n >= 3]
    assert len(groups) >= 2


def test_timestamps_fall_within_three_days_before_now_in_cin7_format(dataset: Dataset) -> None:
    for sale in dataset.sales:
        stamp = sale["LastModifiedOn"]
        assert len(stamp) == 24 and stamp.endswith("Z") and stamp[19] == "."
        assert NOW - timedelta(days=3) <= parse_timestamp(stamp) <= NOW
        assert len(sale["Invoices"][0]["InvoiceDate"]) == 19  # yyyy-MM-ddT00:00:00, no zone


def test_two_customers_share_the_name_smith_trading(dataset: Dataset) -> None:
    smiths = [c for c in dataset.customers if c["Name"] == "Smith Trading"]
    assert len(smiths) == 2 and smiths[0]["ID"] != smiths[1]["ID"]
    names = {c["Name"] for c in dataset.customers}
    assert {"O'Brien & Sons", 'Zoë\'s "Best" Café', "Ngā Tamariki Ltd"} <= names
    assert any(c["Name"] != c["Name"].strip() for c in dataset.customers)
    emails = [c["Contacts"][0]["Email"] for c in dataset.customers]
    assert "o'brien@example.com" in emails
    assert any(e != e.lower() for e in emails)


def test_repeat_buyers_exist_and_ids_are_lowercase(dataset: Dataset) -> None:
    per_customer = Counter(s["CustomerID"] for s in dataset.sales)
    assert per_customer.most_common(1)[0][1] >= 10
    for sale in dataset.sales:
        assert sale["ID"] == sale["ID"].lower() and sale["CustomerID"] == sale["CustomerID"].lower()
    customer_ids = {c["ID"] for c in dataset.customers}
    assert set(per_customer) <= customer_ids


def test_xero_seed_contacts_target_real_customers(dataset: Dataset) -> None:
    by_id = {c["ID"]: c for c in dataset.customers}
    by_email = {c["Contacts"][0]["Email"].lower(): c for c in dataset.customers}
    by_number = [x for x in dataset.xero_contacts if x.get("ContactNumber")]
    assert len(by_number) == 1 and by_number[0]["ContactNumber"] in by_id
    email_one = next(x for x in dataset.xero_contacts if not x.get("ContactNumber") and x["ContactStatus"] == "ACTIVE")
    target = by_email[email_one["EmailAddress"].lower()]
    assert email_one["EmailAddress"] != target["Contacts"][0]["Email"]
    archived = next(x for x in dataset.xero_contacts if x["ContactStatus"] == "ARCHIVED")
    assert archived["Name"] in {c["Name"] for c in dataset.customers}
    buyers = {s["CustomerID"] for s in dataset.sales}
    assert {target["ID"], by_number[0]["ContactNumber"]} <= buyers


def test_edit_invoice_recomputes_totals_consistently_and_bumps_last_modified(dataset: Dataset) -> None:
    sale = next(
        s
        for s in dataset.sales
        if s["Invoices"][0]["Status"] == "AUTHORISED"
        and s["TaxCalculation"] == "Exclusive"
        and s["Invoices"][0]["Lines"][0]["TaxRule"] == "GST on Income"
    )
    invoice = sale["Invoices"][0]
    later = NOW + timedelta(hours=1)
    edited = edit_invoice(sale, invoice["TaskID"].upper(), now=later, quantity_delta=2)
    new_invoice = edited["Invoices"][0]
    old_line, new_line = invoice["Lines"][0], new_invoice["Lines"][0]
    assert new_line["Quantity"] == old_line["Quantity"] + 2
    assert new_invoice["Total"] > invoice["Total"]
    assert (new_invoice["TotalBeforeTax"], new_invoice["Tax"], new_invoice["Total"]) == independent_totals(
        new_invoice, "Exclusive"
    )
    assert edited["Order"]["Total"] == sum(i["Total"] for i in edited["Invoices"])
    assert edited["LastModifiedOn"] == "2024-05-01T13:00:00.000Z"
    assert sale_list_row(edited)["Updated"] == edited["LastModifiedOn"]
    assert sale["Invoices"][0]["Total"] == invoice["Total"]  # the input is not mutated


def test_void_invoice_marks_the_invoice_and_sale_voided(dataset: Dataset) -> None:
    sale = next(s for s in dataset.sales if len(s["Invoices"]) == 1 and s["Invoices"][0]["Status"] == "AUTHORISED")
    voided = void_invoice(sale, sale["Invoices"][0]["TaskID"], now=NOW)
    assert voided["Invoices"][0]["Status"] == "VOIDED"
    assert voided["Status"] == "VOIDED"
    assert sale_list_row(voided)["InvoiceAmount"] == 0


def test_tax_rules_include_the_unknown_one_with_known_rates() -> None:
    assert TAX_RULES["GST on Income"] == Decimal("0.1")
    assert "Zero Rated Imports" in TAX_RULES


def test_generating_five_thousand_sales_is_fast() -> None:
    start = time.perf_counter()
    ds = generate(3, 5000, now=NOW)
    assert time.perf_counter() - start < 2.0
    assert len(ds.sales) == 5000

"""The seeded Cin7 data generator: determinism, the amount conventions, and the hostile cases."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from pipeline.standins.generator import (
    TAX_RULES,
    Dataset,
    add_credit_note,
    add_payment,
    add_refund,
    edit_invoice,
    generate,
    parse_timestamp,
    remove_payment,
    sale_list_row,
    void_credit_note,
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


def allocations(sale: dict[str, Any], inv: dict[str, Any]) -> dict[str, Decimal]:
    """The allocation rule, written out again: credit note number -> amount applied to ``inv``."""
    notes = sorted(
        (cn for cn in sale["CreditNotes"] if cn["CreditNoteInvoiceNumber"] == inv["InvoiceNumber"]),
        key=lambda cn: (cn["CreditNoteDate"], cn["CreditNoteNumber"]),
    )
    open_amount = inv["Total"] - sum((p["Amount"] for p in inv["Payments"]), Decimal(0))
    result = {}
    for cn in notes:
        if cn["Status"] != "AUTHORISED" or inv["Status"] not in ("AUTHORISED", "PAID"):
            continue
        refunds = sum((r["Amount"] for r in cn["Refunds"]), Decimal(0))
        result[cn["CreditNoteNumber"]] = max(Decimal(0), min(cn["Total"] - refunds, open_amount))
        open_amount -= result[cn["CreditNoteNumber"]]
    return result


def allocated(sale: dict[str, Any], inv: dict[str, Any]) -> Decimal:
    return sum(allocations(sale, inv).values(), Decimal(0))


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


def test_paid_invoices_are_settled_by_their_payments_and_credit(dataset: Dataset) -> None:
    paid = [(sale, inv) for sale, inv in all_invoices(dataset) if inv["Status"] == "PAID"]
    assert paid
    for sale, inv in paid:
        money = sum((p["Amount"] for p in inv["Payments"]), Decimal(0))
        assert inv["Paid"] == money
        assert money + allocated(sale, inv) == inv["Total"]
    assert any(len(inv["Payments"]) == 1 and inv["Payments"][0]["Amount"] == inv["Total"] for _, inv in paid)


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
            assert exp.outcome == "locked" and "2020-06-30" in exp.reason
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
    assert outcomes["dead_mapping"] >= 2 and outcomes["dead_xero"] >= 1 and outcomes["locked"] >= 1
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


# --- payments, refunds and credit notes -------------------------------------------------------------------


@pytest.fixture(scope="module")
def settled() -> Dataset:
    return generate(13, 400, now=NOW)


def day(value: str) -> date:
    return date.fromisoformat(value[:10])


def scenario_of(sale: dict[str, Any], inv: dict[str, Any]) -> str | None:
    """Which settlement scenario an invoice shows, read from the data alone."""
    notes = [cn for cn in sale["CreditNotes"] if cn["CreditNoteInvoiceNumber"] == inv["InvoiceNumber"]]
    paid = sum((p["Amount"] for p in inv["Payments"]), Decimal(0))
    statuses = {cn["Status"] for cn in notes}
    authorised = [cn for cn in notes if cn["Status"] == "AUTHORISED"]
    if "VOIDED" in statuses:
        return "voided_credit_note"
    if "DRAFT" in statuses:
        return "draft_credit_note"
    if authorised and any(cn["Refunds"] for cn in authorised) and paid == inv["Total"]:
        return "refunded"
    if authorised and not inv["Payments"] and authorised[0]["Total"] == inv["Total"]:
        return "credited"
    if authorised and paid > 0 and paid + authorised[0]["Total"] == inv["Total"]:
        return "part_credited"
    if not notes and 0 < paid < inv["Total"] and len(inv["Payments"]) <= 2:
        return "part_paid"
    if not notes and paid == inv["Total"] and len(inv["Payments"]) in (2, 3):
        return "paid_split"
    return None


def test_settlement_is_deterministic_by_seed() -> None:
    first, again = generate(8, 400, now=NOW), generate(8, 400, now=NOW)
    assert first == again
    assert first.credit_notes and first.payments
    assert generate(9, 400, now=NOW).credit_notes != first.credit_notes


def test_every_scenario_is_present_in_aud_and_in_foreign_currency(settled: Dataset) -> None:
    found: Counter[tuple[str, str]] = Counter()
    for sale, inv in all_invoices(settled):
        scenario = scenario_of(sale, inv)
        if scenario:
            found[(scenario, "AUD" if sale["CustomerCurrency"] == "AUD" else "foreign")] += 1
    scenarios = {"part_paid", "paid_split", "credited", "part_credited", "refunded"}
    scenarios |= {"draft_credit_note", "voided_credit_note"}
    assert {(s, g) for s in scenarios for g in ("AUD", "foreign")} <= set(found), found
    # Realistic shares of the sales, not a dataset made only of edge cases.
    n = len(settled.sales)
    with_money = sum(any(inv["Payments"] for inv in s["Invoices"]) for s in settled.sales)
    credited = sum(any(cn["Status"] == "AUTHORISED" for cn in s["CreditNotes"]) for s in settled.sales)
    refunded = sum(any(cn["Refunds"] for cn in s["CreditNotes"]) for s in settled.sales)
    assert 0.18 * n <= with_money <= 0.40 * n
    assert 0.04 * n <= credited <= 0.18 * n
    assert 1 <= refunded <= 0.08 * n


def test_sale_statuses_follow_the_settlement(settled: Dataset) -> None:
    singles = [(s, s["Invoices"][0]) for s in settled.sales if len(s["Invoices"]) == 1]
    seen = set()
    for sale, inv in singles:
        scenario = scenario_of(sale, inv)
        if scenario == "part_paid":
            assert inv["Status"] == "AUTHORISED" and sale["CombinedPaymentStatus"] == "PARTIALLY PAID"
        elif scenario in ("paid_split", "credited", "part_credited", "refunded"):
            assert inv["Status"] == "PAID" and sale["CombinedPaymentStatus"] == "PAID"
        if scenario in ("credited", "part_credited", "refunded"):
            assert sale["CombinedInvoiceStatus"] == "INVOICED / CREDITED"
        elif scenario in ("draft_credit_note", "voided_credit_note"):
            assert inv["Status"] == "AUTHORISED" and sale["CombinedInvoiceStatus"] == "INVOICED"
        seen.add(scenario)
    assert {"part_paid", "credited", "voided_credit_note"} <= seen


def test_credit_notes_have_cin7_shape_and_invoice_totals_rules(settled: Dataset) -> None:
    notes = [(sale, cn) for sale in settled.sales for cn in sale["CreditNotes"]]
    assert notes
    for sale, cn in notes:
        inv = next(i for i in sale["Invoices"] if i["InvoiceNumber"] == cn["CreditNoteInvoiceNumber"])
        expected = independent_totals(cn, sale["TaxCalculation"], _places(cn))
        assert (cn["TotalBeforeTax"], cn["Tax"], cn["Total"]) == expected
        assert 0 < cn["Total"] <= inv["Total"]
        assert all(line["Quantity"] > 0 for line in cn["Lines"] + cn["AdditionalCharges"])
        assert cn["Status"] in ("AUTHORISED", "DRAFT", "VOIDED") and cn["Restock"] == []
        assert cn["CreditNoteConversionRate"] == sale["CurrencyRate"] == inv["CurrencyConversionRate"]
        assert day(inv["InvoiceDate"]) <= day(cn["CreditNoteDate"]) <= parse_timestamp(sale["LastModifiedOn"]).date()
        assert set(cn) >= {"TaskID", "CreditNoteNumber", "Memo", "Refunds", "AdditionalCharges"}
    numbers = [cn["CreditNoteNumber"] for _, cn in notes]
    assert len(set(numbers)) == len(numbers)
    assert all(len(n) == 8 and n.startswith("CR-") and n[3:].isdigit() for n in numbers)
    assert len({cn["TaskID"] for _, cn in notes}) == len(notes)


def test_payments_and_refunds_are_dated_in_range_in_customer_currency(settled: Dataset) -> None:
    lines = []
    for sale in settled.sales:
        modified = parse_timestamp(sale["LastModifiedOn"])
        for inv in sale["Invoices"]:
            lines += [(sale, p, day(inv["InvoiceDate"]), modified) for p in inv["Payments"]]
        for cn in sale["CreditNotes"]:
            lines += [(sale, r, day(cn["CreditNoteDate"]), modified) for r in cn["Refunds"]]
    assert lines
    for sale, line, earliest, modified in lines:
        assert earliest <= day(line["DatePaid"]) <= modified.date()
        assert parse_timestamp(line["DateCreated"]) <= modified
        assert line["Amount"] > 0 and line["Amount"] == cents(line["Amount"])
        assert line["CurrencyRate"] == sale["CurrencyRate"] and line["Account"] == "090"
    ids = [line["ID"] for _, line, _, _ in lines]
    assert len(set(ids)) == len(ids)
    for _, inv in all_invoices(settled):
        if len(inv["Payments"]) > 1:
            assert len({p["Reference"] for p in inv["Payments"]}) == len(inv["Payments"])


def test_expected_amounts_follow_the_allocation_rule(settled: Dataset) -> None:
    by_task = {e.task_id: e for e in settled.expectations}
    for sale, inv in all_invoices(settled):
        exp = by_task[inv["TaskID"]]
        if exp.outcome != "synced":
            assert not inv["Payments"] and not [
                cn for cn in sale["CreditNotes"] if cn["CreditNoteInvoiceNumber"] == inv["InvoiceNumber"]
            ]
            continue
        paid = sum((p["Amount"] for p in inv["Payments"]), Decimal(0))
        assert (exp.amount_paid, exp.amount_credited) == (paid, allocated(sale, inv))
        assert exp.amount_due == exp.total - exp.amount_paid - exp.amount_credited >= 0
        assert inv["Status"] == ("PAID" if exp.amount_due == 0 and (paid or exp.amount_credited) else "AUTHORISED")
    voided = [e for e in settled.expectations if e.outcome == "synced" and e.amount_due == e.total]
    assert voided  # unpaid invoices keep their whole total due, VOIDED/DRAFT credit notes included


def test_credit_note_expectations_match_allocations_and_refunds(settled: Dataset) -> None:
    sales = {s["ID"]: s for s in settled.sales}
    assert len(settled.credit_notes) == sum(len(s["CreditNotes"]) for s in settled.sales)
    for exp in settled.credit_notes:
        sale = sales[exp.sale_id]
        cn = next(c for c in sale["CreditNotes"] if c["TaskID"] == exp.task_id)
        inv = next(i for i in sale["Invoices"] if i["InvoiceNumber"] == exp.invoice_number)
        assert (exp.credit_note_number, exp.status, exp.customer_id) == (
            cn["CreditNoteNumber"],
            cn["Status"],
            sale["CustomerID"],
        )
        assert (exp.subtotal, exp.total_tax, exp.total) == (cn["TotalBeforeTax"], cn["Tax"], cn["Total"])
        assert exp.outcome == ("synced" if cn["Status"] == "AUTHORISED" else "ignored")
        assert exp.allocated == allocations(sale, inv).get(cn["CreditNoteNumber"], Decimal(0))
        assert exp.refunded == sum((r["Amount"] for r in cn["Refunds"]), Decimal(0))
        assert exp.remaining_credit == exp.total - exp.allocated - exp.refunded >= 0
        if cn["Status"] != "AUTHORISED":
            assert exp.allocated == 0
    assert {e.status for e in settled.credit_notes} == {"AUTHORISED", "DRAFT", "VOIDED"}


def test_payment_expectations_list_every_payment_and_refund_of_synced_documents(settled: Dataset) -> None:
    synced = {e.task_id for e in settled.expectations if e.outcome == "synced"}
    wanted = set()
    for sale in settled.sales:
        for inv in sale["Invoices"]:
            if inv["TaskID"] in synced:
                wanted |= {(p["ID"], inv["InvoiceNumber"], "payment", p["Amount"]) for p in inv["Payments"]}
        for cn in sale["CreditNotes"]:
            if cn["Status"] == "AUTHORISED":
                wanted |= {(r["ID"], cn["CreditNoteNumber"], "refund", r["Amount"]) for r in cn["Refunds"]}
    got = {(e.payment_id, e.document_number, e.kind, e.amount) for e in settled.payments}
    assert got == wanted and len(settled.payments) == len(wanted)
    assert {e.kind for e in settled.payments} == {"payment", "refund"}
    assert all(e.account == "090" and e.reference for e in settled.payments)


def test_hostile_and_special_sales_carry_no_payments_or_credit(settled: Dataset) -> None:
    dead = {e.sale_id for e in settled.expectations if e.outcome.startswith("dead")}
    assert dead
    for sale in settled.sales[:8]:
        assert not sale["CreditNotes"] and not sale["Invoices"][0]["Payments"]
    for sale in (s for s in settled.sales if s["ID"] in dead):
        assert not sale["CreditNotes"] and not any(inv["Payments"] for inv in sale["Invoices"])


def test_invoice_numbers_stay_contiguous_and_each_credit_note_mirrors_its_invoice(settled: Dataset) -> None:
    numbers = [inv["InvoiceNumber"] for _, inv in all_invoices(settled)]
    for sale in settled.sales:
        for cn in sale["CreditNotes"]:
            assert cn["CreditNoteNumber"][3:] == cn["CreditNoteInvoiceNumber"][4:]
    assert numbers == [f"INV-{i:05d}" for i in range(1, len(numbers) + 1)]


def _plain_sale(ds: Dataset) -> dict[str, Any]:
    return next(
        s
        for s in ds.sales
        if len(s["Invoices"]) == 1
        and s["Invoices"][0]["Status"] == "AUTHORISED"
        and not s["Invoices"][0]["Payments"]
        and not s["CreditNotes"]
        and len(s["Invoices"][0]["Lines"]) >= 2
        and s["Invoices"][0]["Total"] > 50
    )


def test_payment_helpers_part_pay_then_pay_off_then_remove(dataset: Dataset) -> None:
    sale = _plain_sale(dataset)
    inv = sale["Invoices"][0]
    later = NOW + timedelta(hours=1)
    part, first = add_payment(sale, inv["TaskID"], Decimal("10.00"), now=later)
    assert part["Invoices"][0]["Status"] == "AUTHORISED" and part["Invoices"][0]["Paid"] == Decimal("10.00")
    assert part["CombinedPaymentStatus"] == "PARTIALLY PAID" and part["LastModifiedOn"] == "2024-05-01T13:00:00.000Z"
    assert first["Amount"] == Decimal("10.00") and first["CurrencyRate"] == sale["CurrencyRate"]
    assert day(first["DatePaid"]) == later.date() and sale["Invoices"][0]["Payments"] == []  # input untouched
    with pytest.raises(ValueError, match="exceeds"):
        add_payment(part, inv["TaskID"], inv["Total"], now=later)
    with pytest.raises(ValueError, match="2 dp"):
        add_payment(part, inv["TaskID"], Decimal("0.001"), now=later)
    full, _ = add_payment(part, inv["TaskID"], inv["Total"] - Decimal("10.00"), now=later)
    assert full["Invoices"][0]["Status"] == "PAID" and full["CombinedPaymentStatus"] == "PAID"
    assert sale_list_row(full)["PaidAmount"] == inv["Total"]
    with pytest.raises(ValueError, match="payments or credit notes"):
        edit_invoice(full, inv["TaskID"], now=later)
    with pytest.raises(ValueError, match="payments or credit notes"):
        void_invoice(full, inv["TaskID"], now=later)
    back = remove_payment(full, first["ID"], now=later + timedelta(minutes=1))
    assert back["Invoices"][0]["Status"] == "AUTHORISED" and back["CombinedPaymentStatus"] == "PARTIALLY PAID"
    assert back["LastModifiedOn"] == "2024-05-01T13:01:00.000Z"
    with pytest.raises(KeyError):
        remove_payment(back, first["ID"], now=later)


def test_credit_note_helpers_credit_void_and_refund(dataset: Dataset) -> None:
    sale = _plain_sale(dataset)
    inv = sale["Invoices"][0]
    later = NOW + timedelta(hours=2)
    credited, cn = add_credit_note(sale, inv["TaskID"], now=later)
    assert cn["Total"] == inv["Total"] and cn["Status"] == "AUTHORISED"
    assert cn["CreditNoteInvoiceNumber"] == inv["InvoiceNumber"] and cn["CreditNoteDate"] == "2024-05-01T00:00:00"
    assert credited["Invoices"][0]["Status"] == "PAID" and credited["Invoices"][0]["Paid"] == 0
    assert credited["CombinedInvoiceStatus"] == "INVOICED / CREDITED"
    # A refund may only pay back credit that is not applied to the invoice.
    with pytest.raises(ValueError, match="unused credit"):
        add_refund(credited, cn["TaskID"], Decimal("1.00"), now=later)
    voided = void_credit_note(credited, cn["TaskID"], now=later)
    assert voided["Invoices"][0]["Status"] == "AUTHORISED" and voided["CombinedInvoiceStatus"] == "INVOICED"
    assert allocated(voided, voided["Invoices"][0]) == 0

    paid, _ = add_payment(sale, inv["TaskID"], inv["Total"], now=later)
    returned, part = add_credit_note(paid, inv["TaskID"], now=later, lines=[1], fraction=Decimal("0.5"))
    assert part["AdditionalCharges"] == [] and len(part["Lines"]) == 1
    assert part["Lines"][0]["Quantity"] == cents(inv["Lines"][1]["Quantity"] * Decimal("0.5"), 4)
    assert (part["TotalBeforeTax"], part["Tax"], part["Total"]) == independent_totals(
        part, sale["TaxCalculation"], _places(part)
    )
    assert returned["CombinedPaymentStatus"] == "NOT REFUNDED"  # overpaid: credit owed to the customer
    assert allocated(returned, returned["Invoices"][0]) == 0
    refunded, refund = add_refund(returned, part["TaskID"], part["Total"], now=later)
    assert refund["Amount"] == part["Total"] and refunded["CombinedPaymentStatus"] == "PAID"
    assert [c["CreditNoteNumber"] for c in refunded["CreditNotes"]] == ["CR-" + inv["InvoiceNumber"][4:]]
    with pytest.raises(ValueError, match="refunds"):
        void_credit_note(refunded, part["TaskID"], now=later)
    draft, note = add_credit_note(sale, inv["TaskID"], now=later, authorised=False)
    assert note["Status"] == "DRAFT" and allocated(draft, draft["Invoices"][0]) == 0
    assert draft["Invoices"][0]["Status"] == "AUTHORISED"


def test_several_credit_notes_are_allocated_in_date_then_number_order(dataset: Dataset) -> None:
    sale = _plain_sale(dataset)
    inv = sale["Invoices"][0]
    later = NOW + timedelta(hours=3)
    one, first = add_credit_note(sale, inv["TaskID"], now=later, fraction=Decimal("0.75"))
    two, second = add_credit_note(one, inv["TaskID"], now=later, fraction=Decimal("0.75"))
    assert first["CreditNoteNumber"] != second["CreditNoteNumber"]
    shares = allocations(two, two["Invoices"][0])
    assert shares[first["CreditNoteNumber"]] == first["Total"]
    assert shares[second["CreditNoteNumber"]] == inv["Total"] - first["Total"] < second["Total"]
    assert two["Invoices"][0]["Status"] == "PAID" and two["CombinedPaymentStatus"] == "NOT REFUNDED"

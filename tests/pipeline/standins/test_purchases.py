"""Suppliers and purchases: the Cin7 stand-in's endpoints over real HTTP, and the generator behind them."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from pipeline.standins.cin7 import Cin7StandIn, dumps
from pipeline.standins.generator import (
    TAX_RULES,
    Dataset,
    PurchaseSet,
    format_timestamp,
    generate,
    generate_purchases,
    parse_timestamp,
    recompute_invoice_totals,
    with_purchases,
)
from pipeline.standins.generator.purchase_documents import bill_number, bills_of, credit_notes_of
from pipeline.standins.generator.purchases import COVERAGE_MIN_PURCHASES
from pipeline.standins.generator.suppliers import abn_is_valid
from tests.pipeline.standins.test_cin7 import AUTH, NOW, get


@pytest.fixture(scope="module")
def sales() -> Dataset:
    return generate(7, 120, now=NOW)


@pytest.fixture(scope="module")
def purchases(sales: Dataset) -> PurchaseSet:
    return generate_purchases(7, 300, now=NOW, customers=sales.customers)


@pytest.fixture(scope="module")
def world(sales: Dataset, purchases: PurchaseSet) -> Dataset:
    return with_purchases(sales, purchases)


@pytest.fixture
def cin7(world: Dataset) -> Iterator[Cin7StandIn]:
    with Cin7StandIn(dataset=world) as standin:
        yield standin


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(AUTH)
        yield session


def body(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


def walk(http: requests.Session, cin7: Cin7StandIn, path: str, key: str, limit: int, **params: Any) -> list[Any]:
    """Every row of a paged list, page by page, stopping on a short page as a client would."""
    rows: list[Any] = []
    page = 1
    while True:
        answer = body(get(http, cin7, path, Page=page, Limit=limit, **params))
        assert answer["Page"] == page
        rows.extend(answer[key])
        if len(answer[key]) < limit:
            assert answer["Total"] == len(rows)
            return rows
        page += 1


# --- supplier ---------------------------------------------------------------------------------------------


def test_supplier_list_pages_through_every_supplier_by_name(
    cin7: Cin7StandIn, http: requests.Session, purchases: PurchaseSet
) -> None:
    rows = walk(http, cin7, "supplier", "SupplierList", 7)
    assert sorted(r["ID"] for r in rows) == sorted(s["ID"] for s in purchases.suppliers)
    names = [r["Name"].strip().lower() for r in rows]
    assert names == sorted(names)
    first = body(get(http, cin7, "Supplier", page=1, limit=0))
    assert len(first["SupplierList"]) == 1 and first["Total"] == len(purchases.suppliers)


def test_supplier_filters_by_id_name_and_modified_since(
    cin7: Cin7StandIn, http: requests.Session, purchases: PurchaseSet
) -> None:
    wanted = purchases.suppliers[5]
    by_id = body(get(http, cin7, "supplier", ID=wanted["ID"].upper()))
    assert by_id["Total"] == 1 and by_id["SupplierList"][0] == json.loads(dumps(wanted), parse_float=Decimal)
    by_name = body(get(http, cin7, "supplier", Name="PACIFIC rim"))
    assert [r["Currency"] for r in by_name["SupplierList"]] == ["USD"]
    since = NOW - timedelta(days=4)
    expected = [s for s in purchases.suppliers if parse_timestamp(s["LastModifiedOn"]) >= since]
    assert 0 < len(expected) < len(purchases.suppliers)
    assert body(get(http, cin7, "supplier", ModifiedSince=format_timestamp(since)))["Total"] == len(expected)
    assert get(http, cin7, "supplier", ModifiedSince="yesterday").status_code == 400


def test_suppliers_carry_cin7_fields_people_and_abns(purchases: PurchaseSet) -> None:
    for supplier in purchases.suppliers:
        assert supplier["AccountPayable"] == "800" and supplier["Status"] == "Active"
        assert supplier["TaxRule"] in TAX_RULES
        assert "Email" not in supplier and "Website" not in supplier  # on suppliers they live in Contacts
        assert sum(1 for p in supplier["Contacts"] if p["Default"]) == 1
        assert all("JobTitle" not in p and "IncludeInEmail" in p for p in supplier["Contacts"])
        # The merged supplier carries its customer's ABN, which the sales generator does not checksum.
        if supplier["TaxNumber"] and supplier["ID"] != purchases.merges[0].supplier_id:
            assert abn_is_valid(supplier["TaxNumber"])
    numbers = [s["TaxNumber"] for s in purchases.suppliers if s["TaxNumber"]]
    assert any(" " in n for n in numbers) and any(" " not in n for n in numbers)
    assert {"USD", "NZD", "AUD"} <= {s["Currency"] for s in purchases.suppliers}
    assert any(len(s["Contacts"]) == 7 for s in purchases.suppliers)
    emails = [p["Email"] for s in purchases.suppliers for p in s["Contacts"]]
    assert any(e.endswith("@gmail.com") for e in emails)
    crowded = [s for s in purchases.suppliers if len(s["Contacts"]) == 7]
    for supplier in crowded:
        domains = [p["Email"].split("@")[1] for p in supplier["Contacts"]]
        assert domains.count(domains[0]) >= 2  # the company's domain, shared by its people
    # ... though some people at a company use a personal address
    assert any(
        p["Email"].endswith(("@gmail.com", "@outlook.com", "@bigpond.com")) for s in crowded for p in s["Contacts"]
    )


# --- purchaseList -----------------------------------------------------------------------------------------


def test_purchase_list_pages_in_last_updated_order(
    cin7: Cin7StandIn, http: requests.Session, purchases: PurchaseSet
) -> None:
    rows = walk(http, cin7, "purchaseList", "PurchaseList", 37)
    assert sorted(r["ID"] for r in rows) == sorted(p["ID"] for p in purchases.purchases)
    keys = [(parse_timestamp(r["LastUpdatedDate"]), r["ID"]) for r in rows]
    assert keys == sorted(keys)
    row = next(r for r in rows if r["Type"] == "Advanced Purchase")
    for field in ("OrderNumber", "Status", "OrderDate", "InvoiceDate", "InvoiceDueDate", "Supplier", "SupplierID"):
        assert field in row
    assert {"InvoiceNumber", "InvoiceAmount", "PaidAmount", "SupplierCurrency", "CombinedPaymentStatus"} <= set(row)
    assert {r["Type"] for r in rows} == {"Simple Purchase", "Advanced Purchase", "Service Purchase"}


def test_purchase_list_updated_since_search_and_status_filters(
    cin7: Cin7StandIn, http: requests.Session, purchases: PurchaseSet
) -> None:
    stamps = sorted(parse_timestamp(p["LastUpdatedDate"]) for p in purchases.purchases)
    mark = stamps[len(stamps) // 2]
    later = body(get(http, cin7, "PurchaseList", UpdatedSince=format_timestamp(mark), Limit=1000))
    assert later["Total"] == sum(1 for s in stamps if s >= mark)
    assert all(parse_timestamp(r["LastUpdatedDate"]) >= mark for r in later["PurchaseList"])
    target = purchases.purchases[10]
    number = bill_number(bills_of(target)[0])
    found = body(get(http, cin7, "purchaseList", Search=number.lower(), Limit=1000))["PurchaseList"]
    assert target["ID"] in {r["ID"] for r in found}
    by_order = body(get(http, cin7, "purchaseList", search=target["OrderNumber"]))["PurchaseList"]
    assert [r["ID"] for r in by_order] == [target["ID"]]
    voided = body(get(http, cin7, "purchaseList", Status="voided", Limit=1000))["PurchaseList"]
    assert voided and all(r["Status"] == "VOIDED" for r in voided)
    assert get(http, cin7, "purchaseList", UpdatedSince="not a date").status_code == 400


def test_purchase_rows_add_up_their_bills(cin7: Cin7StandIn, http: requests.Session) -> None:
    for row in walk(http, cin7, "purchaseList", "PurchaseList", 1000):
        detail = body(get(http, cin7, "advanced-purchase", ID=row["ID"]))
        live = [b for b in bills_of(detail) if b["Status"] != "VOIDED"]
        assert row["InvoiceAmount"] == sum((b["Total"] for b in live), Decimal(0))
        assert row["PaidAmount"] == sum((b["Paid"] for b in live), Decimal(0))
        assert row["InvoiceNumber"] == bill_number(bills_of(detail)[0])


# --- advanced-purchase ------------------------------------------------------------------------------------


def test_detail_shapes_one_invoice_object_or_an_array(cin7: Cin7StandIn, http: requests.Session) -> None:
    rows = walk(http, cin7, "purchaseList", "PurchaseList", 1000)
    shapes: Counter[tuple[str, str, str]] = Counter()
    spellings: Counter[str] = Counter()
    for row in rows:
        detail = body(get(http, cin7, "Advanced-Purchase", id=row["ID"]))
        invoice, credit = detail["Invoice"], detail["CreditNote"]
        shapes[(detail["Type"], type(invoice).__name__, type(credit).__name__)] += 1
        for bill in bills_of(detail):
            spellings.update(k for k in ("InvoiceNumber", "InvocieNumber") if k in bill)
            if detail["Type"] == "Advanced Purchase":
                assert "InvoicingAndReceivingNumber" in bill and "InvocieNumber" not in bill
    assert set(shapes) == {
        ("Simple Purchase", "dict", "dict"),
        ("Service Purchase", "dict", "dict"),
        ("Advanced Purchase", "list", "list"),
    }
    assert spellings["InvoiceNumber"] > 0 and spellings["InvocieNumber"] > 0
    two = [r for r in rows if r["Type"] == "Advanced Purchase"]
    assert any(len(body(get(http, cin7, "advanced-purchase", ID=r["ID"]))["Invoice"]) == 2 for r in two)


def test_detail_errors_are_cin7s(cin7: Cin7StandIn, http: requests.Session) -> None:
    missing = get(http, cin7, "advanced-purchase", ID="00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json() == [{"ErrorCode": 404, "Exception": "Purchase not found"}]
    assert get(http, cin7, "advanced-purchase").status_code == 400
    assert get(http, cin7, "purchaseList", Page="x").status_code == 400
    assert http.post(f"{cin7.api_url}/supplier", timeout=10).status_code == 405


def test_bills_carry_lines_freight_payments_and_recompute_to_their_totals(purchases: PurchaseSet) -> None:
    bills = [(p, b) for p in purchases.purchases for b in bills_of(p)]
    for purchase, bill in bills:
        again = copy.deepcopy(bill)
        recompute_invoice_totals(again, purchase["TaxCalculation"], TAX_RULES)
        assert (again["TotalBeforeTax"], again["Tax"], again["Total"]) == (
            bill["TotalBeforeTax"],
            bill["Tax"],
            bill["Total"],
        )
        assert bill["Paid"] == sum((p["Amount"] for p in bill["Payments"]), Decimal(0))
        assert all(
            p["Type"] == "PAYMENT" and p["CurrencyRate"] == bill["CurrencyConversionRate"] for p in bill["Payments"]
        )
        assert bill["Status"] in {"DRAFT", "AUTHORISED", "PAID", "VOIDED"}
    assert any(c["Description"] == "Freight" for _, b in bills for c in b["AdditionalCharges"])
    assert {"GST on Expenses", "GST Free Expenses"} <= {line["TaxRule"] for _, b in bills for line in b["Lines"]}
    assert any(len(b["Payments"]) > 1 for _, b in bills)
    assert any(b["Status"] == "AUTHORISED" and b["Payments"] for _, b in bills)
    for purchase in purchases.purchases:
        for credit_note in credit_notes_of(purchase):
            again = copy.deepcopy(credit_note)
            recompute_invoice_totals(again, purchase["TaxCalculation"], TAX_RULES)
            assert again["Total"] == credit_note["Total"] > 0


# --- expectations -----------------------------------------------------------------------------------------


def test_bill_expectations_match_the_bills(purchases: PurchaseSet) -> None:
    by_key = {(p["ID"], b["TaskID"]): (p, b) for p in purchases.purchases for b in bills_of(p)}
    assert len(purchases.bills) == len(by_key)
    for expected in purchases.bills:
        purchase, bill = by_key[(expected.purchase_id, expected.task_id)]
        assert expected.invoice_number == bill_number(bill) != ""
        assert expected.total == bill["Total"] and expected.subtotal + expected.total_tax == expected.total
        assert expected.currency == purchase["SupplierCurrency"]
        assert expected.amount_credited == 0  # only paid bills are credited, so no credit is allocated
        assert expected.amount_due == expected.total - expected.amount_paid - expected.amount_credited >= 0
        if expected.outcome == "synced":
            assert expected.amount_paid == sum((p["Amount"] for p in bill["Payments"]), Decimal(0))
            assert expected.status == ("PAID" if expected.amount_due == 0 else "AUTHORISED")
        else:
            assert bill["Status"] in {"DRAFT", "VOIDED"} and expected.amount_paid == 0
        if expected.currency == "AUD":
            assert expected.currency_rate == 1
    statuses = Counter(e.status for e in purchases.bills)
    assert set(statuses) == {"DRAFT", "VOIDED", "AUTHORISED", "PAID"}
    assert any(e.status == "AUTHORISED" and e.amount_paid > 0 for e in purchases.bills)  # part-paid
    usd = next(e for e in purchases.bills if e.currency == "USD")
    assert usd.currency_rate == Decimal("0.655008")  # 1 / 1.5267 = 0.6550075..., Xero's direction
    paid_ids = {p.payment_id for p in purchases.payments if p.kind == "payment"}
    assert paid_ids == {
        p["ID"]
        for e in purchases.bills
        if e.outcome == "synced"
        for p in by_key[(e.purchase_id, e.task_id)][1]["Payments"]
    }


def test_credit_note_expectations_cover_each_status(purchases: PurchaseSet) -> None:
    notes = purchases.credit_notes
    assert {"AUTHORISED", "DRAFT", "VOIDED"} <= {n.status for n in notes}
    authorised = [n for n in notes if n.status == "AUTHORISED"]
    assert any(n.refunded == n.total for n in authorised) and any(n.remaining_credit > 0 for n in authorised)
    for note in notes:
        assert note.outcome == ("synced" if note.status == "AUTHORISED" else "ignored")
        assert note.remaining_credit == note.total - note.allocated - note.refunded >= 0
    refunds = [p for p in purchases.payments if p.kind == "refund"]
    assert {r.document_task_id for r in refunds} == {n.task_id for n in authorised if n.refunded > 0}


def test_contact_expectations_keep_five_people_and_record_the_rest(purchases: PurchaseSet) -> None:
    by_id = {s["ID"]: s for s in purchases.suppliers}
    assert [c.supplier_id for c in purchases.contacts] == list(by_id)
    for contact in purchases.contacts:
        supplier = by_id[contact.supplier_id]
        default = next(p for p in supplier["Contacts"] if p["Default"])
        assert f"{contact.first_name} {contact.last_name}" == default["Name"] and contact.email == default["Email"]
        assert contact.name == supplier["Name"].strip()
        assert contact.tax_number == supplier["TaxNumber"].replace(" ", "")
        assert contact.tax_number == "" or (contact.tax_number.isdigit() and len(contact.tax_number) == 11)
        assert len(contact.contact_persons) == min(5, len(supplier["Contacts"]) - 1)
        assert len(contact.left_out) == max(0, len(supplier["Contacts"]) - 6)
    crowded = [c for c in purchases.contacts if len(by_id[c.supplier_id]["Contacts"]) == 7]
    assert crowded and all(len(c.contact_persons) == 5 and len(c.left_out) == 1 for c in crowded)


def test_one_supplier_is_also_a_customer(
    cin7: Cin7StandIn, http: requests.Session, sales: Dataset, purchases: PurchaseSet
) -> None:
    assert len(purchases.merges) == 1
    merge = purchases.merges[0]
    customer = next(c for c in sales.customers if c["ID"] == merge.customer_id)
    supplier = body(get(http, cin7, "supplier", ID=merge.supplier_id))["SupplierList"][0]
    assert supplier["Name"] == customer["Name"] and supplier["TaxNumber"] == customer["TaxNumber"]
    assert merge.tax_number == customer["TaxNumber"].replace(" ", "")
    contact = next(c for c in purchases.contacts if c.supplier_id == merge.supplier_id)
    assert contact.customer_id == customer["ID"]
    assert sum(1 for c in purchases.contacts if c.customer_id) == 1
    assert any(p["SupplierID"] == merge.supplier_id for p in purchases.purchases)
    others = {c["Name"].strip().lower() for c in sales.customers} - {merge.name.lower()}
    assert not others & {s["Name"].strip().lower() for s in purchases.suppliers}
    assert generate_purchases(7, 50, now=NOW).merges == []  # without customers there is nothing to merge


def test_generation_is_deterministic_by_seed(sales: Dataset, purchases: PurchaseSet) -> None:
    again = generate_purchases(7, 300, now=NOW, customers=sales.customers)
    assert again == purchases
    assert dumps(again.purchases) == dumps(purchases.purchases)
    other = generate_purchases(8, 300, now=NOW, customers=sales.customers)
    assert [p["ID"] for p in other.purchases] != [p["ID"] for p in purchases.purchases]
    assert {s["ID"] for s in purchases.suppliers}.isdisjoint({c["ID"] for c in sales.customers})


@pytest.mark.parametrize("n", [0, 1, 19])
def test_small_sets_are_consistent(n: int) -> None:
    small = generate_purchases(3, n, now=NOW)
    assert len(small.purchases) == n and len(small.contacts) == len(small.suppliers)
    assert all(b.amount_due >= 0 for b in small.bills)


@pytest.mark.parametrize("seed", range(8))
def test_every_case_is_present_from_the_coverage_size(seed: int) -> None:
    small = generate_purchases(seed, COVERAGE_MIN_PURCHASES, now=NOW, customers=generate(seed, 30, now=NOW).customers)
    bills = [b for p in small.purchases for b in bills_of(p)]
    assert {p["Type"] for p in small.purchases} == {"Simple Purchase", "Advanced Purchase", "Service Purchase"}
    assert {b.status for b in small.bills} == {"DRAFT", "VOIDED", "AUTHORISED", "PAID"}
    assert any(b.status == "AUTHORISED" and b.amount_paid > 0 for b in small.bills)
    assert any(len(b["Payments"]) > 1 for b in bills) and any(b["AdditionalCharges"] for b in bills)
    assert all(any(key in b for b in bills) for key in ("InvoiceNumber", "InvocieNumber"))
    assert any(isinstance(p["Invoice"], list) and len(p["Invoice"]) == 2 for p in small.purchases)
    assert any(isinstance(p["CreditNote"], list) and p["CreditNote"] for p in small.purchases)
    notes = small.credit_notes
    assert {"AUTHORISED", "DRAFT", "VOIDED"} <= {n.status for n in notes}
    assert any(n.refunded > 0 for n in notes) and any(n.remaining_credit > 0 for n in notes)
    assert {"USD", "NZD"} <= {b.currency for b in small.bills} and len(small.merges) == 1


def test_generate_alone_serves_no_suppliers_or_purchases(sales: Dataset) -> None:
    assert sales.suppliers == [] and sales.purchases == []


# --- admin, in-process access, reference data, limits -------------------------------------------------------


def test_admin_and_in_process_puts_change_what_is_served(cin7: Cin7StandIn, http: requests.Session) -> None:
    row = body(get(http, cin7, "purchaseList", Limit=1))["PurchaseList"][0]
    purchase = cin7.purchase(row["ID"])
    purchase["LastUpdatedDate"] = format_timestamp(NOW + timedelta(hours=1))
    purchase["Note"] = "changed"
    assert http.put(f"{cin7.url}/_standin/purchases", data=dumps(purchase), timeout=10).status_code == 200
    later = body(get(http, cin7, "purchaseList", UpdatedSince=format_timestamp(NOW)))["PurchaseList"]
    assert [r["ID"] for r in later] == [row["ID"]]
    assert body(get(http, cin7, "advanced-purchase", ID=row["ID"]))["Note"] == "changed"
    purchase["Note"] = "again"
    cin7.put_purchase(purchase)
    assert body(get(http, cin7, "advanced-purchase", ID=row["ID"]))["Note"] == "again"

    supplier = cin7.supplier(row["SupplierID"])
    supplier["Status"] = "Deprecated"
    assert http.put(f"{cin7.url}/_standin/suppliers", data=dumps(supplier), timeout=10).status_code == 200
    assert body(get(http, cin7, "supplier", ID=supplier["ID"]))["Total"] == 0
    assert body(get(http, cin7, "supplier", ID=supplier["ID"], IncludeDeprecated="true"))["Total"] == 1
    bad = http.put(f"{cin7.url}/_standin/purchases", data=dumps({"ID": "x"}), timeout=10)
    assert bad.status_code == 400
    cin7.reset(restore_data=True)
    assert body(get(http, cin7, "advanced-purchase", ID=row["ID"]))["Note"] == ""


def test_tax_rules_and_accounts_carry_the_purchase_side(cin7: Cin7StandIn, http: requests.Session) -> None:
    rules = {r["Name"]: r for r in body(get(http, cin7, "ref/tax"))["TaxRuleList"]}
    assert rules["GST on Expenses"]["TaxPercent"] == 10 and rules["GST Free Expenses"]["TaxPercent"] == 0
    assert rules["GST on Expenses"]["IsTaxForPurchase"] and not rules["GST on Expenses"]["IsTaxForSale"]
    assert rules["GST on Income"]["IsTaxForSale"] and not rules["GST on Income"]["IsTaxForPurchase"]
    accounts = {a["Code"]: a for a in body(get(http, cin7, "ref/account"))["AccountsList"]}
    assert accounts["800"]["SystemAccount"] == "CREDITORS" and {"300", "425", "429", "630"} <= set(accounts)


def test_rate_limit_and_faults_apply_to_the_purchase_endpoints(world: Dataset) -> None:
    with (
        Cin7StandIn(dataset=world, rate_limit_per_minute=2, window_seconds=30) as cin7,
        requests.Session() as http,
    ):
        http.headers.update(AUTH)
        assert get(http, cin7, "supplier").status_code == 200
        assert get(http, cin7, "purchaseList").status_code == 200
        throttled = get(http, cin7, "advanced-purchase", ID=world.purchases[0]["ID"])
        assert throttled.status_code == 429 and "Retry-After" not in throttled.headers
        cin7.set_faults(rate_limit_per_minute=None, error_in_200_next=1)
        odd = get(http, cin7, "advanced-purchase", ID=world.purchases[0]["ID"])
        assert odd.status_code == 200 and odd.json()["ErrorCode"] == 500
        assert cin7.stats()["by_endpoint"] == {"supplier": 1, "purchaseList": 1, "advanced-purchase": 2}
        wrong = requests.get(f"{cin7.api_url}/purchaseList", timeout=10)
        assert wrong.status_code == 403

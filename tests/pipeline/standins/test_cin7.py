"""The Cin7 Core stand-in over real HTTP: auth, paging, filters, throttling, faults, admin and webhooks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from pipeline.standins.cin7 import DEFAULT_ACCOUNT_ID, DEFAULT_APPLICATION_KEY, Cin7StandIn, dumps
from pipeline.standins.generator import Dataset, format_timestamp, generate

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
AUTH = {"api-auth-accountid": DEFAULT_ACCOUNT_ID, "api-auth-applicationkey": DEFAULT_APPLICATION_KEY}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(21, 1500, now=NOW)


@pytest.fixture
def cin7(dataset: Dataset) -> Iterator[Cin7StandIn]:
    standin = Cin7StandIn(dataset=dataset).start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(AUTH)
        yield session


def get(http: requests.Session, cin7: Cin7StandIn, path: str, **params: Any) -> requests.Response:
    return http.get(f"{cin7.api_url}/{path}", params=params, timeout=10)


def body(response: requests.Response) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def test_wrong_credentials_get_403_with_the_cin7_error_body(cin7: Cin7StandIn) -> None:
    response = requests.get(
        f"{cin7.api_url}/me",
        headers={"api-auth-accountid": DEFAULT_ACCOUNT_ID, "api-auth-applicationkey": "nope"},
        timeout=10,
    )
    assert response.status_code == 403
    assert response.json() == {"ErrorCode": 403, "Exception": "Incorrect credentials!"}


def test_me_answers_with_company_and_currency(cin7: Cin7StandIn, http: requests.Session) -> None:
    response = get(http, cin7, "me")
    assert response.status_code == 200 and response.json()["Currency"] == "AUD"


def test_sale_list_limit_is_clamped_to_1000_and_the_last_page_is_short(
    cin7: Cin7StandIn, http: requests.Session, dataset: Dataset
) -> None:
    first = get(http, cin7, "saleList", Page=1, Limit=5000).json()
    assert first["Total"] == len(dataset.sales) and first["Page"] == 1
    assert len(first["SaleList"]) == 1000
    second = get(http, cin7, "SALELIST", page=2, limit=1000).json()
    assert len(second["SaleList"]) == len(dataset.sales) - 1000
    ids = [r["SaleID"] for r in first["SaleList"] + second["SaleList"]]
    assert len(set(ids)) == len(dataset.sales)
    keys = [(r["Updated"], r["SaleID"]) for r in first["SaleList"] + second["SaleList"]]
    assert keys == sorted(keys)


def test_sale_list_defaults_to_pages_of_100(cin7: Cin7StandIn, http: requests.Session) -> None:
    assert len(get(http, cin7, "saleList").json()["SaleList"]) == 100


def test_updated_since_keeps_rows_at_or_after_the_watermark(
    cin7: Cin7StandIn, http: requests.Session, dataset: Dataset
) -> None:
    stamps = sorted(s["LastModifiedOn"] for s in dataset.sales)
    watermark = stamps[len(stamps) // 2]
    expected = sum(1 for s in stamps if s >= watermark)
    for since in (watermark, watermark.rstrip("Z"), watermark.replace("Z", "+00:00")):
        page = get(http, cin7, "saleList", UpdatedSince=since, Limit=1000).json()
        assert page["Total"] == expected
        assert all(r["Updated"] >= watermark for r in page["SaleList"])


def test_rows_sharing_the_watermark_millisecond_are_returned_again(
    cin7: Cin7StandIn, http: requests.Session, dataset: Dataset
) -> None:
    shared = next(
        stamp
        for stamp in {s["LastModifiedOn"] for s in dataset.sales}
        if sum(s["LastModifiedOn"] == stamp for s in dataset.sales) >= 3
    )
    rows = get(http, cin7, "saleList", UpdatedSince=shared, Limit=1000).json()["SaleList"]
    assert sum(r["Updated"] == shared for r in rows) >= 3


def test_status_and_search_filters_narrow_the_list(cin7: Cin7StandIn, http: requests.Session, dataset: Dataset) -> None:
    voided = get(http, cin7, "saleList", Status="voided", Limit=1000).json()
    assert voided["Total"] == sum(s["Status"] == "VOIDED" for s in dataset.sales) > 0
    found = get(http, cin7, "saleList", Search="SO-00007").json()
    assert [r["OrderNumber"] for r in found["SaleList"]] == ["SO-00007"]


def test_sale_detail_by_id_or_sale_id_returns_numbers_not_strings(
    cin7: Cin7StandIn, http: requests.Session, dataset: Dataset
) -> None:
    sale = next(
        s for s in dataset.sales if any(-line["Price"].as_tuple().exponent == 4 for line in s["Invoices"][0]["Lines"])
    )
    by_id = get(http, cin7, "sale", ID=sale["ID"].upper())
    by_sale_id = get(http, cin7, "Sale", saleid=sale["ID"])
    assert by_id.status_code == by_sale_id.status_code == 200
    assert body(by_id) == body(by_sale_id) == sale
    raw = by_id.json()
    line = raw["Invoices"][0]["Lines"][0]
    assert isinstance(line["Price"], int | float) and isinstance(raw["Invoices"][0]["Total"], int | float)
    assert '"Price":"' not in by_id.text


def test_sale_detail_serves_payments_credit_notes_and_refunds(
    cin7: Cin7StandIn, http: requests.Session, dataset: Dataset
) -> None:
    sale = next(s for s in dataset.sales if any(cn["Refunds"] for cn in s["CreditNotes"]))
    detail = body(get(http, cin7, "sale", ID=sale["ID"]))
    assert detail == sale
    credit_note = next(cn for cn in detail["CreditNotes"] if cn["Refunds"])
    assert credit_note["CreditNoteNumber"].startswith("CR-") and isinstance(credit_note["Total"], Decimal)
    invoice = next(i for i in detail["Invoices"] if i["InvoiceNumber"] == credit_note["CreditNoteInvoiceNumber"])
    assert invoice["Payments"] and invoice["Paid"] == sum(p["Amount"] for p in invoice["Payments"])
    credited = get(http, cin7, "saleList", CombinedInvoiceStatus="INVOICED / CREDITED", Limit=1000).json()
    assert credited["Total"] == sum(s["CombinedInvoiceStatus"] == "INVOICED / CREDITED" for s in dataset.sales) > 0
    row = next(r for r in credited["SaleList"] if r["SaleID"] == sale["ID"])
    assert Decimal(str(row["PaidAmount"])) == sum(i["Paid"] for i in sale["Invoices"] if i["Status"] != "VOIDED")


def test_unknown_sale_is_a_wrapped_404_error(cin7: Cin7StandIn, http: requests.Session) -> None:
    response = get(http, cin7, "sale", ID="00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json() == [{"ErrorCode": 404, "Exception": "Sale not found"}]


def test_a_bad_sale_sub_path_returns_200_html(cin7: Cin7StandIn, http: requests.Session) -> None:
    response = get(http, cin7, "sale/whatever")
    assert response.status_code == 200 and "Page not found" in response.text
    assert response.headers["Content-Type"].startswith("text/html")
    assert get(http, cin7, "nothing/here").status_code == 404


def test_customers_page_and_filter_by_modified_since_id_and_name(
    cin7: Cin7StandIn, http: requests.Session, dataset: Dataset
) -> None:
    total = len(dataset.customers)
    pages = [get(http, cin7, "customer", Page=p, Limit=200).json() for p in (1, 2, 3)]
    assert all(p["Total"] == total for p in pages)
    seen = [c["ID"] for p in pages for c in p["CustomerList"]]
    assert len(seen) == len(set(seen)) == total and len(pages[-1]["CustomerList"]) < 200
    cutoff = sorted(c["LastModifiedOn"] for c in dataset.customers)[total - 40]
    recent = get(http, cin7, "customer", ModifiedSince=cutoff, Limit=1000).json()
    assert recent["Total"] == sum(c["LastModifiedOn"] >= cutoff for c in dataset.customers)
    one = get(http, cin7, "customer", ID=dataset.customers[0]["ID"]).json()
    assert [c["ID"] for c in one["CustomerList"]] == [dataset.customers[0]["ID"]]
    smiths = get(http, cin7, "customer", Name="Smith Trading").json()
    assert smiths["Total"] == 2


def test_reference_lists_carry_tax_rules_and_accounts(cin7: Cin7StandIn, http: requests.Session) -> None:
    taxes = body(get(http, cin7, "ref/tax"))
    gst = next(r for r in taxes["TaxRuleList"] if r["Name"] == "GST on Income")
    assert gst["TaxPercent"] == 10 and gst["Components"][0]["Percent"] == 10
    assert "Zero Rated Imports" in {r["Name"] for r in taxes["TaxRuleList"]}
    accounts = get(http, cin7, "Ref/Account").json()
    assert {"200", "610", "999"} <= {a["Code"] for a in accounts["AccountsList"]}


def test_rate_limit_throttles_with_429_and_no_retry_after(dataset: Dataset, http: requests.Session) -> None:
    with Cin7StandIn(dataset=dataset, rate_limit_per_minute=5, window_seconds=0.5) as cin7:
        codes = [get(http, cin7, "me").status_code for _ in range(5)]
        throttled = get(http, cin7, "saleList")
        assert codes == [200] * 5
        assert throttled.status_code == 429
        assert "Retry-After" not in throttled.headers
        assert throttled.text == "You reached 5 calls per minute API limit"
        time.sleep(0.6)
        assert get(http, cin7, "me").status_code == 200
        stats = cin7.stats()
        assert stats["throttled"] == 1 and stats["calls"] == 7
        assert stats["by_endpoint"] == {"me": 6, "saleList": 1}


def test_rate_limit_can_answer_with_503_instead(dataset: Dataset, http: requests.Session) -> None:
    with Cin7StandIn(dataset=dataset, rate_limit_per_minute=2, throttle_status=503) as cin7:
        codes = [get(http, cin7, "me").status_code for _ in range(3)]
        assert codes == [200, 200, 503]


def test_faults_throttle_the_next_calls_then_recover(cin7: Cin7StandIn, http: requests.Session) -> None:
    cin7.set_faults(throttle_next=2)
    assert [get(http, cin7, "me").status_code for _ in range(3)] == [429, 429, 200]


def test_faults_error_in_200_and_outage(cin7: Cin7StandIn, http: requests.Session) -> None:
    requests.post(f"{cin7.url}/_standin/faults", json={"error_in_200_next": 1}, timeout=10).raise_for_status()
    odd = get(http, cin7, "me")
    assert odd.status_code == 200 and odd.json()["ErrorCode"] == 500
    assert "Company" in get(http, cin7, "me").json()
    cin7.set_faults(outage_seconds=0.3)
    assert get(http, cin7, "me").status_code == 500
    time.sleep(0.35)
    assert get(http, cin7, "me").status_code == 200


def test_admin_edit_bumps_updated_so_a_later_poll_returns_the_sale(
    cin7: Cin7StandIn, http: requests.Session, dataset: Dataset
) -> None:
    sale = next(s for s in dataset.sales if s["Invoices"][0]["Status"] == "AUTHORISED")
    watermark = format_timestamp(NOW + timedelta(seconds=1))
    assert get(http, cin7, "saleList", UpdatedSince=watermark).json()["Total"] == 0
    edited_at = format_timestamp(NOW + timedelta(minutes=5))
    response = requests.post(
        f"{cin7.url}/_standin/sales/{sale['ID']}/invoices/{sale['Invoices'][0]['TaskID']}/edit",
        json={"quantity_delta": 1, "now": edited_at},
        timeout=10,
    )
    assert response.status_code == 200
    rows = get(http, cin7, "saleList", UpdatedSince=watermark).json()["SaleList"]
    assert [(r["SaleID"], r["Updated"]) for r in rows] == [(sale["ID"], edited_at)]
    detail = body(get(http, cin7, "sale", ID=sale["ID"]))
    assert detail["Invoices"][0]["Lines"][0]["Quantity"] == sale["Invoices"][0]["Lines"][0]["Quantity"] + 1
    assert detail["Invoices"][0]["Total"] != sale["Invoices"][0]["Total"]
    assert rows[0]["InvoiceAmount"] == float(detail["Invoices"][0]["Total"]) or len(detail["Invoices"]) > 1


def test_admin_void_and_put_sale_are_visible_through_the_api(
    cin7: Cin7StandIn, http: requests.Session, dataset: Dataset
) -> None:
    sale = next(s for s in dataset.sales if len(s["Invoices"]) == 1 and s["Invoices"][0]["Status"] == "AUTHORISED")
    requests.post(
        f"{cin7.url}/_standin/sales/{sale['ID']}/invoices/{sale['Invoices'][0]['TaskID']}/void", timeout=10
    ).raise_for_status()
    assert get(http, cin7, "sale", ID=sale["ID"]).json()["Invoices"][0]["Status"] == "VOIDED"
    replacement = dict(cin7.sale(sale["ID"]), CustomerReference="PO-REPLACED")
    requests.put(f"{cin7.url}/_standin/sales", data=dumps(replacement), timeout=10).raise_for_status()
    assert cin7.sale(sale["ID"])["CustomerReference"] == "PO-REPLACED"
    assert cin7.stats()["by_endpoint"].get("sale") == 1  # admin calls are not counted


def test_webhooks_crud_and_the_five_per_type_limit(cin7: Cin7StandIn, http: requests.Session) -> None:
    url = f"{cin7.api_url}/webhooks"
    hook = {
        "Type": "Sale/InvoiceAuthorised",
        "Name": "sync",
        "IsActive": True,
        "ExternalURL": "https://x.test/h",
        "ExternalAuthorizationType": "bearerauth",
        "ExternalBearerToken": "t0k",
        "ExternalHeaders": [{"Key": "X-Secret", "Value": "s"}],
    }
    created = [http.post(url, json=hook, timeout=10) for _ in range(5)]
    assert all(r.status_code == 200 for r in created)
    ids = [r.json()["Webhooks"][0]["ID"] for r in created]
    sixth = http.post(url, json=hook, timeout=10)
    assert sixth.status_code == 400 and sixth.json()[0]["ErrorCode"] == 400
    other_type = http.post(url, json=dict(hook, Type="Customer/Updated"), timeout=10)
    assert other_type.status_code == 200
    updated = http.put(url, json={"ID": ids[0], "IsActive": False}, timeout=10)
    assert updated.json()["Webhooks"][0]["IsActive"] is False
    assert updated.json()["Webhooks"][0]["ExternalBearerToken"] == "t0k"
    deleted = http.delete(url, params={"ID": ids[1]}, timeout=10)
    assert deleted.status_code == 200 and ids[1] not in {w["ID"] for w in deleted.json()["Webhooks"]}
    listed = http.get(url, timeout=10).json()["Webhooks"]
    assert len(listed) == 5
    assert http.post(url, json=dict(hook, ExternalAuthorizationType="hmac"), timeout=10).status_code == 400
    assert http.delete(url, params={"ID": ids[1]}, timeout=10).status_code == 404


def test_admin_stats_and_reset_over_http(cin7: Cin7StandIn, http: requests.Session) -> None:
    get(http, cin7, "me")
    stats = requests.get(f"{cin7.url}/_standin/stats", timeout=10).json()
    assert stats["calls"] == 1 and stats["by_endpoint"] == {"me": 1}
    requests.post(f"{cin7.url}/_standin/reset", timeout=10).raise_for_status()
    assert cin7.stats() == {"calls": 0, "by_endpoint": {}, "throttled": 0}


def test_concurrent_clients_all_get_answers(cin7: Cin7StandIn, dataset: Dataset) -> None:
    def fetch(sale_id: str) -> int:
        response = requests.get(f"{cin7.api_url}/sale", params={"ID": sale_id}, headers=AUTH, timeout=10)
        return response.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(fetch, [s["ID"] for s in dataset.sales[:200]]))
    assert codes == [200] * 200
    assert cin7.stats()["by_endpoint"]["sale"] == 200

"""The Xero stand-in's tracking categories and options, and the tracking on invoice and credit-note lines.

What issue 13 needs for a sale's sales representative: a tracking option created in a category the rules
file names, then named on the lines, where Xero silently drops any category or option it does not know.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from pipeline.standins.xero import XeroStandIn
from pipeline.standins.xero.tracking import (
    DUPLICATE_OPTION,
    OPTION_NAME_TOO_LONG,
    TOO_MANY_TRACKING,
    TRACKING_NOT_A_LIST,
)
from tests.pipeline.standins.test_xero import Sdk, bearer, http, validate

# The SDK's token URLs restored and the vendored OpenAPI spec, from the main stand-in tests.
from tests.pipeline.standins.test_xero import _restore_token_urls as _restore_token_urls  # noqa: PLC0414
from tests.pipeline.standins.test_xero import openapi as openapi  # noqa: PLC0414

SEED: list[dict[str, Any]] = [
    {"Name": "Sales Rep", "Options": ["Alice", {"Name": "Old Hand", "Status": "ARCHIVED"}]},
    {"Name": "Region", "Options": ["North", "South"]},
    {"Name": "Legacy", "Status": "ARCHIVED", "Options": ["Gone"]},
]


@pytest.fixture
def standin() -> Iterator[XeroStandIn]:
    server = XeroStandIn(seed_tracking=SEED).start()
    yield server
    server.stop()


class Api:
    """Raw JSON calls to the stand-in's Accounting API: status and parsed answer."""

    def __init__(self, standin: XeroStandIn) -> None:
        self.base = standin.api_url
        self.headers = {**bearer(Sdk(standin)), "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None, key: str | None = None, **query: str) -> tuple[int, Any]:
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        status, _, raw = http(method, url, json.dumps(body).encode() if body is not None else None, headers)
        return status, json.loads(raw, parse_float=Decimal) if raw.startswith((b"{", b"[")) else raw.decode()

    def ok(self, method: str, path: str, body: Any = None, key: str | None = None, **query: str) -> Any:
        status, answer = self.call(method, path, body, key, **query)
        assert status == 200, (status, answer)
        return answer

    def categories(self, **query: str) -> dict[str, dict[str, Any]]:
        answer = self.ok("GET", "/TrackingCategories", **query)
        return {c["Name"]: c for c in answer["TrackingCategories"]}

    def category_id(self, name: str) -> str:
        found: str = self.categories(includeArchived="true")[name]["TrackingCategoryID"]
        return found


@pytest.fixture
def api(standin: XeroStandIn) -> Api:
    return Api(standin)


def option_names(category: dict[str, Any]) -> list[str]:
    return [o["Name"] for o in category["Options"]]


def invoice(*tracking: list[dict[str, Any]], contact: str = "Tracked Co") -> dict[str, Any]:
    lines = [
        {"Description": f"Line {i}", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200", "Tracking": t}
        for i, t in enumerate(tracking)
    ]
    return {"Type": "ACCREC", "Contact": {"Name": contact}, "Date": "2024-03-11", "LineItems": lines}


# ------------------------------------------------------------------------------------------ categories


def test_categories_are_listed_active_by_default_and_archived_on_request(
    openapi: dict[str, Any], api: Api, standin: XeroStandIn
) -> None:
    answer = api.ok("GET", "/TrackingCategories")
    validate(openapi, "TrackingCategories", answer)
    active = {c["Name"]: c for c in answer["TrackingCategories"]}
    assert list(active) == ["Sales Rep", "Region"]
    assert option_names(active["Sales Rep"]) == ["Alice"]
    assert all(o["Status"] == "ACTIVE" and o["IsActive"] for o in active["Sales Rep"]["Options"])

    everything = api.categories(includeArchived="true")
    assert list(everything) == ["Sales Rep", "Region", "Legacy"]
    assert option_names(everything["Sales Rep"]) == ["Alice", "Old Hand"]
    assert everything["Legacy"]["Status"] == "ARCHIVED"

    assert list(api.categories(where='Name=="region"')) == ["Region"]
    assert list(api.categories(order="Name DESC")) == ["Sales Rep", "Region"]
    region_id = active["Region"]["TrackingCategoryID"]
    single = api.ok("GET", f"/TrackingCategories/{region_id}")
    validate(openapi, "TrackingCategories", single)
    assert [c["Name"] for c in single["TrackingCategories"]] == ["Region"]
    assert api.call("GET", "/TrackingCategories/7d4f5a0e-0000-4000-8000-000000000000")[0] == 404
    assert standin.stats()["by_endpoint"]["GET /TrackingCategories"] == 4
    assert [c["Name"] for c in standin.tracking_categories()] == ["Sales Rep", "Region", "Legacy"]


def test_seeds_keep_xeros_limits_and_their_ids_across_a_reset(standin: XeroStandIn) -> None:
    before = standin.tracking_categories()
    standin.reset()
    assert standin.tracking_categories() == before
    with pytest.raises(ValueError, match="at most 2 ACTIVE"):
        standin.seed_tracking({"Branch": ["Sydney"]})
    standin.seed_tracking([{"Name": "Old Branch", "Status": "ARCHIVED", "Options": ["Perth"]}])
    with pytest.raises(ValueError, match="at most 4 tracking categories"):
        standin.seed_tracking([{"Name": "Older Branch", "Status": "ARCHIVED"}])
    with pytest.raises(ValueError, match="already exists"):
        XeroStandIn(seed_tracking=[{"Name": "Region"}, {"Name": "Region", "Status": "ARCHIVED"}])
    with pytest.raises(ValueError, match="unique"):
        XeroStandIn(seed_tracking={"Region": ["North", "North"]})
    with pytest.raises(ValueError, match="100 characters"):
        XeroStandIn(seed_tracking={"R" * 101: []})
    assert XeroStandIn().tracking_categories() == []


def test_the_admin_endpoints_seed_and_list_categories() -> None:
    with XeroStandIn() as fresh:
        url = fresh.url + "/_standin/tracking-categories"
        status, _, raw = http("POST", url, json.dumps({"Rep": ["Zed"]}).encode())
        assert status == 200, raw
        status, _, raw = http("GET", url)
        assert [option_names(c) for c in json.loads(raw)] == [["Zed"]]
        status, _, raw = http("POST", url, json.dumps({"TrackingCategories": [{"Name": "Rep"}]}).encode())
        assert status == 400 and "already exists" in json.loads(raw)["error"]
        assert fresh.stats()["calls"] == 0


# --------------------------------------------------------------------------------------------- options


def test_an_option_is_created_then_listed_with_its_id(openapi: dict[str, Any], api: Api, standin: XeroStandIn) -> None:
    rep = api.category_id("Sales Rep")
    # The SDK's shape: one TrackingOption as the body.
    answer = api.ok("PUT", f"/TrackingCategories/{rep}/Options", {"Name": "  Bob "}, key="opt-bob")
    validate(openapi, "TrackingOptions", answer)
    [bob] = answer["Options"]
    assert bob["Name"] == "Bob" and bob["Status"] == "ACTIVE" and bob["TrackingOptionID"]
    # Several at once, as the reference's PUT body has them.
    more = api.ok("PUT", f"/TrackingCategories/{rep}/Options", {"Options": [{"Name": "Carol"}, {"Name": "Dan"}]})
    assert [o["Name"] for o in more["Options"]] == ["Carol", "Dan"]
    listed = api.categories()["Sales Rep"]
    assert option_names(listed) == ["Alice", "Bob", "Carol", "Dan"]
    assert listed["Options"][1]["TrackingOptionID"] == bob["TrackingOptionID"]
    assert standin.stats()["by_endpoint"]["PUT /TrackingCategories/{id}/Options"] == 2


def test_a_duplicate_or_too_long_option_is_refused_and_nothing_is_created(openapi: dict[str, Any], api: Api) -> None:
    rep = api.category_id("Sales Rep")
    for body in (
        {"Name": "Alice"},
        # An archived option's name is taken too.
        {"Name": "Old Hand"},
        {"Options": [{"Name": "Eve"}, {"Name": "Eve"}]},
    ):
        status, answer = api.call("PUT", f"/TrackingCategories/{rep}/Options", body)
        assert status == 400, answer
        validate(openapi, "Error", answer)
        assert answer["Type"] == "ValidationException"
        messages = [e["Message"] for el in answer["Elements"] for e in el["ValidationErrors"]]
        assert messages == [DUPLICATE_OPTION]
    status, answer = api.call("PUT", f"/TrackingCategories/{rep}/Options", {"Name": "x" * 51})
    assert status == 400 and answer["Elements"][0]["ValidationErrors"][0]["Message"] == OPTION_NAME_TOO_LONG
    assert api.ok("PUT", f"/TrackingCategories/{rep}/Options", {"Name": "x" * 50})["Options"][0]["Name"] == "x" * 50
    assert option_names(api.categories()["Sales Rep"]) == ["Alice", "x" * 50]
    legacy = api.category_id("Legacy")
    assert api.call("PUT", f"/TrackingCategories/{legacy}/Options", {"Name": "New"})[0] == 400
    assert api.call("PUT", "/TrackingCategories/7d4f5a0e-0000-4000-8000-000000000000/Options", {"Name": "N"})[0] == 404


def test_an_options_put_replays_its_idempotency_key(api: Api, standin: XeroStandIn) -> None:
    rep = api.category_id("Sales Rep")
    first = api.ok("PUT", f"/TrackingCategories/{rep}/Options", {"Name": "Frank"}, key="k-frank")
    # A lost answer resent with its key: the stored answer, not a duplicate-name refusal.
    again = api.ok("PUT", f"/TrackingCategories/{rep}/Options", {"Name": "Frank"}, key="k-frank")
    assert again == first and standin.stats()["idempotent_replays"] == 1
    status, answer = api.call("PUT", f"/TrackingCategories/{rep}/Options", {"Name": "Gina"}, key="k-frank")
    assert status == 400 and "is used with a different request" in answer["Message"]
    assert option_names(api.categories()["Sales Rep"]) == ["Alice", "Frank"]


def test_tracking_calls_are_rate_limited_like_the_others() -> None:
    with XeroStandIn(seed_tracking={"Rep": ["A"]}, minute_limit=2) as limited:
        api = Api(limited)
        assert api.call("GET", "/TrackingCategories")[0] == 200
        rep = api.categories()["Rep"]["TrackingCategoryID"]
        status, _, _ = http("PUT", limited.api_url + f"/TrackingCategories/{rep}/Options", b'{"Name":"B"}', api.headers)
        assert status == 429
        assert [o["Name"] for o in limited.tracking_categories()[0]["Options"]] == ["A"]


# ------------------------------------------------------------------------------------------ line tracking


def test_unknown_categories_and_options_are_dropped_from_lines_without_a_word(api: Api, standin: XeroStandIn) -> None:
    answer = api.ok(
        "PUT",
        "/Invoices",
        {
            "Invoices": [
                invoice(
                    [{"Name": "Sales Rep", "Option": "Nobody"}],
                    [{"Name": "Department", "Option": "Alice"}],
                    [{"Name": "Sales Rep", "Option": "Old Hand"}],
                    [{"Name": "Legacy", "Option": "Gone"}],
                    # Names match exactly (after trimming): Xero's rule on case is not documented.
                    [{"Name": "sales rep", "Option": "alice"}],
                )
            ]
        },
        summarizeErrors="false",
    )
    [stored] = answer["Invoices"]
    assert stored["StatusAttributeString"] == "OK" and not stored.get("ValidationErrors")
    assert not stored.get("Warnings")
    assert [line["Tracking"] for line in stored["LineItems"]] == [[]] * 5
    [kept] = standin.invoices()
    assert all(line["Tracking"] == [] for line in kept["LineItems"])


def test_a_known_pair_is_kept_with_its_ids_on_invoices_and_credit_notes(openapi: dict[str, Any], api: Api) -> None:
    categories = api.categories()
    rep, region = categories["Sales Rep"], categories["Region"]
    alice, south = rep["Options"][0], region["Options"][1]
    wanted = [
        {
            "Name": "Sales Rep",
            "Option": "Alice",
            "TrackingCategoryID": rep["TrackingCategoryID"],
            "TrackingOptionID": alice["TrackingOptionID"],
        },
        {
            "Name": "Region",
            "Option": "South",
            "TrackingCategoryID": region["TrackingCategoryID"],
            "TrackingOptionID": south["TrackingOptionID"],
        },
    ]
    # By names (trimmed), and by IDs alone; a second pair for one category and an unknown one are dropped.
    by_ids = [{"TrackingCategoryID": region["TrackingCategoryID"], "TrackingOptionID": south["TrackingOptionID"]}]
    lines = (
        [{"Name": " Sales Rep ", "Option": "Alice "}, {"Name": "Region", "Option": "South"}],
        [{"Name": "Sales Rep", "Option": "Alice"}, {"Name": "Sales Rep", "Option": "Alice"}],
        by_ids,
    )
    put = api.ok("PUT", "/Invoices", {"Invoices": [invoice(*lines)]})
    validate(openapi, "Invoices", put)
    invoice_id = put["Invoices"][0]["InvoiceID"]
    for answer in (put, api.ok("GET", f"/Invoices/{invoice_id}")):
        tracking = [line["Tracking"] for line in answer["Invoices"][0]["LineItems"]]
        assert tracking == [wanted, wanted[:1], wanted[1:]]
    # An edit that leaves the lines alone keeps their tracking.
    edited = api.ok("POST", f"/Invoices/{invoice_id}", {"Reference": "edited"})
    assert [line["Tracking"] for line in edited["Invoices"][0]["LineItems"]] == [wanted, wanted[:1], wanted[1:]]

    note = {**invoice(lines[0]), "Type": "ACCRECCREDIT"}
    credit = api.ok("PUT", "/CreditNotes", {"CreditNotes": [note]})
    validate(openapi, "CreditNotes", credit)
    assert credit["CreditNotes"][0]["LineItems"][0]["Tracking"] == wanted


def test_more_than_two_tracking_pairs_on_a_line_are_refused(api: Api) -> None:
    three = [
        {"Name": "Sales Rep", "Option": "Alice"},
        {"Name": "Region", "Option": "North"},
        {"Name": "X", "Option": "Y"},
    ]
    answer = api.ok("PUT", "/Invoices", {"Invoices": [invoice(three)]}, summarizeErrors="false")
    [result] = answer["Invoices"]
    assert result["StatusAttributeString"] == "ERROR"
    assert [e["Message"] for e in result["ValidationErrors"]] == [TOO_MANY_TRACKING]
    status, refused = api.call("PUT", "/Invoices", {"Invoices": [invoice({"Name": "Region"})]})  # type: ignore[arg-type]
    assert status == 400
    assert TRACKING_NOT_A_LIST in json.dumps(refused)

"""The Xero stand-in, exercised over real HTTP with the official xero-python SDK."""

from __future__ import annotations

import base64
import datetime as dt
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml  # type: ignore[import-untyped]
from openapi_schema_validator import OAS30Validator
from xero_python.accounting import (
    AccountingApi,
    Contact,
    Contacts,
    CurrencyCode,
    HistoryRecord,
    HistoryRecords,
    Invoice,
    Invoices,
    LineAmountTypes,
    LineItem,
)
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import (
    AccountingBadRequestException,
    HTTPStatusException,
    NotFoundException,
    RateLimitException,
)

from pipeline.standins.xero import XeroStandIn
from pipeline.standins.xero.data import parse_ms_datetime
from pipeline.standins.xero.where import FieldSpec, WhereError, evaluate, parse_where

# Vendored (MIT): tests read nothing outside the repository.
SPEC = Path(__file__).resolve().parents[2] / "fixtures" / "xero-openapi" / "xero_accounting.normalised.yaml"
CLIENT_ID = "standin-client"
CLIENT_SECRET = "standin-secret"


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _restore_token_urls() -> Iterator[None]:
    saved = (TokenApi.client_credentials_token_url, TokenApi.refresh_token_url, TokenApi.revoke_token_url)
    yield
    TokenApi.client_credentials_token_url, TokenApi.refresh_token_url, TokenApi.revoke_token_url = saved


@pytest.fixture
def standin() -> Iterator[XeroStandIn]:
    server = XeroStandIn().start()
    yield server
    server.stop()


class Sdk:
    """An SDK client wired to a stand-in the way the reference notes show."""

    def __init__(self, standin: XeroStandIn, token: dict[str, Any] | None = None) -> None:
        TokenApi.client_credentials_token_url = standin.token_url
        TokenApi.refresh_token_url = standin.token_url
        TokenApi.revoke_token_url = standin.revoke_url
        self.store: dict[str, Any] = {}
        self.client = ApiClient(
            Configuration(oauth2_token=OAuth2Token(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)),
            pool_threads=1,
        )
        self.client.oauth2_token_getter(self._get)
        self.client.oauth2_token_saver(self._save)

        if token is None:
            self.client.get_client_credentials_token()
        else:
            self.client.set_oauth2_token(token)
            self.store["token"] = token
        self.api = AccountingApi(self.client, base_url=standin.api_url)
        self.tenant = standin.tenant_id

    def _get(self) -> dict[str, Any] | None:
        return self.store.get("token")

    def _save(self, new: dict[str, Any]) -> None:
        self.store["token"] = new


@pytest.fixture
def sdk(standin: XeroStandIn) -> Sdk:
    return Sdk(standin)


def line(
    description: str = "Widget",
    quantity: str = "1",
    unit: str = "10.00",
    tax: str = "OUTPUT",
    account: str = "200",
    **extra: Any,
) -> LineItem:
    return LineItem(
        description=description,
        quantity=Decimal(quantity),
        unit_amount=Decimal(unit),
        tax_type=tax,
        account_code=account,
        **extra,
    )


def invoice(
    contact_id: str,
    *lines: LineItem,
    number: str | None = None,
    status: str = "AUTHORISED",
    amounts: LineAmountTypes = LineAmountTypes.EXCLUSIVE,
    date: dt.date = dt.date(2024, 3, 11),
) -> Invoice:
    return Invoice(
        type="ACCREC",
        contact=Contact(contact_id=contact_id),
        invoice_number=number,
        date=date,
        due_date=date + dt.timedelta(days=30),
        line_amount_types=amounts,
        status=status,
        line_items=list(lines) or [line()],
    )


def new_contact(sdk: Sdk, name: str = "Acme Pty Ltd", number: str | None = None) -> str:
    result = sdk.api.create_contacts(
        sdk.tenant, Contacts(contacts=[Contact(name=name, contact_number=number)]), summarize_errors=False
    )
    contact = result.contacts[0]
    assert contact.status_attribute_string == "OK", contact.validation_errors
    return str(contact.contact_id)


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def bearer(sdk: Sdk) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {sdk.store['token']['access_token']}",
        "xero-tenant-id": sdk.tenant,
        "Accept": "application/json",
    }


def form_post(url: str, fields: dict[str, str], basic: bool = True) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    status, _, body = http("POST", url, urllib.parse.urlencode(fields).encode(), headers)
    return status, json.loads(body) if body else {}


# ------------------------------------------------------------------------------------------------ OAuth


def test_client_credentials_token_has_only_the_keys_the_sdk_accepts(standin: XeroStandIn) -> None:
    sdk = Sdk(standin)
    token = sdk.store["token"]
    assert set(token) <= {
        "access_token",
        "scope",
        "expires_in",
        "token_type",
        "expires_at",
        "refresh_token",
        "id_token",
    }
    assert token["token_type"] == "Bearer" and token["expires_in"] == 1800
    assert "refresh_token" not in token
    assert standin.stats()["token_requests"] == 1


def test_a_bad_client_secret_is_rejected_with_invalid_client(standin: XeroStandIn) -> None:
    status, body = form_post(
        standin.token_url,
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "wrong"},
        basic=False,
    )
    assert (status, body) == (400, {"error": "invalid_client"})


def authorization_code_token(standin: XeroStandIn) -> dict[str, Any]:
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "state": "s1",
            "redirect_uri": "http://localhost/cb",
            "scope": "offline_access accounting.transactions",
        }
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(standin.authorize_url + "?" + query, timeout=10)
    assert redirect.value.code == 302
    location = urllib.parse.urlsplit(redirect.value.headers["Location"])
    params = dict(urllib.parse.parse_qsl(location.query))
    assert location.path == "/cb" and params["state"] == "s1"
    status, token = form_post(
        standin.token_url,
        {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": "http://localhost/cb"},
    )
    assert status == 200 and token["refresh_token"]
    return token


def test_refresh_tokens_rotate_and_a_stale_one_dies_after_the_grace_period() -> None:
    standin = XeroStandIn(refresh_grace_seconds=0.3).start()
    try:
        first = authorization_code_token(standin)
        # The SDK refreshes by itself when expires_at is near, then hands the new token to the saver.
        stale_token = {**first, "scope": first["scope"].split(), "expires_at": time.time() - 10}
        sdk = Sdk(standin, token=stale_token)
        orgs = sdk.api.get_organisations(sdk.tenant)
        assert orgs.organisations[0].base_currency.value == "AUD"
        second = sdk.store["token"]
        assert second["refresh_token"] != first["refresh_token"]

        status, within_grace = form_post(
            standin.token_url, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
        )
        assert status == 200 and within_grace["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
        time.sleep(0.4)
        status, body = form_post(
            standin.token_url, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
        )
        assert (status, body) == (400, {"error": "invalid_grant"})
        status, _ = form_post(
            standin.token_url, {"grant_type": "refresh_token", "refresh_token": within_grace["refresh_token"]}
        )
        assert status == 200
        status, body = form_post(standin.token_url, {"grant_type": "refresh_token", "refresh_token": "nope"})
        assert (status, body) == (400, {"error": "invalid_grant"})
    finally:
        standin.stop()


def test_revoked_refresh_tokens_and_their_access_tokens_stop_working(standin: XeroStandIn) -> None:
    token = authorization_code_token(standin)
    headers = {"Authorization": f"Bearer {token['access_token']}", "xero-tenant-id": standin.tenant_id}
    assert http("GET", standin.api_url + "/Organisation", headers=headers)[0] == 200
    status, _ = form_post(standin.url + "/connect/revocation", {"token": token["refresh_token"]})
    assert status == 200
    status, body = form_post(
        standin.token_url, {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    )
    assert (status, body) == (400, {"error": "invalid_grant"})
    status, _, raw = http("GET", standin.api_url + "/Organisation", headers=headers)
    assert status == 401 and json.loads(raw)["Detail"] == "AuthorizationUnsuccessful"


def test_connections_lists_the_single_organisation(standin: XeroStandIn, sdk: Sdk) -> None:
    status, _, body = http("GET", standin.connections_url, headers=bearer(sdk))
    [conn] = json.loads(body)
    assert status == 200
    assert conn["tenantId"] == standin.tenant_id and conn["tenantType"] == "ORGANISATION"
    assert conn["tenantName"] == "Demo Company (AU)"


def test_expired_and_unknown_tokens_get_401_and_a_wrong_tenant_gets_403(standin: XeroStandIn, sdk: Sdk) -> None:
    status, _, body = http(
        "GET",
        standin.api_url + "/Organisation",
        headers={**bearer(sdk), "xero-tenant-id": "11111111-1111-1111-1111-111111111111"},
    )
    assert status == 403 and json.loads(body)["Detail"] == "AuthenticationUnsuccessful"
    assert http("GET", standin.api_url + "/Organisation", headers={**bearer(sdk), "xero-tenant-id": ""})[0] == 200
    status, _, body = http("GET", standin.api_url + "/Organisation", headers={"Authorization": "Bearer junk"})
    assert status == 401 and json.loads(body)["Detail"] == "AuthorizationUnsuccessful"
    standin.set_faults(expire_all_tokens=True)
    with pytest.raises(HTTPStatusException) as err:
        sdk.api.get_organisations(sdk.tenant)
    assert err.value.status == 401
    assert json.loads(err.value.body)["Detail"].startswith("TokenExpired: token expired at ")


# ------------------------------------------------------------------------------- reference endpoints


def test_organisation_accounts_tax_rates_and_currencies_parse_in_the_sdk(sdk: Sdk) -> None:
    org = sdk.api.get_organisations(sdk.tenant).organisations[0]
    assert org.country_code.value == "AU" and org.period_lock_date == dt.date(2020, 6, 30)
    accounts = {a.code: a for a in sdk.api.get_accounts(sdk.tenant).accounts}
    assert {"200", "260", "270", "400", "610", "090"} <= set(accounts)
    assert accounts["200"].type.value == "REVENUE" and accounts["090"].type.value == "BANK"
    rates = {t.tax_type: t for t in sdk.api.get_tax_rates(sdk.tenant).tax_rates}
    assert rates["OUTPUT"].effective_rate == Decimal("10") and rates["EXEMPTEXPORT"].effective_rate == 0
    currencies = {c.code.value for c in sdk.api.get_currencies(sdk.tenant).currencies}
    assert currencies == {"AUD", "NZD", "USD", "GBP", "EUR"}


def test_unknown_paths_get_xeros_plain_text_404(standin: XeroStandIn, sdk: Sdk) -> None:
    status, headers, body = http("GET", standin.api_url + "/Nope", headers=bearer(sdk))
    assert headers["Content-Type"].startswith("text/plain")
    assert status == 404 and body.decode() == "The resource you're looking for cannot be found"
    with pytest.raises(NotFoundException):
        sdk.api.get_invoice(sdk.tenant, "8d7c9d0e-0000-4000-8000-000000000000")


# ---------------------------------------------------------------------------------------- contacts


def test_contacts_and_invoices_round_trip_with_rate_headers_and_ms_dates(standin: XeroStandIn, sdk: Sdk) -> None:
    data, status, headers = sdk.api.create_contacts(
        sdk.tenant,
        Contacts(contacts=[Contact(name="Round Trip Ltd", contact_number="CIN7-1", email_address="rt@example.com")]),
        summarize_errors=False,
        idempotency_key="contact-1",
        _return_http_data_only=False,
    )
    assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
    contact = data.contacts[0]
    inv_data, status, headers = sdk.api.create_invoices(
        sdk.tenant,
        Invoices(invoices=[invoice(contact.contact_id, number="SO-1")]),
        summarize_errors=False,
        idempotency_key="invoice-1",
        _return_http_data_only=False,
    )
    created = inv_data.invoices[0]
    assert status == 200 and created.status_attribute_string == "OK"
    for name in ("X-MinLimit-Remaining", "X-DayLimit-Remaining", "X-AppMinLimit-Remaining"):
        assert int(headers[name]) > 0

    fetched, status, headers = sdk.api.get_invoice(sdk.tenant, created.invoice_id, _return_http_data_only=False)
    got = fetched.invoices[0]
    assert status == 200 and "X-MinLimit-Remaining" in headers
    assert got.date == dt.date(2024, 3, 11) and got.due_date == dt.date(2024, 4, 10)
    assert got.updated_date_utc.tzinfo is not None
    assert abs(got.updated_date_utc - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert got.contact.contact_id == contact.contact_id and got.contact.name == "Round Trip Ltd"
    assert (got.sub_total, got.total_tax, got.total) == (Decimal("10"), Decimal("1"), Decimal("11"))
    assert got.line_items[0].line_item_id and got.line_items[0].account_code == "200"

    by_number = sdk.api.get_contact_by_contact_number(sdk.tenant, "CIN7-1").contacts[0]
    assert by_number.contact_id == contact.contact_id
    raw = standin.invoices()[0]
    assert raw["Total"] == Decimal("11.00") and raw["DateString"] == "2024-03-11T00:00:00"
    assert parse_ms_datetime(raw["Date"]).date() == dt.date(2024, 3, 11)


def test_where_finds_names_with_apostrophes_and_non_ascii_but_refuses_an_escaped_quote(sdk: Sdk) -> None:
    tricky = 'Zoë\'s "Best" Café'
    for name in (tricky, "Zoë's Best Café", "Zoë's Café Two", "back\\slash Pty"):
        new_contact(sdk, name)
    found = sdk.api.get_contacts(sdk.tenant, where='Name == "Zoë\'s Best Café"').contacts
    assert [c.name for c in found] == ["Zoë's Best Café"]
    lowered = sdk.api.get_contacts(sdk.tenant, where='Name.ToLower() == "zoë\'s café two"').contacts
    assert [c.name for c in lowered] == ["Zoë's Café Two"]
    # A backslash is an ordinary character...
    slashed = sdk.api.get_contacts(sdk.tenant, where='Name == "back\\slash Pty"').contacts
    assert [c.name for c in slashed] == ["back\\slash Pty"]
    # ...and there is no escape for a quote: real Xero answers 400 QueryParseException "Syntax error".
    with pytest.raises(HTTPStatusException) as refused:
        sdk.api.get_contacts(sdk.tenant, where='Name == "Zoë\'s \\"Best\\" Café"')
    assert refused.value.status == 400 and "QueryParseException" in str(refused.value.body)
    # Such a name is found with searchTerm and compared exactly.
    searched = sdk.api.get_contacts(sdk.tenant, search_term='"Best"').contacts
    assert [c.name for c in searched] == [tricky]


def test_where_supports_or_parentheses_guid_and_datetime(sdk: Sdk) -> None:
    a, b = new_contact(sdk, "Alpha"), new_contact(sdk, "Beta")
    new_contact(sdk, "Gamma")
    both = sdk.api.get_contacts(
        sdk.tenant, where=f'(ContactID == guid("{a}") || Name == "beta") && ContactStatus == "ACTIVE"'
    ).contacts
    assert {c.contact_id for c in both} == {a, b}
    sdk.api.create_invoices(
        sdk.tenant,
        Invoices(
            invoices=[
                invoice(a, date=dt.date(2024, 1, 30)),
                invoice(a, date=dt.date(2024, 1, 31)),
                invoice(b, date=dt.date(2024, 2, 1)),
            ]
        ),
    )
    dated = sdk.api.get_invoices(sdk.tenant, where='Type=="ACCREC" && Date >= DateTime(2024, 01, 31)').invoices
    assert sorted(i.date for i in dated) == [dt.date(2024, 1, 31), dt.date(2024, 2, 1)]
    of_a = sdk.api.get_invoices(sdk.tenant, where=f'Contact.ContactID == guid("{a}")').invoices
    assert len(of_a) == 2


def test_a_malformed_where_clause_is_a_query_parse_exception(standin: XeroStandIn, sdk: Sdk) -> None:
    for where in ('Name == "unterminated', "Name == 'single quoted'", 'Nonsense == "x"', "Name == 5"):
        url = standin.api_url + "/Contacts?" + urllib.parse.urlencode({"where": where})
        status, _, body = http("GET", url, headers=bearer(sdk))
        payload = json.loads(body)
        assert status == 400, where
        assert payload["ErrorNumber"] == 16 and payload["Type"] == "QueryParseException"


def test_paging_clamps_page_size_to_1000_and_reports_pagination(standin: XeroStandIn, sdk: Sdk) -> None:
    standin.seed_contacts([{"Name": f"Customer {i:04d}", "ContactNumber": f"N{i}"} for i in range(1005)])
    first = sdk.api.get_contacts(sdk.tenant, page=1, page_size=5000)
    assert len(first.contacts) == 1000
    p = first.pagination
    assert (p.page, p.page_size, p.page_count, p.item_count) == (1, 1000, 2, 1005)
    second = sdk.api.get_contacts(sdk.tenant, page=2, page_size=1000)
    assert [c.name for c in second.contacts] == [f"Customer {i:04d}" for i in range(1000, 1005)]
    unpaged = sdk.api.get_contacts(sdk.tenant)
    assert len(unpaged.contacts) == 1005 and unpaged.pagination is None
    searched = sdk.api.get_contacts(sdk.tenant, search_term="customer 100")
    assert [c.name for c in searched.contacts] == [f"Customer {i:04d}" for i in range(1000, 1005)]


def test_contact_names_are_unique_among_active_contacts_only(standin: XeroStandIn, sdk: Sdk) -> None:
    standin.seed_contacts([{"Name": "Old Co", "ContactNumber": "OLD", "ContactStatus": "ARCHIVED"}])
    new_contact(sdk, "Taken Co")
    result = sdk.api.create_contacts(
        sdk.tenant,
        Contacts(
            contacts=[
                Contact(name="taken co"),
                Contact(name="Old Co"),
                Contact(name="Dup Number", contact_number="OLD"),
            ]
        ),
        summarize_errors=False,
    )
    taken, reused, dup_number = result.contacts
    assert taken.status_attribute_string == "ERROR"
    assert taken.validation_errors[0].message == (
        "The contact name taken co is already assigned to another contact. "
        "The contact name must be unique across all active contacts."
    )
    assert taken.contact_id == "00000000-0000-0000-0000-000000000000"
    assert reused.status_attribute_string == "OK"
    assert dup_number.status_attribute_string == "ERROR"
    assert "already assigned" in dup_number.validation_errors[0].message
    assert sdk.api.get_contacts(sdk.tenant, where='Name == "Old Co"').contacts[0].contact_status == "ACTIVE"
    archived = sdk.api.get_contacts(sdk.tenant, include_archived=True, where='Name == "Old Co"').contacts
    assert sorted(c.contact_status for c in archived) == ["ACTIVE", "ARCHIVED"]


def test_post_contacts_updates_by_contact_number_and_summarized_errors_save_nothing(
    standin: XeroStandIn, sdk: Sdk
) -> None:
    contact_id = new_contact(sdk, "Before Name", number="CN-9")
    updated = sdk.api.update_or_create_contacts(
        sdk.tenant, Contacts(contacts=[Contact(contact_number="CN-9", name="After Name")])
    ).contacts[0]
    assert updated.contact_id == contact_id and updated.name == "After Name"
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.api.create_contacts(sdk.tenant, Contacts(contacts=[Contact(name="Fresh"), Contact(name="fresh")]))
    assert err.value.error_data["Type"] == "ValidationException"
    assert [e["Name"] for e in err.value.error_data["Elements"]] == ["fresh"]
    assert [c["Name"] for c in standin.contacts()] == ["After Name"]


# ---------------------------------------------------------------------------------------- invoices


def test_partial_batch_saves_good_elements_and_flags_the_bad_tax_type(standin: XeroStandIn, sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    result = sdk.api.create_invoices(
        sdk.tenant,
        Invoices(
            invoices=[
                invoice(contact_id, number="A-1"),
                invoice(contact_id, line(tax="XYZ"), number="A-2"),
                invoice(contact_id, number="A-3"),
            ]
        ),
        summarize_errors=False,
        idempotency_key="batch-1",
    )
    ok1, bad, ok3 = result.invoices
    assert ok1.status_attribute_string == ok3.status_attribute_string == "OK"
    assert bad.status_attribute_string == "ERROR" and bad.has_errors is True
    assert [e.message for e in bad.validation_errors] == [
        "The TaxType code 'XYZ' does not exist or cannot be used for this type of transaction."
    ]
    assert bad.invoice_number == "A-2" and bad.invoice_id == "00000000-0000-0000-0000-000000000000"
    assert sorted(i["InvoiceNumber"] for i in standin.invoices()) == ["A-1", "A-3"]


def test_without_summarize_errors_one_bad_element_rejects_the_whole_batch(standin: XeroStandIn, sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.api.create_invoices(
            sdk.tenant,
            Invoices(
                invoices=[invoice(contact_id, number="B-1"), invoice(contact_id, line(account="999"), number="B-2")]
            ),
        )
    assert err.value.error_data["Message"] == "A validation exception occurred"
    assert err.value.reason == "Account code '999' is not a valid code for this document."
    assert standin.invoices() == []


def test_a_duplicate_invoice_number_via_put_is_an_element_error(sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    sdk.api.create_invoices(sdk.tenant, Invoices(invoices=[invoice(contact_id, number="DUP-1")]))
    result = sdk.api.create_invoices(
        sdk.tenant, Invoices(invoices=[invoice(contact_id, number="DUP-1")]), summarize_errors=False
    )
    assert result.invoices[0].status_attribute_string == "ERROR"
    assert result.invoices[0].validation_errors[0].message == "Invoice # must be unique."


def test_post_with_an_existing_invoice_number_updates_that_invoice(standin: XeroStandIn, sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    created = sdk.api.create_invoices(
        sdk.tenant, Invoices(invoices=[invoice(contact_id, number="UP-1", status="DRAFT")])
    ).invoices[0]
    updated = sdk.api.update_or_create_invoices(
        sdk.tenant, Invoices(invoices=[invoice(contact_id, line(unit="20.00"), number="UP-1", status="AUTHORISED")])
    ).invoices[0]
    assert updated.invoice_id == created.invoice_id and updated.total == Decimal("22")
    assert updated.updated_date_utc >= created.updated_date_utc
    assert len(standin.invoices()) == 1


def test_an_idempotent_replay_returns_the_same_invoice_and_creates_nothing(standin: XeroStandIn, sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    body = Invoices(invoices=[invoice(contact_id)])
    first = sdk.api.create_invoices(sdk.tenant, body, summarize_errors=False, idempotency_key="same-key")
    again = sdk.api.create_invoices(sdk.tenant, body, summarize_errors=False, idempotency_key="same-key")
    assert again.invoices[0].invoice_id == first.invoices[0].invoice_id
    assert again.invoices[0].invoice_number == first.invoices[0].invoice_number
    assert len(standin.invoices()) == 1
    assert standin.stats()["idempotent_replays"] == 1


def test_reusing_an_idempotency_key_with_a_different_body_is_rejected(standin: XeroStandIn, sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    sdk.api.create_invoices(sdk.tenant, Invoices(invoices=[invoice(contact_id)]), idempotency_key="k-2")
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.api.create_invoices(
            sdk.tenant, Invoices(invoices=[invoice(contact_id, line(unit="99.00"))]), idempotency_key="k-2"
        )
    assert err.value.error_data == {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "Idempotency Key: k-2 is used with a different request.",
    }
    assert len(standin.invoices()) == 1


def test_idempotency_keys_are_forgotten_after_their_ttl() -> None:
    standin = XeroStandIn(idempotency_ttl_seconds=0.2).start()
    try:
        sdk = Sdk(standin)
        contact_id = new_contact(sdk)
        body = Invoices(invoices=[invoice(contact_id)])
        sdk.api.create_invoices(sdk.tenant, body, idempotency_key="short")
        time.sleep(0.3)
        sdk.api.create_invoices(sdk.tenant, body, idempotency_key="short")
        assert len(standin.invoices()) == 2
    finally:
        standin.stop()


def test_exclusive_and_inclusive_totals_follow_the_conventions(sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    lines = (line("A", "3", "19.99"), line("B", "1", "5.55", tax="EXEMPTOUTPUT"), line("C", "2", "0.35"))
    exclusive, inclusive = sdk.api.create_invoices(
        sdk.tenant,
        Invoices(
            invoices=[invoice(contact_id, *lines), invoice(contact_id, *lines, amounts=LineAmountTypes.INCLUSIVE)]
        ),
    ).invoices
    # Exclusive: tax = round(LineAmount * 0.1) per line; Total = SubTotal + TotalTax.
    assert [li.tax_amount for li in exclusive.line_items] == [Decimal("6"), Decimal("0"), Decimal("0.07")]
    assert (exclusive.sub_total, exclusive.total_tax, exclusive.total) == (
        Decimal("66.22"),
        Decimal("6.07"),
        Decimal("72.29"),
    )
    # Inclusive: tax = round(LineAmount * 0.1 / 1.1) per line; SubTotal = Total - TotalTax.
    assert [li.tax_amount for li in inclusive.line_items] == [Decimal("5.45"), Decimal("0"), Decimal("0.06")]
    assert (inclusive.sub_total, inclusive.total_tax, inclusive.total) == (
        Decimal("60.71"),
        Decimal("5.51"),
        Decimal("66.22"),
    )


def test_unitdp_4_keeps_four_decimals_otherwise_unit_amount_is_rounded_first(sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    body = Invoices(invoices=[invoice(contact_id, line("Bolt", "7", "1.2345"))])
    rounded = sdk.api.create_invoices(sdk.tenant, body).invoices[0].line_items[0]
    precise = sdk.api.create_invoices(sdk.tenant, body, unitdp=4).invoices[0].line_items[0]
    assert (rounded.unit_amount, rounded.line_amount) == (Decimal("1.23"), Decimal("8.61"))
    assert (precise.unit_amount, precise.line_amount) == (Decimal("1.2345"), Decimal("8.64"))
    again = sdk.api.get_invoices(sdk.tenant, page=1, unitdp=4).invoices
    assert {i.line_items[0].unit_amount for i in again} == {Decimal("1.23"), Decimal("1.2345")}


def test_line_amount_tax_override_and_discount_rules(sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    result = sdk.api.create_invoices(
        sdk.tenant,
        Invoices(
            invoices=[
                invoice(
                    contact_id,
                    line(
                        "Disc",
                        "4",
                        "12.50",
                        discount_rate=Decimal("10"),
                        line_amount=Decimal("45.00"),
                        tax_amount=Decimal("4.49"),
                    ),
                ),
                invoice(contact_id, line("Wrong", "2", "10.00", line_amount=Decimal("20.02"))),
            ]
        ),
        summarize_errors=False,
    )
    good, bad = result.invoices
    assert good.status_attribute_string == "OK" and good.is_discounted is True
    assert (good.line_items[0].line_amount, good.line_items[0].tax_amount, good.total) == (
        Decimal("45"),
        Decimal("4.49"),
        Decimal("49.49"),
    )
    assert bad.validation_errors[0].message.startswith("The line total 20.02 does not match")


def test_other_element_rules_use_xeros_messages(standin: XeroStandIn, sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    standin.seed_contacts(
        [{"Name": "Gone Ltd", "ContactID": "5b0e2d1c-0000-4000-8000-00000000abcd", "ContactStatus": "ARCHIVED"}]
    )
    cases = [
        invoice(contact_id, line(description="")),
        invoice(contact_id, date=dt.date(2020, 6, 30)),
        invoice("5b0e2d1c-0000-4000-8000-00000000abcd"),
        invoice(contact_id, line(tax="INPUT")),
        invoice(contact_id, line(tax="TAX001")),
    ]
    jpy = invoice(contact_id)
    jpy.currency_code = CurrencyCode.JPY
    result = sdk.api.create_invoices(sdk.tenant, Invoices(invoices=[*cases, jpy]), summarize_errors=False)
    messages = [i.validation_errors[0].message for i in result.invoices]
    assert messages[0] == "The description field is mandatory for each line item."
    assert messages[1] == "The document date cannot be before the period lock date (30 Jun 2020)."
    assert messages[2].startswith("The contact is archived")
    assert messages[3] == messages[4].replace("TAX001", "INPUT")
    assert messages[5].startswith("The currency JPY has not been enabled")
    assert standin.invoices() == []


def test_a_contact_given_by_name_alone_is_found_or_created(standin: XeroStandIn, sdk: Sdk) -> None:
    existing = new_contact(sdk, "Known Buyer")
    first, second, third = sdk.api.create_invoices(
        sdk.tenant,
        Invoices(
            invoices=[
                Invoice(
                    type="ACCREC", contact=Contact(name="known buyer"), date=dt.date(2024, 5, 1), line_items=[line()]
                ),
                Invoice(type="ACCREC", contact=Contact(name="Walk-in"), date=dt.date(2024, 5, 1), line_items=[line()]),
                Invoice(type="ACCREC", contact=Contact(name="Walk-in"), date=dt.date(2024, 5, 1), line_items=[line()]),
            ]
        ),
    ).invoices
    assert first.contact.contact_id == existing
    assert second.contact.contact_id == third.contact.contact_id != existing
    assert sorted(c["Name"] for c in standin.contacts()) == ["Known Buyer", "Walk-in"]
    assert all(c["IsCustomer"] for c in standin.contacts())


def test_a_paid_invoice_cannot_be_modified(standin: XeroStandIn, sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    created = sdk.api.create_invoices(sdk.tenant, Invoices(invoices=[invoice(contact_id)])).invoices[0]
    status, _, body = http("POST", f"{standin.url}/_standin/invoices/{created.invoice_id}/pay")
    paid = json.loads(body)
    assert status == 200 and paid["Status"] == "PAID" and paid["AmountDue"] == "0.00"
    assert paid["AmountPaid"] == paid["Total"] == "11.00"
    result = sdk.api.update_or_create_invoices(
        sdk.tenant,
        Invoices(invoices=[Invoice(invoice_id=created.invoice_id, reference="changed")]),
        summarize_errors=False,
    )
    assert result.invoices[0].validation_errors[0].message == (
        "This document cannot be edited as it has a payment or credit note allocated to it."
    )
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.api.update_invoice(
            sdk.tenant, created.invoice_id, Invoices(invoices=[Invoice(invoice_id=created.invoice_id, status="VOIDED")])
        )
    assert err.value.reason.startswith("This document cannot be edited")
    assert sdk.api.get_invoice(sdk.tenant, created.invoice_id).invoices[0].status == "PAID"


def test_an_authorised_invoice_can_be_voided_and_then_not_edited(sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    created = sdk.api.create_invoices(sdk.tenant, Invoices(invoices=[invoice(contact_id)])).invoices[0]
    voided = sdk.api.update_invoice(
        sdk.tenant, created.invoice_id, Invoices(invoices=[Invoice(invoice_id=created.invoice_id, status="VOIDED")])
    ).invoices[0]
    assert voided.status == "VOIDED" and voided.amount_due == 0 and voided.total == Decimal("11")
    assert len(voided.line_items) == 1
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.api.update_invoice(
            sdk.tenant,
            created.invoice_id,
            Invoices(invoices=[Invoice(invoice_id=created.invoice_id, status="AUTHORISED")]),
        )
    assert err.value.reason == "Invoice not of valid status for modification"


def test_status_transitions_follow_xeros_rules(sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    draft = sdk.api.create_invoices(sdk.tenant, Invoices(invoices=[invoice(contact_id, status="DRAFT")]))
    invoice_id = draft.invoices[0].invoice_id

    def move(status: str) -> str:
        result = sdk.api.update_or_create_invoices(
            sdk.tenant, Invoices(invoices=[Invoice(invoice_id=invoice_id, status=status)]), summarize_errors=False
        ).invoices[0]
        return str(result.status_attribute_string)

    assert move("SUBMITTED") == "OK"
    assert move("DRAFT") == "OK"
    assert move("AUTHORISED") == "OK"
    assert move("DRAFT") == "ERROR"
    assert move("DELETED") == "ERROR"
    paid_on_create = sdk.api.create_invoices(
        sdk.tenant, Invoices(invoices=[invoice(contact_id, status="PAID")]), summarize_errors=False
    ).invoices[0]
    assert paid_on_create.status_attribute_string == "ERROR"


def test_invoice_filters_if_modified_since_and_line_items_only_on_paged_calls(sdk: Sdk) -> None:
    a, b = new_contact(sdk, "A"), new_contact(sdk, "B")
    sdk.api.create_invoices(
        sdk.tenant, Invoices(invoices=[invoice(a, number="F-1"), invoice(a, number="F-2", status="DRAFT")])
    )
    cutoff = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    sdk.api.create_invoices(sdk.tenant, Invoices(invoices=[invoice(b, number="F-3")]))
    unpaged = sdk.api.get_invoices(sdk.tenant)
    assert len(unpaged.invoices) == 3 and all(i.line_items is None for i in unpaged.invoices)
    assert all(i.line_items for i in sdk.api.get_invoices(sdk.tenant, page=1).invoices)
    numbers = sdk.api.get_invoices(sdk.tenant, invoice_numbers=["F-1", "F-3"]).invoices
    assert sorted(i.invoice_number for i in numbers) == ["F-1", "F-3"]
    assert [
        i.invoice_number for i in sdk.api.get_invoices(sdk.tenant, contact_i_ds=[a], statuses=["DRAFT"]).invoices
    ] == ["F-2"]
    assert [i.invoice_number for i in sdk.api.get_invoices(sdk.tenant, if_modified_since=cutoff).invoices] == ["F-3"]
    ordered = sdk.api.get_invoices(sdk.tenant, order="InvoiceNumber DESC").invoices
    assert [i.invoice_number for i in ordered] == ["F-3", "F-2", "F-1"]
    assert sdk.api.get_invoice(sdk.tenant, "F-2").invoices[0].status == "DRAFT"


def test_history_records_accept_250_characters_but_not_251(sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    invoice_id = sdk.api.create_invoices(sdk.tenant, Invoices(invoices=[invoice(contact_id)])).invoices[0].invoice_id
    ok = sdk.api.create_invoice_history(
        sdk.tenant, invoice_id, HistoryRecords(history_records=[HistoryRecord(details="x" * 250)])
    )
    assert ok.history_records[0].user == "System Generated"
    with pytest.raises(AccountingBadRequestException):
        sdk.api.create_invoice_history(
            sdk.tenant, invoice_id, HistoryRecords(history_records=[HistoryRecord(details="x" * 251)])
        )
    assert len(sdk.api.get_invoice_history(sdk.tenant, invoice_id).history_records) == 1


def test_a_body_over_3_5_mb_is_rejected_with_413(standin: XeroStandIn, sdk: Sdk) -> None:
    body = json.dumps({"Invoices": [{"Reference": "x" * (4 * 1024 * 1024)}]}).encode()
    status, _, text = http(
        "PUT", standin.api_url + "/Invoices", body, {**bearer(sdk), "Content-Type": "application/json"}
    )
    assert status == 413 and text == b"The request was too large"
    assert standin.invoices() == []


# ------------------------------------------------------------------------------------- rate limits


def test_the_minute_limit_returns_429_with_retry_after_and_the_problem_header() -> None:
    standin = XeroStandIn(minute_limit=3, window_seconds=1.5).start()
    try:
        sdk = Sdk(standin)
        remaining = []
        for _ in range(3):
            _, _, headers = sdk.api.get_currencies(sdk.tenant, _return_http_data_only=False)
            remaining.append(int(headers["X-MinLimit-Remaining"]))
        assert remaining == [2, 1, 0]
        # POST is the method urllib3 never retries, so the SDK surfaces the 429 as is.
        with pytest.raises(RateLimitException) as err:
            sdk.api.update_or_create_contacts(sdk.tenant, Contacts(contacts=[Contact(name="Too Soon")]))
        assert err.value.rate_limit == "minute"
        assert 1 <= int(err.value.headers["Retry-After"]) <= 2
        assert standin.stats()["rate_limited"] == 1
        # GET honours Retry-After inside urllib3 (Retry.DEFAULT): the SDK call waits and then succeeds.
        started = time.monotonic()
        assert sdk.api.get_currencies(sdk.tenant).currencies
        assert time.monotonic() - started >= 0.5
        assert standin.stats()["rate_limited"] == 2
    finally:
        standin.stop()


def test_day_and_concurrent_limits_name_their_problem() -> None:
    standin = XeroStandIn(day_limit=1, concurrent_limit=1).start()
    try:
        sdk = Sdk(standin)
        standin.set_faults(latency_seconds=0.3)
        results: list[int] = []

        def call() -> None:
            status, _, _ = http("GET", standin.api_url + "/Currencies", headers=bearer(sdk))
            results.append(status)

        threads = [threading.Thread(target=call) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [200, 429]
        standin.set_faults(latency_seconds=0)
        status, headers, _ = http("GET", standin.api_url + "/Currencies", headers=bearer(sdk))
        assert status == 429 and headers["X-Rate-Limit-Problem"] == "day"
        assert int(headers["Retry-After"]) > 3600
    finally:
        standin.stop()


# ------------------------------------------------------------------------------------------- faults


def test_an_outage_returns_503_until_it_ends_and_counts_down_faults(standin: XeroStandIn, sdk: Sdk) -> None:
    standin.set_faults(outage_seconds=0.3)
    with pytest.raises(HTTPStatusException) as err:
        sdk.api.get_currencies(sdk.tenant)
    assert err.value.status == 503
    assert err.value.body.decode() == "The service is currently unavailable"
    time.sleep(0.35)
    standin.set_faults(rate_limit_next=1, server_error_next=1)
    with pytest.raises(RateLimitException) as limited:
        sdk.api.update_or_create_contacts(sdk.tenant, Contacts(contacts=[Contact(name="Later")]))
    assert limited.value.headers["Retry-After"] == "1"
    with pytest.raises(HTTPStatusException) as err:
        sdk.api.get_currencies(sdk.tenant)
    assert err.value.status == 500
    assert sdk.api.get_currencies(sdk.tenant).currencies
    standin.set_faults(offline_seconds=5)
    status, _, body = http("GET", standin.api_url + "/Currencies", headers=bearer(sdk))
    assert (status, body) == (503, b"The Organisation is offline")


def test_a_dropped_response_after_commit_leaves_the_write_in_place(standin: XeroStandIn, sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    standin.set_faults(drop_response_after_commit_next=1)
    # POST is not retried by urllib3, so the client sees the connection failure.
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.MaxRetryError)):
        sdk.api.update_or_create_invoices(
            sdk.tenant, Invoices(invoices=[invoice(contact_id, number="DROP-1")]), idempotency_key="drop-1"
        )
    assert [i["InvoiceNumber"] for i in standin.invoices()] == ["DROP-1"]
    assert standin.stats()["dropped_responses"] == 1
    # A retry with the same key replays the committed result instead of writing again.
    retry = sdk.api.update_or_create_invoices(
        sdk.tenant, Invoices(invoices=[invoice(contact_id, number="DROP-1")]), idempotency_key="drop-1"
    )
    assert retry.invoices[0].invoice_number == "DROP-1" and len(standin.invoices()) == 1


def test_urllib3_retries_a_dropped_put_and_the_idempotency_key_absorbs_it(standin: XeroStandIn, sdk: Sdk) -> None:
    contact_id = new_contact(sdk)
    standin.set_faults(drop_response_after_commit_next=1)
    result = sdk.api.create_invoices(sdk.tenant, Invoices(invoices=[invoice(contact_id)]), idempotency_key="put-1")
    assert result.invoices[0].invoice_id == standin.invoices()[0]["InvoiceID"]
    assert len(standin.invoices()) == 1 and standin.stats()["idempotent_replays"] == 1


def test_unknown_faults_are_rejected_and_reset_clears_data_and_faults(standin: XeroStandIn, sdk: Sdk) -> None:
    with pytest.raises(ValueError, match="unknown faults"):
        standin.set_faults(meteor_strike=True)
    new_contact(sdk)
    standin.set_faults(outage_seconds=60)
    status, _, _ = http("POST", standin.url + "/_standin/reset", b"")
    assert status == 200
    assert standin.contacts() == [] and standin.stats()["calls"] == 0
    assert sdk.api.get_currencies(sdk.tenant).currencies


# -------------------------------------------------------------------------------------- admin + CLI


def test_admin_endpoints_seed_read_and_never_count_as_api_calls(standin: XeroStandIn) -> None:
    seeds = json.dumps([{"Name": "Seeded", "ContactNumber": "S-1"}, {"Name": "Gone", "ContactStatus": "ARCHIVED"}])
    status, _, body = http("POST", standin.url + "/_standin/contacts", seeds.encode())
    assert status == 200 and [c["Name"] for c in json.loads(body)] == ["Seeded", "Gone"]
    status, _, body = http("POST", standin.url + "/_standin/faults", json.dumps({"rate_limit_next": 2}).encode())
    assert json.loads(body)["faults"]["rate_limit_next"] == 2
    _, _, body = http("GET", standin.url + "/_standin/contacts")
    assert [c["ContactStatus"] for c in json.loads(body)] == ["ACTIVE", "ARCHIVED"]
    _, _, body = http("GET", standin.url + "/_standin/stats")
    assert json.loads(body)["calls"] == 0
    assert http("GET", standin.url + "/_standin/invoices")[2] == b"[]"


def test_main_serves_in_the_foreground_until_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.standins.xero",
            "--port",
            "0",
            "--minute-limit",
            "5",
            "--window-seconds",
            "2",
            "--period-lock-date",
            "none",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        status, _, body = http("GET", url + "/_standin/stats")
        assert status == 200 and json.loads(body)["calls"] == 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()


# ----------------------------------------------------------------------------------------- OpenAPI


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC.open() as fh:
        spec: dict[str, Any] = yaml.load(fh, Loader=loader)
    return spec


def validate(spec: dict[str, Any], schema_name: str, payload: Any) -> None:
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    errors = sorted(OAS30Validator(root).iter_errors(payload), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def test_responses_validate_against_the_xero_openapi_schemas(
    openapi: dict[str, Any], standin: XeroStandIn, sdk: Sdk
) -> None:
    contact_id = new_contact(sdk, "Schema Co", number="SCH-1")
    body = json.dumps(
        {
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": contact_id},
                    "Date": "2024-03-11",
                    "DueDate": "2024-04-10",
                    "Status": "AUTHORISED",
                    "LineAmountTypes": "Exclusive",
                    "InvoiceNumber": "SCH-INV-1",
                    "LineItems": [
                        {
                            "Description": "Thing",
                            "Quantity": 2,
                            "UnitAmount": 9.99,
                            "AccountCode": "200",
                            "TaxType": "OUTPUT",
                        }
                    ],
                },
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": contact_id},
                    "LineItems": [{"Description": "x", "TaxType": "NOPE"}],
                },
            ]
        }
    ).encode()
    headers = {**bearer(sdk), "Content-Type": "application/json"}
    status, _, raw = http("PUT", standin.api_url + "/Invoices?summarizeErrors=false", body, headers)
    put = json.loads(raw)
    assert status == 200
    validate(openapi, "Invoices", put)
    invoice_id = put["Invoices"][0]["InvoiceID"]
    for path, schema in (
        (f"/Invoices/{invoice_id}", "Invoices"),
        ("/Invoices?page=1", "Invoices"),
        ("/Contacts?page=1", "Contacts"),
        ("/Contacts/SCH-1", "Contacts"),
        ("/Organisation", "Organisations"),
        ("/Accounts", "Accounts"),
        ("/TaxRates", "TaxRates"),
    ):
        status, _, raw = http("GET", standin.api_url + path, headers=bearer(sdk))
        assert status == 200, path
        validate(openapi, schema, json.loads(raw))
    status, _, raw = http("PUT", standin.api_url + "/Invoices", body, headers)
    assert status == 400
    validate(openapi, "Error", json.loads(raw))


# ------------------------------------------------------------------------------------ where parser


WHERE_SCHEMA: FieldSpec = {
    "Name": "string",
    "IsCustomer": "bool",
    "Total": "number",
    "Date": "date",
    "Contact": {"ContactID": "guid"},
}
ROW = {
    ("Name",): "O'Brien & Sons",
    ("IsCustomer",): True,
    ("Total",): Decimal("10.50"),
    ("Date",): dt.date(2024, 1, 31),
    ("Contact", "ContactID"): "5B0E2D1C-0000-4000-8000-00000000ABCD",
}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ('Name == "o\'brien & sons"', True),
        ('Name != "O\'Brien & Sons"', False),
        ("IsCustomer", True),
        ("!IsCustomer || Total > 10", True),
        ("IsCustomer == false or (Total >= 10.5 and Total < 11)", True),
        ("Date == DateTime(2024, 01, 31)", True),
        ("Date > DateTime(2024, 01, 31, 0, 0, 1)", False),
        ('Contact.ContactID == guid("5b0e2d1c-0000-4000-8000-00000000abcd")', True),
        ('Name.EndsWith("SONS") AND NOT Name.Contains("ltd")', True),
        ("Name == null", False),
    ],
)
def test_where_expressions_evaluate_like_xero(where: str, expected: bool) -> None:
    node = parse_where(where, WHERE_SCHEMA, "Contact")
    assert evaluate(node, ROW.get) is expected


@pytest.mark.parametrize(
    "where",
    [
        'Name == "x" &&',
        "Name = = 'x'",
        'Name.Foo("x")',
        'Total == "ten"',
        "IsCustomer > true",
        "DateTime(2024, 13, 1) == Date",
        'Contact == "x"',
        '(Name == "x"',
        'Name == "a" extra',
    ],
)
def test_malformed_where_expressions_raise_where_error(where: str) -> None:
    with pytest.raises(WhereError):
        parse_where(where, WHERE_SCHEMA, "Contact")

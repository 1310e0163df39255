"""The Cin7 and Xero clients against the stand-ins over real HTTP (the Xero one through xero-python)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr
from sqlalchemy import select

from mappings import Cin7Purchase, Cin7PurchaseListRow, Cin7SupplierChange
from pipeline.context import TenantContext, tenant_context
from pipeline.errors import ErrorClass, SyncError
from pipeline.ledger.models import OAuthToken
from pipeline.ratelimit import LocalRateLimiter, RateLimitTimeout
from pipeline.settings import Settings
from pipeline.source.cin7core.client import Cin7Client
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.generator import generate, generate_purchases, with_purchases
from pipeline.standins.generator.purchase_documents import bill_number, bills_of
from pipeline.standins.xero import XeroStandIn
from pipeline.xero.auth import TokenSet, XeroTokenManager, code_from_callback, consent_url
from pipeline.xero.client import xero_string_literal
from tests.pipeline.environment import runtime_env, xero_client_env

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def cin7() -> Iterator[Cin7StandIn]:
    standin = Cin7StandIn(dataset=generate(3, 1200, now=NOW)).start()
    yield standin
    standin.stop()


def _cin7_settings(standin: Cin7StandIn, **extra: Any) -> Settings:
    return Settings.model_validate(
        {
            "CIN7_API_URL": standin.api_url,
            "CIN7_ACCOUNT_ID": standin.account_id,
            "CIN7_APPLICATION_KEY": standin.application_key,
            "CIN7_THROTTLE_WAIT_SECONDS": 0.2,
            **extra,
        }
    )


def test_cin7_sale_list_pages_at_the_largest_size_from_a_watermark(cin7: Cin7StandIn) -> None:
    client = Cin7Client(_cin7_settings(cin7))
    pages = list(client.iter_sale_pages(None))
    assert [len(p) for p in pages] == [1000, 200]
    assert cin7.stats()["by_endpoint"]["saleList"] == 2
    newest = max(datetime.fromisoformat(r["Updated"].replace("Z", "+00:00")) for p in pages for r in p)
    recent = [r for p in client.iter_sale_pages(newest - timedelta(seconds=1)) for r in p]
    assert recent and all(
        datetime.fromisoformat(r["Updated"].replace("Z", "+00:00")) >= newest - timedelta(seconds=1) for r in recent
    )


def test_cin7_throttling_by_429_or_503_is_waited_out_and_retried(cin7: Cin7StandIn) -> None:
    client = Cin7Client(_cin7_settings(cin7))
    sale_id = cin7.sale(generate(3, 1200, now=NOW).sales[0]["ID"])["ID"]
    cin7.set_faults(throttle_next=2)
    assert client.get_sale(sale_id)["ID"] == sale_id
    cin7.set_faults(throttle_next=1, throttle_status=503)
    assert client.get_sale(sale_id)["ID"] == sale_id
    assert cin7.stats()["throttled"] == 3


def test_a_sale_read_that_may_not_wait_is_refused_unsent_when_the_minute_has_no_slot(cin7: Cin7StandIn) -> None:
    # Two calls a minute for detail reads: 12 a minute, 10 of them kept for list reads.
    client = Cin7Client(_cin7_settings(cin7, CIN7_CALLS_PER_MINUTE=12), limiter=LocalRateLimiter())
    sale_id = cin7.sale(generate(3, 1200, now=NOW).sales[0]["ID"])["ID"]
    assert client.get_sale(sale_id, wait=False)["ID"] == sale_id
    assert client.get_sale(sale_id, wait=False)["ID"] == sale_id
    sent = cin7.stats()["by_endpoint"]["sale"]
    started = time.monotonic()
    with pytest.raises(RateLimitTimeout):
        client.get_sale(sale_id, wait=False)
    assert time.monotonic() - started < 0.5
    assert cin7.stats()["by_endpoint"]["sale"] == sent


def test_cin7_errors_are_classified_including_errors_inside_http_200(cin7: Cin7StandIn) -> None:
    client = Cin7Client(_cin7_settings(cin7, CIN7_MAX_THROTTLE_RETRIES=0))
    cin7.set_faults(error_in_200_next=1)
    with pytest.raises(SyncError) as inside_200:
        client.me()
    assert inside_200.value.error_class is ErrorClass.TRANSIENT
    bad = Cin7Client(_cin7_settings(cin7, CIN7_APPLICATION_KEY="00000000-0000-0000-0000-000000000000"))
    with pytest.raises(SyncError) as forbidden:
        bad.me()
    assert forbidden.value.error_class is ErrorClass.CONFIGURATION
    cin7.set_faults(throttle_next=1)
    with pytest.raises(SyncError) as throttled:
        client.me()
    assert throttled.value.error_class is ErrorClass.RATE_LIMITED


@pytest.fixture
def cin7_purchases() -> Iterator[Cin7StandIn]:
    world = with_purchases(generate(3, 10, now=NOW), generate_purchases(3, 250, now=NOW))
    standin = Cin7StandIn(dataset=world).start()
    yield standin
    standin.stop()


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_cin7_purchase_list_pages_from_a_last_updated_date_watermark(cin7_purchases: Cin7StandIn) -> None:
    client = Cin7Client(_cin7_settings(cin7_purchases, CIN7_PAGE_SIZE=100))
    pages = list(client.iter_purchase_pages(None))
    assert [len(p) for p in pages] == [100, 100, 50]
    assert cin7_purchases.stats()["by_endpoint"]["purchaseList"] == 3
    rows = [Cin7PurchaseListRow.model_validate(r) for p in pages for r in p]
    assert len({r.id for r in rows}) == 250
    stamps = sorted(_stamp(r["LastUpdatedDate"]) for p in pages for r in p)
    since = stamps[200]
    recent = [r for p in client.iter_purchase_pages(since) for r in p]
    assert len(recent) == len([s for s in stamps if s >= since]) < 250
    assert all(_stamp(r["LastUpdatedDate"]) >= since for r in recent)


def test_cin7_supplier_pages_include_deprecated_ones_and_filter_on_modified_since(
    cin7_purchases: Cin7StandIn,
) -> None:
    client = Cin7Client(_cin7_settings(cin7_purchases, CIN7_PAGE_SIZE=20))
    first = [Cin7SupplierChange.model_validate(r) for p in client.iter_supplier_pages(None) for r in p]
    old = cin7_purchases.supplier(first[0].id)
    cin7_purchases.put_supplier({**old, "Status": "Deprecated", "LastModifiedOn": "2026-11-20T10:00:00.000Z"})
    pages = list(client.iter_supplier_pages(None))
    assert [len(p) for p in pages] == [20, 20, 10]
    assert cin7_purchases.stats()["by_endpoint"]["supplier"] == 6
    assert old["ID"] in {r["ID"] for p in pages for r in p}
    changed = [r for p in client.iter_supplier_pages(NOW) for r in p]
    assert [(r["ID"], r["Status"]) for r in changed] == [(old["ID"], "Deprecated")]


def test_cin7_get_supplier_finds_deprecated_suppliers_and_none_for_unknown_ids(cin7_purchases: Cin7StandIn) -> None:
    client = Cin7Client(_cin7_settings(cin7_purchases))
    supplier_id = next(r["ID"] for p in client.iter_supplier_pages(None) for r in p)
    cin7_purchases.put_supplier({**cin7_purchases.supplier(supplier_id), "Status": "Deprecated"})
    found = client.get_supplier(supplier_id.upper())
    assert found is not None and found["ID"] == supplier_id and found["Status"] == "Deprecated"
    assert client.get_supplier("00000000-0000-4000-8000-000000000000") is None


def test_cin7_simple_and_advanced_purchases_parse_with_their_invoices(cin7_purchases: Cin7StandIn) -> None:
    client = Cin7Client(_cin7_settings(cin7_purchases))
    rows = [r for p in client.iter_purchase_pages(None) for r in p]
    simple = next(
        r
        for r in rows
        if r["Type"] == "Simple Purchase" and "InvocieNumber" in cin7_purchases.purchase(r["ID"])["Invoice"]
    )
    advanced = next(
        r for r in rows if r["Type"] == "Advanced Purchase" and len(cin7_purchases.purchase(r["ID"])["Invoice"]) == 2
    )
    for row in (simple, advanced):
        raw = client.get_purchase(row["ID"])
        purchase = Cin7Purchase.model_validate(raw)
        assert purchase.id == row["ID"].lower() and purchase.is_simple == (row is simple)
        assert [i.invoice_number for i in purchase.invoices] == [bill_number(b) for b in bills_of(raw)]
        assert all(i.invoice_number for i in purchase.invoices)
    assert cin7_purchases.stats()["by_endpoint"]["advanced-purchase"] == 2
    with pytest.raises(SyncError) as unknown:
        client.get_purchase("00000000-0000-4000-8000-000000000000")
    assert unknown.value.error_class is ErrorClass.VALIDATION


@pytest.fixture
def xero_ctx(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[XeroStandIn, TenantContext]]:
    standin = XeroStandIn(access_token_ttl_seconds=200, refresh_grace_seconds=0.5).start()
    env = {
        **xero_client_env(database_url, standin),
        "XERO_AUTHORIZE_URL": standin.authorize_url,
        "XERO_REDIRECT_URI": "http://localhost:8765/xero/callback",
        "TOKEN_ENCRYPTION_KEYS": KEY_ONE,
    }
    with runtime_env(monkeypatch, env):
        yield standin, tenant_context()
        standin.stop()


KEY_ONE = Fernet.generate_key().decode()
KEY_TWO = Fernet.generate_key().decode()


def _manager(ctx: TenantContext, **env: str) -> XeroTokenManager:
    """A token manager as a worker started with these settings would have it."""
    settings = ctx.settings.model_copy(update={key.lower(): SecretStr(value) for key, value in env.items()})
    return XeroTokenManager(settings, ctx.tenant_pk, ctx.sessions)


def _stored_blob(ctx: TenantContext) -> str:
    with ctx.sessions() as session:
        row = session.scalar(select(OAuthToken))
        assert row is not None
        return row.encrypted_token


def test_xero_client_writes_batches_and_reads_back_through_the_sdk(xero_ctx: tuple[XeroStandIn, TenantContext]) -> None:
    standin, ctx = xero_ctx
    contact = ctx.xero.create_contacts([{"Name": 'Zoë\'s "Best" Café', "ContactNumber": "c-1"}], "k-contact-1")[0]
    assert contact.ok
    contact_id = contact.data["ContactID"]
    line = {
        "Description": "Bread",
        "Quantity": "3",
        "UnitAmount": "12.3456",
        "LineAmount": "37.04",
        "TaxAmount": "3.70",
        "AccountCode": "200",
        "TaxType": "OUTPUT",
    }
    good = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "InvoiceNumber": "INV-1",
        "Date": "2026-11-01",
        "DueDate": "2026-11-30",
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": [line],
    }
    bad = {**good, "InvoiceNumber": "INV-2", "LineItems": [{**line, "TaxType": "NOPE"}]}
    results = ctx.xero.create_invoices([good, bad], "k-invoices-1")
    assert [r.ok for r in results] == [True, False]
    assert "NOPE" in " ".join(results[1].messages)
    assert str(results[0].data["Total"]) in ("40.74", "40.74000")
    replay = ctx.xero.create_invoices([good, bad], "k-invoices-1")
    assert replay[0].data["InvoiceID"] == results[0].data["InvoiceID"]
    assert len([i for i in standin.invoices() if i["InvoiceNumber"] == "INV-1"]) == 1
    hostile_name = 'Zoë\'s "Best" Café'
    # Xero's where cannot quote it: refused before any call, and found by searchTerm instead.
    with pytest.raises(ValueError, match="double quote"):
        xero_string_literal(hostile_name)
    found = ctx.xero.search_contacts(hostile_name)
    assert [c["ContactID"] for c in found] == [contact_id]
    assert ctx.xero.find_contacts("Name==" + xero_string_literal("Zoë's Café")) == []
    assert ctx.xero.get_invoices(numbers=["INV-1"])[0]["InvoiceID"] == results[0].data["InvoiceID"]


def test_xero_client_lists_tracking_categories_and_creates_options(xero_ctx: tuple[XeroStandIn, TenantContext]) -> None:
    standin, ctx = xero_ctx
    standin.seed_tracking(
        [
            {"Name": "Sales Rep", "Options": ["Alice", {"Name": "Old Hand", "Status": "ARCHIVED"}]},
            {"Name": "Legacy", "Status": "ARCHIVED", "Options": ["Gone"]},
        ]
    )
    [rep] = ctx.xero.get_tracking_categories()
    assert rep["Name"] == "Sales Rep" and [o["Name"] for o in rep["Options"]] == ["Alice"]
    category_id = str(rep["TrackingCategoryID"])

    created = ctx.xero.create_tracking_options(category_id, ["Bob", "Carol", "Bob"], "k-tracking-1")
    assert [o["Name"] for o in created] == ["Bob", "Carol"]
    assert standin.stats()["by_endpoint"]["PUT /TrackingCategories/{id}/Options"] == 2
    [rep] = ctx.xero.get_tracking_categories()
    assert [o["Name"] for o in rep["Options"]] == ["Alice", "Bob", "Carol"]
    # A retry with the same key replays each option's answer instead of colliding with what it made.
    again = ctx.xero.create_tracking_options(category_id, ["Bob", "Carol"], "k-tracking-1")
    assert [o["TrackingOptionID"] for o in again] == [o["TrackingOptionID"] for o in created]
    assert standin.stats()["idempotent_replays"] == 2
    # A new key for a name Xero holds is refused, as Xero refuses it.
    with pytest.raises(SyncError) as refused:
        ctx.xero.create_tracking_options(category_id, ["Alice"], "k-tracking-2")
    assert refused.value.error_class is ErrorClass.VALIDATION
    assert "name must be unique" in refused.value.message

    contact = ctx.xero.create_contacts([{"Name": "Tracked Pty Ltd"}], "k-tracked-contact")[0]
    line = {"Description": "Bread", "Quantity": "1", "UnitAmount": "10", "AccountCode": "200", "TaxType": "OUTPUT"}
    tracked = {**line, "Tracking": [{"Name": "Sales Rep", "Option": "Bob"}]}
    unknown = {**line, "Tracking": [{"Name": "Sales Rep", "Option": "Nobody"}]}
    document = {"Type": "ACCREC", "Contact": {"ContactID": contact.data["ContactID"]}, "Date": "2026-11-01"}
    [result] = ctx.xero.create_invoices([{**document, "LineItems": [tracked, unknown]}], "k-tracked-invoice")
    assert result.ok, result.messages
    kept, dropped = result.data["LineItems"]
    assert [(t["Name"], t["Option"], t["TrackingOptionID"]) for t in kept["Tracking"]] == [
        ("Sales Rep", "Bob", created[0]["TrackingOptionID"])
    ]
    assert not dropped.get("Tracking")


def test_tokens_are_stored_encrypted_and_concurrent_workers_refresh_once(
    xero_ctx: tuple[XeroStandIn, TenantContext],
) -> None:
    standin, ctx = xero_ctx
    url, state = consent_url(ctx.settings)
    redirect = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
    token = ctx.xero_tokens.exchange_code(code_from_callback(redirect, state))
    assert token.refresh_token
    with ctx.sessions() as session:
        row = session.scalar(select(OAuthToken))
        assert row is not None and row.grant == "authorization_code"
        assert token.access_token not in row.encrypted_token and str(token.refresh_token) not in row.encrypted_token

    standin.set_faults(expire_all_tokens=True)
    before = standin.stats()["token_requests"]
    managers = [type(ctx.xero_tokens)(ctx.settings, ctx.tenant_pk, ctx.sessions) for _ in range(4)]
    for manager in managers:
        manager._cached = token  # every worker holds the same, now expired, token
        manager.invalidate()
    results: list[str] = []
    threads = [threading.Thread(target=lambda m=m: results.append(m.current().access_token)) for m in managers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and results[0] != token.access_token
    assert standin.stats()["token_requests"] - before == 1
    time.sleep(0.6)  # past the rotated token's grace period: only the stored new one works
    assert ctx.xero.get_accounts()


def _connect(ctx: TenantContext) -> TokenSet:
    url, state = consent_url(ctx.settings)
    redirect = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
    return ctx.xero_tokens.exchange_code(code_from_callback(redirect, state))


def test_a_new_key_first_in_the_list_re_encrypts_the_stored_token_when_next_read(
    xero_ctx: tuple[XeroStandIn, TenantContext],
) -> None:
    _standin, ctx = xero_ctx
    token = _connect(ctx)
    Fernet(KEY_ONE.encode()).decrypt(_stored_blob(ctx).encode())  # stored under the only key

    rotated = _manager(ctx, TOKEN_ENCRYPTION_KEYS=f"{KEY_TWO},{KEY_ONE}")
    assert rotated.current().access_token == token.access_token  # still fresh: read, not refreshed

    blob = _stored_blob(ctx)
    Fernet(KEY_TWO.encode()).decrypt(blob.encode())
    with pytest.raises(InvalidToken):
        Fernet(KEY_ONE.encode()).decrypt(blob.encode())
    # The old key can go: a worker with only the new one reads the token.
    assert _manager(ctx, TOKEN_ENCRYPTION_KEYS=KEY_TWO).current().access_token == token.access_token
    # One that has neither cannot, and says which setting to look at (a refresh token is no cache).
    with pytest.raises(SyncError, match="TOKEN_ENCRYPTION_KEYS") as unreadable:
        _manager(ctx, TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode()).current()
    assert unreadable.value.error_class is ErrorClass.CONFIGURATION


def test_a_refresh_token_is_never_stored_under_the_key_derived_from_the_client_secret(
    xero_ctx: tuple[XeroStandIn, TenantContext],
) -> None:
    _standin, ctx = xero_ctx
    unkeyed = _manager(ctx, TOKEN_ENCRYPTION_KEYS="")
    token = TokenSet(access_token="a", expires_at=time.time() + 600, refresh_token="r")

    with pytest.raises(SyncError, match="set TOKEN_ENCRYPTION_KEYS") as refused:
        unkeyed.store(token, "authorization_code")

    assert refused.value.error_class is ErrorClass.CONFIGURATION
    with ctx.sessions() as session:
        assert session.scalar(select(OAuthToken)) is None


def test_a_client_credentials_token_no_key_opens_is_fetched_anew_not_a_pause(
    xero_ctx: tuple[XeroStandIn, TenantContext],
) -> None:
    standin, ctx = xero_ctx
    first = ctx.xero_tokens.current()  # client credentials: a cached token under KEY_ONE
    before = standin.stats()["token_requests"]

    # The keys (or the client secret the default key comes from) were rotated without the old one.
    again = _manager(ctx, TOKEN_ENCRYPTION_KEYS=KEY_TWO).current()

    assert again.access_token != first.access_token
    assert standin.stats()["token_requests"] == before + 1
    Fernet(KEY_TWO.encode()).decrypt(_stored_blob(ctx).encode())


def test_a_consent_callback_with_the_wrong_state_is_refused() -> None:
    with pytest.raises(SyncError) as refused:
        code_from_callback("http://localhost/cb?code=abc&state=evil", "expected")
    assert refused.value.error_class is ErrorClass.CONFIGURATION


def test_secrets_never_appear_in_settings_reprs() -> None:
    settings = Settings.model_validate(
        {
            "DATABASE_URL": "postgresql+psycopg://u:db-pass-123@h/db",
            "XERO_CLIENT_SECRET": "xero-secret-456",
            "CIN7_APPLICATION_KEY": "cin7-key-789",
            "CELERY_BROKER_URL": "redis://:redis-pass@h:6379/0",
        }
    )
    text = repr(settings) + str(settings)
    for secret in ("db-pass-123", "xero-secret-456", "cin7-key-789", "redis-pass"):
        assert secret not in text

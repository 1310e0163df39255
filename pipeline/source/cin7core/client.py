"""Cin7 Core (DEAR) ExternalApi v2 client: auth headers, paging, throttling, error bodies.

Returns parsed JSON (dicts); `mappings.cin7core` validates it. Every call takes a slot from the shared
per-application limiter first, so that all workers together stay under Cin7's 60 calls a minute.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import requests

from pipeline.errors import ErrorClass, SyncError, classify_cin7_response
from pipeline.http import Limit, Throttling, send
from pipeline.ratelimit import MAX_WAIT_SECONDS, RateLimiter
from pipeline.settings import Settings

log = logging.getLogger(__name__)

CIN7_MAX_PAGE_SIZE = 1000


def format_cin7_datetime(value: datetime) -> str:
    """Cin7's ISO 8601 form for query parameters (UTC, milliseconds)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def cin7_session(settings: Settings, session: requests.Session | None = None) -> requests.Session:
    """A session carrying Cin7's auth headers (the account id and the application key)."""
    session = session or requests.Session()
    session.headers.update(
        {
            "api-auth-accountid": settings.cin7_account_id,
            "api-auth-applicationkey": settings.cin7_application_key.get_secret_value(),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
    )
    return session


class CallClass(enum.Enum):
    """Which share of Cin7's minute a call may use (all of them count in one window)."""

    #: List pages (polls, reconciliation's listing), reference data, registration: the whole minute.
    LISTING = 0
    #: A changed document's detail, read for the live sync (a webhook, a poll): all but the reserve.
    LIVE = 1
    #: Detail reads of a bulk pass (migration, reconciliation): all but the reserve, twice.
    BULK = 2


def cin7_limit(
    settings: Settings, limiter: RateLimiter, call: CallClass = CallClass.LISTING, *, max_wait: float = MAX_WAIT_SECONDS
) -> Limit:
    """Cin7's per-application budget, shared by the sync, webhook processing and registration.

    Every call counts in the one window of CIN7_CALLS_PER_MINUTE, but a detail read may only take a
    slot while CIN7_RESERVED_CALLS (twice that for a bulk read) are still free: a burst of webhooks is
    read at once, and a poll or the live sync still finds room in the same minute.
    """
    calls = max(1, settings.cin7_calls_per_minute - call.value * settings.cin7_reserved_calls)
    return Limit(limiter, f"cin7:{settings.cin7_account_id}", calls, 60.0, settings.cin7_burst_calls or None, max_wait)


def cin7_throttling(settings: Settings) -> Throttling:
    """Cin7 sends no Retry-After: a fixed wait, a bounded number of times."""
    return Throttling(settings.cin7_max_throttle_retries, settings.cin7_throttle_wait_seconds)


def cin7_error(response: requests.Response, *, throttle_wait: float) -> SyncError | None:
    """The classified error in a Cin7 answer, or None when it is a good one.

    Cin7 answers some bad paths with a 200 HTML "Page not found", and some errors with a 200 JSON
    body carrying an ErrorCode.
    """
    if response.status_code != 200:
        if response.status_code == 204:
            return None
        return classify_cin7_response(response.status_code, response.content, throttle_wait=throttle_wait)
    content_type = response.headers.get("Content-Type", "")
    if "json" not in content_type.lower():
        return SyncError(
            ErrorClass.VALIDATION,
            f"Cin7 returned non-JSON ({content_type or 'no content type'}) for {response.url}",
            api="cin7",
            status=200,
        )
    body = response.json()
    if isinstance(body, list) and body and isinstance(body[0], dict) and "ErrorCode" in body[0]:
        return classify_cin7_response(200, response.content, throttle_wait=throttle_wait)
    if isinstance(body, dict) and "ErrorCode" in body and "Exception" in body:
        return classify_cin7_response(200, response.content, throttle_wait=throttle_wait)
    return None


class Cin7Client:
    """A thin, typed wrapper around the endpoints the sync needs."""

    name = "cin7core"

    def __init__(
        self,
        settings: Settings,
        *,
        limiter: RateLimiter | None = None,
        on_call: Callable[[str, int], None] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._base = settings.cin7_api_url.rstrip("/")
        self._settings = settings
        self._limiter = limiter
        self._on_call = on_call
        self._session = cin7_session(settings, session)

    def __repr__(self) -> str:
        return f"Cin7Client({self._base!r})"

    # --- transport ---------------------------------------------------------------------------------
    def _get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        call: CallClass = CallClass.LISTING,
        *,
        max_wait: float = MAX_WAIT_SECONDS,
    ) -> Any:
        """GET through the shared send loop: Cin7 sends 429 or 503 without Retry-After, so wait and retry."""
        on_call = self._on_call
        response = send(
            self._session,
            "GET",
            f"{self._base}/{path}",
            api="cin7",
            classify=lambda answer: cin7_error(answer, throttle_wait=self._settings.cin7_throttle_wait_seconds),
            limit=cin7_limit(self._settings, self._limiter, call, max_wait=max_wait)
            if self._limiter is not None
            else None,
            throttling=cin7_throttling(self._settings),
            on_call=(lambda status: on_call(path, status)) if on_call is not None else None,
            params=params,
        )
        return response.json() if response.content else None

    # --- endpoints ---------------------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        """The company record: a cheap connection check."""
        result: dict[str, Any] = self._get("me")
        return result

    def _paged(self, path: str, list_key: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        page = 1
        limit = min(self._settings.cin7_page_size, CIN7_MAX_PAGE_SIZE)
        while True:
            body = self._get(path, {**params, "Page": page, "Limit": limit}) or {}
            rows: list[dict[str, Any]] = list(body.get(list_key) or [])
            if rows:
                yield rows
            total = int(body.get("Total") or 0)
            if len(rows) < limit or page * limit >= total:
                return
            page += 1

    def iter_sale_pages(self, updated_since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """SaleList pages at the largest page size, optionally from an UpdatedSince watermark."""
        params: dict[str, Any] = {}
        if updated_since is not None:
            params["UpdatedSince"] = format_cin7_datetime(updated_since)
        yield from self._paged("saleList", "SaleList", params)

    def get_sale(self, sale_id: str, *, bulk: bool = False, wait: bool = True) -> dict[str, Any]:
        """One sale with its order, invoices and credit notes (`bulk`: for a migration or reconciliation).

        `wait=False`: raise RateLimitTimeout, sending nothing, unless Cin7's budget has a slot free now.
        """
        result = self._get(
            "sale",
            {"ID": sale_id},
            CallClass.BULK if bulk else CallClass.LIVE,
            max_wait=MAX_WAIT_SECONDS if wait else 0.0,
        )
        if not isinstance(result, dict) or not result.get("ID"):
            raise SyncError(ErrorClass.VALIDATION, f"Cin7 sale {sale_id} not found", api="cin7", status=404)
        return result

    def iter_customer_pages(self, modified_since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """Customer pages at the largest page size, optionally from a ModifiedSince watermark."""
        params: dict[str, Any] = {}
        if modified_since is not None:
            params["ModifiedSince"] = format_cin7_datetime(modified_since)
        yield from self._paged("customer", "CustomerList", params)

    def tax_rules(self) -> list[dict[str, Any]]:
        """Every tax rule with its percentage, inactive ones too (old documents still name them)."""
        return [row for page in self._paged("ref/tax", "TaxRuleList", {}) for row in page]

    def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        """One customer (Cin7 answers `?ID=` with a one-row list)."""
        body = self._get("customer", {"ID": customer_id}, CallClass.LIVE) or {}
        rows = body.get("CustomerList") or []
        return dict(rows[0]) if rows else None

    def iter_purchase_pages(self, updated_since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """PurchaseList pages at the largest page size, optionally from an UpdatedSince watermark.

        The rows' watermark is ``LastUpdatedDate``, the field Cin7 filters ``UpdatedSince`` on.
        """
        params: dict[str, Any] = {}
        if updated_since is not None:
            params["UpdatedSince"] = format_cin7_datetime(updated_since)
        yield from self._paged("purchaseList", "PurchaseList", params)

    def get_purchase(self, purchase_id: str, *, bulk: bool = False) -> dict[str, Any]:
        """One purchase with its invoices (bills), credit notes and payments (`bulk` as for sales).

        ``advanced-purchase`` rather than ``purchase``: the latter serves simple purchases only.
        """
        result = self._get("advanced-purchase", {"ID": purchase_id}, CallClass.BULK if bulk else CallClass.LIVE)
        if not isinstance(result, dict) or not result.get("ID"):
            raise SyncError(ErrorClass.VALIDATION, f"Cin7 purchase {purchase_id} not found", api="cin7", status=404)
        return result

    def iter_supplier_pages(self, modified_since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """Supplier pages at the largest page size, deprecated ones too, optionally from a ModifiedSince watermark.

        Deprecated suppliers are listed because old purchases still name them.
        """
        params: dict[str, Any] = {"IncludeDeprecated": "true"}
        if modified_since is not None:
            params["ModifiedSince"] = format_cin7_datetime(modified_since)
        yield from self._paged("supplier", "SupplierList", params)

    def get_supplier(self, supplier_id: str) -> dict[str, Any] | None:
        """One supplier, deprecated or not (Cin7 answers `?ID=` with a one-row list)."""
        body = self._get("supplier", {"ID": supplier_id, "IncludeDeprecated": "true"}, CallClass.LIVE) or {}
        rows = body.get("SupplierList") or []
        return dict(rows[0]) if rows else None

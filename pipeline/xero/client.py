"""Xero Accounting API through the official xero-python SDK.

Our payloads are Xero JSON (PascalCase, what `mappings` produces and the ledger stores); the SDK wants
its own model objects (`pipeline.xero.sdk` converts both ways). Results come back as plain dicts.

Every call takes a slot from the shared per-tenant limiter first (60/minute), reads Xero's
remaining-calls headers to slow down before a 429, and turns every failure into a classified
`SyncError` (pipeline.errors).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

import requests
import urllib3
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import ApiException
from xero_python.exceptions.http_status_exceptions import HTTPStatusException

from pipeline.errors import ErrorClass, SyncError, classify_xero_response, transport_error
from pipeline.http import send
from pipeline.ratelimit import RateLimiter, RateLimitTimeout
from pipeline.settings import Settings
from pipeline.xero.auth import XeroTokenManager
from pipeline.xero.sdk import ElementResult, element_results, from_sdk, to_sdk
from pipeline.xero.tracking import active_categories, option_idempotency_key, unique_names

log = logging.getLogger(__name__)

# Xero: at most 5 calls in flight per tenant. The writer lease already makes writes single-flight;
# this bounds the rest (mapping tasks reading the chart of accounts on a cold cache, reconciliation
# reads, contact lookups) across every worker process.
XERO_CONCURRENT_LIMIT = 5
# A concurrency slot frees itself after this long if its holder died (longer than any one call).
CONCURRENT_SLOT_TTL = 90.0
# When Xero says fewer than this many calls remain in the minute, hold the tenant back.
LOW_REMAINING_THRESHOLD = 3
# The first hold is this long and doubles while Xero keeps reporting a nearly spent minute: Xero does
# not say when its window frees up, so we back off until it does (a compressed test window and the
# real 60 s one are both found within a few steps).
LOW_REMAINING_FIRST_HOLD = 1.0
LOW_REMAINING_MAX_HOLD = 30.0
# Warn when the day's remaining calls drop below this (Xero: 5 000 a day per tenant).
DAY_REMAINING_WARNING = 250
# A minute/concurrent 429 asking for at most this long is waited out inside the call (every worker
# waits on the shared hold), instead of failing a whole batch back to the ledger.
INLINE_RATE_LIMIT_WAIT = 10.0
INLINE_RATE_LIMIT_RETRIES = 3
INVOICE_LOOKUP_CHUNK = 40

WritableCollection = Literal["Invoices", "CreditNotes", "Contacts", "Payments"]
#: Per collection: the SDK's method suffix (create_…, update_or_create_…) and whether amounts are sent
#: and answered to four decimals (unitdp=4, so that unit prices keep Cin7's precision).
_WRITES: dict[str, tuple[str, bool]] = {
    "Invoices": ("invoices", True),
    "CreditNotes": ("credit_notes", True),
    "Contacts": ("contacts", False),
    "Payments": ("payments", False),
}
REQUEST_TIMEOUT = (5, 60)
NO_RETRIES = urllib3.Retry(
    total=0, connect=0, read=0, redirect=0, status=0, respect_retry_after_header=False, raise_on_status=False
)


def _int_header(headers: Any, name: str) -> int | None:
    raw = headers.get(name) if hasattr(headers, "get") else None
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


class XeroClient:
    """Calls the Xero Accounting API for one tenant."""

    def __init__(
        self,
        settings: Settings,
        tokens: XeroTokenManager,
        *,
        tenant_id: str,
        limit_key: str,
        limiter: RateLimiter | None = None,
        on_call: Callable[[str, int], None] | None = None,
    ) -> None:
        self._settings = settings
        self._tokens = tokens
        self.tenant_id = tenant_id
        self._limit_key = f"xero:{limit_key}"
        self._limiter = limiter
        self._on_call = on_call
        self._local = threading.local()
        # Consecutive responses that said the minute was nearly spent (drives the growing hold).
        self._low_readings = 0
        # Calls outside the SDK (/connections) go through pipeline.http's send loop on this session.
        self._http = requests.Session()

    def __repr__(self) -> str:
        return f"XeroClient(tenant={self.tenant_id!r})"

    # --- SDK plumbing ------------------------------------------------------------------------------
    def _api(self) -> AccountingApi:
        api: AccountingApi | None = getattr(self._local, "api", None)
        if api is None:
            config = Configuration(
                oauth2_token=OAuth2Token(
                    client_id=self._settings.xero_client_id,
                    client_secret=self._settings.xero_client_secret.get_secret_value(),
                )
            )
            api_client = ApiClient(config, pool_threads=1)
            # urllib3 would otherwise retry on its own (sleeping a 429's Retry-After, possibly for hours,
            # and re-sending a PUT whose response was lost). Every retry decision is ours.
            api_client.rest_client.pool_manager.connection_pool_kw["retries"] = NO_RETRIES
            api_client.oauth2_token_getter(lambda: self._tokens.current().for_sdk())
            api_client.oauth2_token_saver(lambda token: None)
            api = AccountingApi(api_client, base_url=self._settings.xero_api_url)
            self._local.api = api
        return api

    def _send(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """The HTTP call itself, inside one of the tenant's concurrency slots."""
        slot = (
            self._limiter.slot(self._limit_key + ":in-flight", XERO_CONCURRENT_LIMIT, ttl=CONCURRENT_SLOT_TTL)
            if self._limiter is not None
            else contextlib.nullcontext(0.0)
        )
        with slot:
            return method(
                self.tenant_id, *args, _return_http_data_only=False, _request_timeout=REQUEST_TIMEOUT, **kwargs
            )

    def take_slot(self) -> None:
        """Wait for one call slot of the tenant's shared per-window limit."""
        if self._limiter is not None:
            self._limiter.acquire(
                self._limit_key, self._settings.xero_calls_per_window, self._settings.xero_rate_window_seconds
            )

    def reserve_slot(self) -> None:
        """Take the next call's slot now (the writer waits for it before it forms a batch, so that rows
        keep arriving while it waits and the batch it then claims is as full as the wait allows).
        """
        if not getattr(self._local, "reserved", False):
            self.take_slot()
            self._local.reserved = True

    def _call(self, label: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One API call: rate slot, auth retry once on 401, short 429s waited out, every failure classified."""
        refreshed = False
        rate_retries = 0
        while True:
            try:
                if getattr(self._local, "reserved", False):
                    # reserve_slot() already took this call's slot.
                    self._local.reserved = False
                else:
                    self.take_slot()
                data, status, headers = self._send(method, *args, **kwargs)
            except RateLimitTimeout as exc:
                # Our own limiter gave up waiting: nothing was sent, so this is a wait, not a failure.
                raise SyncError(ErrorClass.RATE_LIMITED, str(exc), api="xero", retry_after=60.0) from exc
            except ApiException as exc:
                error = self._classify(exc)
                self._record(label, error.status or 0)
                if error.error_class is ErrorClass.AUTH:
                    if refreshed:
                        raise SyncError(
                            ErrorClass.AUTH, "Xero rejected a freshly obtained token", api="xero", status=error.status
                        ) from exc
                    refreshed = True
                    self._tokens.invalidate()
                    continue
                if error.error_class in (ErrorClass.RATE_LIMITED, ErrorClass.DAY_LIMIT) and self._limiter:
                    # Shared hold: every worker of this tenant waits, not just the one that was told.
                    self._limiter.penalise(self._limit_key, error.retry_after or 60.0)
                if (
                    error.error_class is ErrorClass.RATE_LIMITED
                    and rate_retries < INLINE_RATE_LIMIT_RETRIES
                    and (error.retry_after or 60.0) <= INLINE_RATE_LIMIT_WAIT
                ):
                    # A 429 means Xero did not process the request, so sending it again is safe.
                    rate_retries += 1
                    if self._limiter is None:
                        time.sleep(error.retry_after or 1.0)
                    log.info("xero %s: %s, waiting %.0fs", label, error.message, error.retry_after or 1.0)
                    continue
                raise error from exc
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
                self._record(label, 0)
                raise transport_error("xero", exc) from exc
            self._record(label, int(status))
            self._slow_down(headers)
            return data

    @staticmethod
    def _classify(exc: ApiException) -> SyncError:
        status = int(getattr(exc, "status", 0) or 0)
        headers = dict(getattr(exc, "headers", None) or {})
        body = getattr(exc, "body", None)
        if body is None and getattr(exc, "error_data", None) is not None:
            body = json.dumps(exc.error_data)
        if status == 0 and isinstance(exc, HTTPStatusException):
            status = 500
        if status == 0:
            # The SDK raises ApiException(status=0) when it cannot parse a response.
            return SyncError(ErrorClass.TRANSIENT, f"Xero response unreadable: {exc}", api="xero")
        return classify_xero_response(status, headers, body)

    def _slow_down(self, headers: Any) -> None:
        """Hold the tenant back when Xero's own counters say a 429 is near."""
        if not headers or self._limiter is None:
            return
        minute_left = _int_header(headers, "X-MinLimit-Remaining")
        if minute_left is not None and minute_left < LOW_REMAINING_THRESHOLD:
            # Xero's count says the minute is nearly spent (another tool on this tenant, or a window we
            # do not know): hold back rather than collect a 429, longer each time it is still spent.
            self._low_readings += 1
            hold = min(LOW_REMAINING_MAX_HOLD, LOW_REMAINING_FIRST_HOLD * 2 ** (self._low_readings - 1))
            self._limiter.penalise(self._limit_key, hold)
        elif minute_left is not None:
            self._low_readings = 0
        day_left = _int_header(headers, "X-DayLimit-Remaining")
        if day_left is not None and day_left < DAY_REMAINING_WARNING and day_left % 50 == 0:
            log.warning("xero: only %d calls left today for tenant %s", day_left, self.tenant_id)

    def _record(self, label: str, status: int) -> None:
        if self._on_call is not None:
            self._on_call(label, status)

    # --- reads -------------------------------------------------------------------------------------
    def connections_tenant_id(self) -> str:
        """The first connected organisation's tenant id (custom connections have exactly one)."""
        for attempt in range(2):
            token = self._tokens.current()
            try:
                response = send(
                    self._http,
                    "GET",
                    self._settings.xero_connections_url,
                    api="xero",
                    classify=_connections_error,
                    on_call=lambda status: self._record("GET /connections", status),
                    timeout=(5, 30),
                    headers={"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"},
                )
            except SyncError as error:
                if error.error_class is ErrorClass.AUTH and attempt == 0:
                    self._tokens.invalidate()
                    continue
                raise
            break
        connections = response.json()
        if not connections:
            raise SyncError(ErrorClass.CONFIGURATION, "no Xero organisation is connected", api="xero")
        return str(connections[0]["tenantId"])

    def get_accounts(self) -> list[dict[str, Any]]:
        """The chart of accounts."""
        data = self._call("GET /Accounts", self._api().get_accounts)
        return list(from_sdk(data).get("Accounts") or [])

    def get_organisation(self) -> dict[str, Any]:
        """The connected organisation (its BaseCurrency, name, lock dates)."""
        data = self._call("GET /Organisation", self._api().get_organisations)
        organisations = list(from_sdk(data).get("Organisations") or [])
        return dict(organisations[0]) if organisations else {}

    def get_tax_rates(self) -> list[dict[str, Any]]:
        """The organisation's tax rates with their EffectiveRate."""
        data = self._call("GET /TaxRates", self._api().get_tax_rates)
        return list(from_sdk(data).get("TaxRates") or [])

    def get_invoices(
        self,
        *,
        numbers: Sequence[str] = (),
        ids: Sequence[str] = (),
        page: int | None = None,
        where: str | None = None,
    ) -> list[dict[str, Any]]:
        """Invoices by number or id (chunked to Xero's ~40-value guidance), or one page of a query."""
        found: list[dict[str, Any]] = []
        if numbers or ids:
            values = list(numbers) or list(ids)
            for start in range(0, len(values), INVOICE_LOOKUP_CHUNK):
                chunk = values[start : start + INVOICE_LOOKUP_CHUNK]
                kwargs: dict[str, Any] = {"page": 1, "page_size": 100, "unitdp": 4}
                kwargs["invoice_numbers" if numbers else "i_ds"] = chunk
                data = self._call("GET /Invoices", self._api().get_invoices, **kwargs)
                found.extend(from_sdk(data).get("Invoices") or [])
            return found
        data = self._call(
            "GET /Invoices", self._api().get_invoices, where=where, page=page or 1, page_size=1000, unitdp=4
        )
        return list(from_sdk(data).get("Invoices") or [])

    def iter_contacts(
        self, *, include_archived: bool = True, modified_since: datetime | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every contact (or those changed since a time), a page of up to 1000 at a time."""
        page = 1
        extra: dict[str, Any] = {"if_modified_since": modified_since} if modified_since is not None else {}
        while True:
            data = self._call(
                "GET /Contacts",
                self._api().get_contacts,
                page=page,
                page_size=1000,
                include_archived=include_archived,
                **extra,
            )
            contacts = list(from_sdk(data).get("Contacts") or [])
            if contacts:
                yield contacts
            if len(contacts) < 1000:
                return
            page += 1

    def find_contacts(self, where: str) -> list[dict[str, Any]]:
        """Contacts matching a `where` filter (built with `xero_string_literal`)."""
        data = self._call("GET /Contacts", self._api().get_contacts, where=where, include_archived=True)
        return list(from_sdk(data).get("Contacts") or [])

    def search_contacts(self, term: str) -> list[dict[str, Any]]:
        """Contacts whose name, number or e-mail contains `term` (Xero's searchTerm, case-insensitive),
        archived ones included: for text a `where` filter cannot quote.
        """
        data = self._call("GET /Contacts", self._api().get_contacts, search_term=term, include_archived=True, page=1)
        return list(from_sdk(data).get("Contacts") or [])

    def get_tracking_categories(self) -> list[dict[str, Any]]:
        """The active tracking categories, each with its active options (Xero leaves archived ones out)."""
        data = self._call("GET /TrackingCategories", self._api().get_tracking_categories)
        return active_categories(from_sdk(data).get("TrackingCategories") or [])

    def create_tracking_options(
        self, category_id: str, names: Sequence[str], idempotency_key: str
    ) -> list[dict[str, Any]]:
        """PUT /TrackingCategories/{id}/Options, one call per name (the SDK sends one option a call), each
        keyed by `idempotency_key` and the name; the options created, in order. A refusal (e.g. a duplicate
        name) raises after the earlier names were created: re-read the categories to see what Xero holds.
        """
        created: list[dict[str, Any]] = []
        for name in unique_names(names):
            data = self._call(
                "PUT /TrackingCategories/{id}/Options",
                self._api().create_tracking_options,
                category_id,
                to_sdk("TrackingOption", {"Name": name}),
                idempotency_key=option_idempotency_key(idempotency_key, name),
            )
            created.extend(from_sdk(data).get("Options") or [])
        return created

    # --- writes (always summarizeErrors=false, always an Idempotency-Key) --------------------------
    def write(
        self,
        verb: Literal["PUT", "POST"],
        collection: WritableCollection,
        payloads: Sequence[dict[str, Any]],
        idempotency_key: str,
    ) -> list[ElementResult]:
        """PUT creates only (a duplicate number can never become a second document); POST with ids
        updates, voids and deletes. One result per element, in order.
        """
        sdk_name, unitdp = _WRITES[collection]
        method = getattr(self._api(), ("create_" if verb == "PUT" else "update_or_create_") + sdk_name)
        extra: dict[str, Any] = {"unitdp": 4} if unitdp else {}
        body = to_sdk(collection, {collection: list(payloads)})
        data = self._call(
            f"{verb} /{collection}", method, body, summarize_errors=False, idempotency_key=idempotency_key, **extra
        )
        return element_results(from_sdk(data).get(collection) or [])

    def create_invoices(self, payloads: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """PUT /Invoices."""
        return self.write("PUT", "Invoices", payloads, idempotency_key)

    def update_invoices(self, payloads: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """POST /Invoices with InvoiceIDs: updates, voids and deletes."""
        return self.write("POST", "Invoices", payloads, idempotency_key)

    def create_contacts(self, payloads: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """PUT /Contacts."""
        return self.write("PUT", "Contacts", payloads, idempotency_key)

    def create_credit_notes(self, payloads: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """PUT /CreditNotes."""
        return self.write("PUT", "CreditNotes", payloads, idempotency_key)

    def update_credit_notes(self, payloads: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """POST /CreditNotes with CreditNoteIDs: updates and voids."""
        return self.write("POST", "CreditNotes", payloads, idempotency_key)

    def get_credit_notes(self, *, numbers: Sequence[str] = (), ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Credit notes by number or by id (a `where` of ORs, chunked), with their allocations."""
        found: list[dict[str, Any]] = []
        field, values = ("CreditNoteNumber", list(numbers)) if numbers else ("CreditNoteID", list(ids))
        values = [v for v in values if quotable(v)]
        for start in range(0, len(values), INVOICE_LOOKUP_CHUNK):
            chunk = values[start : start + INVOICE_LOOKUP_CHUNK]
            if field == "CreditNoteID":
                where = " OR ".join(f'CreditNoteID==guid("{v}")' for v in chunk)
            else:
                where = " OR ".join(f"CreditNoteNumber=={xero_string_literal(v)}" for v in chunk)
            data = self._call("GET /CreditNotes", self._api().get_credit_notes, where=where, page=1, unitdp=4)
            found.extend(from_sdk(data).get("CreditNotes") or [])
        return found

    def create_payments(self, payloads: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """PUT /Payments: many payments (or refunds) in one call, each answered on its own."""
        return self.write("PUT", "Payments", payloads, idempotency_key)

    def get_payments(self, where: str) -> list[dict[str, Any]]:
        """Every payment matching a `where` filter (pages of 100)."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            data = self._call("GET /Payments", self._api().get_payments, where=where, page=page)
            payments = list(from_sdk(data).get("Payments") or [])
            found.extend(payments)
            if len(payments) < 100:
                return found
            page += 1

    def get_payment(self, payment_id: str) -> dict[str, Any] | None:
        """One payment as Xero holds it now, or None when Xero does not know it."""
        try:
            data = self._call("GET /Payments/{id}", self._api().get_payment, payment_id)
        except SyncError as error:
            if error.status == 404:
                return None
            raise
        payments = list(from_sdk(data).get("Payments") or [])
        return dict(payments[0]) if payments else None

    def delete_payment(self, payment_id: str, idempotency_key: str) -> dict[str, Any]:
        """POST /Payments/{id} with Status DELETED: Xero's only way to undo a payment."""
        body = to_sdk("PaymentDelete", {"Status": "DELETED"})
        data = self._call(
            "POST /Payments/{id}",
            self._api().delete_payment,
            payment_id,
            body,
            idempotency_key=idempotency_key,
        )
        payments = list(from_sdk(data).get("Payments") or [])
        return dict(payments[0]) if payments else {}

    def create_allocations(
        self, credit_note_id: str, payloads: Sequence[dict[str, Any]], idempotency_key: str
    ) -> list[ElementResult]:
        """PUT /CreditNotes/{id}/Allocations: apply one credit note to invoices."""
        body = to_sdk("Allocations", {"Allocations": list(payloads)})
        data = self._call(
            "PUT /CreditNotes/{id}/Allocations",
            self._api().create_credit_note_allocation,
            credit_note_id,
            body,
            summarize_errors=False,
            idempotency_key=idempotency_key,
        )
        return element_results(from_sdk(data).get("Allocations") or [])

    def delete_allocation(self, credit_note_id: str, allocation_id: str) -> dict[str, Any]:
        """DELETE /CreditNotes/{id}/Allocations/{AllocationID} (a DELETE: repeating it changes nothing)."""
        data = self._call(
            "DELETE /CreditNotes/{id}/Allocations/{id}",
            self._api().delete_credit_note_allocations,
            credit_note_id,
            allocation_id,
        )
        return dict(from_sdk(data) or {})

    def update_contacts(self, payloads: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """POST /Contacts with ContactIDs: updates (e.g. giving an adopted contact our ContactNumber)."""
        return self.write("POST", "Contacts", payloads, idempotency_key)

    def get_credit_notes_page(self, where: str, page: int) -> list[dict[str, Any]]:
        """One page (Xero's 100) of the credit notes matching a `where` filter, with allocations and
        refunds: the caller pages on, so that it can yield to the sync's writes between pages.
        """
        data = self._call("GET /CreditNotes", self._api().get_credit_notes, where=where, page=page, unitdp=4)
        return list(from_sdk(data).get("CreditNotes") or [])


def _connections_error(response: requests.Response) -> SyncError | None:
    if response.status_code == 200:
        return None
    return classify_xero_response(response.status_code, response.headers, response.content)


def quotable(value: str) -> bool:
    """Whether Xero's `where` can hold this text: it has no escape for a double quote."""
    return '"' not in value


def xero_string_literal(value: str) -> str:
    """A double-quoted Xero filter string. Xero's `where` has no escapes: a backslash is itself and a quote
    cannot be written (a backslash-escaped one is a 400 "Syntax error"), so such text is refused here;
    look it up with `search_contacts` instead.
    """
    if not quotable(value):
        raise ValueError(f"{value!r} contains a double quote, which a Xero where filter cannot hold")
    return f'"{value}"'

"""An in-memory stand-in for Xero's Accounting API and OAuth 2.0 endpoints.

Standard library only (``http.server.ThreadingHTTPServer``). It speaks the wire format that the official
``xero-python`` SDK parses: Xero's envelopes, MS-JSON dates, ``summarizeErrors`` element results,
``Idempotency-Key`` replays, rate-limit headers and 429s, rotating refresh tokens, and injectable faults
for chaos tests. All state sits behind one lock; lookups use indexes so that it stays fast under a
throughput benchmark.

Run it in the foreground with ``python -m pipeline.standins.xero --port 8080``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import datetime as dt
import email.utils
import functools
import hashlib
import json
import math
import secrets
import signal
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from pipeline.standins.xero_data import (
    ACCOUNTS,
    CURRENCIES,
    DEFAULT_CURRENCY_RATES,
    TAX_RATES,
    ms_date,
    ms_datetime,
    parse_decimal,
    parse_input_date,
    round2,
)
from pipeline.standins.xero_where import FieldSpec, Node, WhereError, equality_hints, evaluate, parse_where

__all__ = ["DEFAULT_TENANT_ID", "XeroStandIn", "main"]

DEFAULT_TENANT_ID = "7c1e2f9a-3b4d-4e5f-8a6b-9c0d1e2f3a4b"
PROVIDER_NAME = "cin7xero standin"
API_PREFIX = "/api.xro/2.0"
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
MAX_BODY_BYTES = int(3.5 * 1024 * 1024)
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
DEFAULT_SCOPE = "accounting.transactions accounting.contacts accounting.settings"
APP_MINUTE_LIMIT = 10_000
# Reported as the limit when a limit is not configured, so "remaining" still decreases realistically.
UNLIMITED_REPORTED = 1_000_000
AUTH_CODE_TTL_SECONDS = 300.0
REFRESH_TOKEN_TTL_SECONDS = 60 * 24 * 3600.0
IDEMPOTENCY_KEY_MAX = 128

INVOICE_TYPES = ("ACCREC", "ACCPAY")
INVOICE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    "DRAFT": frozenset({"SUBMITTED", "AUTHORISED", "DELETED"}),
    "SUBMITTED": frozenset({"AUTHORISED", "DRAFT", "DELETED"}),
    "AUTHORISED": frozenset({"VOIDED"}),
}
LINE_AMOUNT_TYPES = {"exclusive": "Exclusive", "inclusive": "Inclusive", "notax": "NoTax"}
CONTACT_STATUSES = ("ACTIVE", "ARCHIVED", "GDPRREQUEST")
ADDRESS_TYPES = ("POBOX", "STREET")
PHONE_TYPES = ("DEFAULT", "DDI", "FAX", "MOBILE", "OFFICE")
CONTACT_TEXT_FIELDS = (
    "ContactNumber",
    "AccountNumber",
    "Name",
    "FirstName",
    "LastName",
    "EmailAddress",
    "CompanyNumber",
    "BankAccountDetails",
    "TaxNumber",
    "AccountsReceivableTaxType",
    "AccountsPayableTaxType",
    "Website",
    "SalesDefaultAccountCode",
    "PurchasesDefaultAccountCode",
    "DefaultCurrency",
    "XeroNetworkKey",
)
CONTACT_SUMMARY_FIELDS = (
    "ContactNumber",
    "AccountNumber",
    "Name",
    "FirstName",
    "LastName",
    "EmailAddress",
    "CompanyNumber",
    "TaxNumber",
    "DefaultCurrency",
)
FAULT_KEYS = {
    "outage_seconds": float,
    "offline_seconds": float,
    "rate_limit_next": int,
    "day_limit_next": int,
    "drop_response_after_commit_next": int,
    "server_error_next": int,
    "latency_seconds": float,
    "expire_all_tokens": bool,
}

CONTACT_SCHEMA: FieldSpec = {
    "ContactID": "guid",
    "ContactNumber": "string",
    "AccountNumber": "string",
    "ContactStatus": "string",
    "Name": "string",
    "FirstName": "string",
    "LastName": "string",
    "EmailAddress": "string",
    "CompanyNumber": "string",
    "TaxNumber": "string",
    "Website": "string",
    "DefaultCurrency": "string",
    "IsSupplier": "bool",
    "IsCustomer": "bool",
    "UpdatedDateUTC": "datetime",
}
INVOICE_SCHEMA: FieldSpec = {
    "InvoiceID": "guid",
    "Type": "string",
    "InvoiceNumber": "string",
    "Reference": "string",
    "Status": "string",
    "Date": "date",
    "DueDate": "date",
    "UpdatedDateUTC": "datetime",
    "FullyPaidOnDate": "date",
    "CurrencyCode": "string",
    "CurrencyRate": "number",
    "LineAmountTypes": "string",
    "SubTotal": "number",
    "TotalTax": "number",
    "Total": "number",
    "AmountDue": "number",
    "AmountPaid": "number",
    "AmountCredited": "number",
    "SentToContact": "bool",
    "IsDiscounted": "bool",
    "HasAttachments": "bool",
    "Url": "string",
    "Contact": CONTACT_SCHEMA,
}

Num = Callable[[Decimal], Any]
Record = dict[str, Any]


def _float(value: Decimal) -> float:
    return float(value)


def _same(value: Decimal) -> Decimal:
    return value


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36


def _csv(value: str | None) -> list[str]:
    if not value:
        return []
    return [part.strip().strip('"') for part in value.split(",") if part.strip()]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _jsonable(value: Any, num: Num) -> Any:
    if isinstance(value, Decimal):
        return num(value)
    if isinstance(value, dict):
        return {k: _jsonable(v, num) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v, num) for v in value]
    if isinstance(value, dt.datetime):
        return ms_datetime(value)
    if isinstance(value, dt.date):
        return ms_date(value)
    return value


def _parse_http_date(value: str) -> dt.datetime | None:
    """If-Modified-Since: xero-python sends ISO 8601; browsers and curl send RFC 1123."""
    text = value.strip()
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class _Headers(Protocol):
    """What the stand-in needs from request headers (``http.client.HTTPMessage`` or a dict)."""

    def get(self, name: str, /) -> str | None: ...


@dataclass(slots=True)
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    drop: bool = False


def _json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> _Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return _Response(status, [("Content-Type", JSON_TYPE), *headers], body)


def _text_response(status: int, text: str, headers: Iterable[tuple[str, str]] = ()) -> _Response:
    return _Response(status, [("Content-Type", TEXT_TYPE), *headers], text.encode("utf-8"))


def _not_found() -> _Response:
    return _text_response(404, NOT_FOUND_TEXT)


def _validation_error(message: str, elements: list[Any] | None = None) -> _Response:
    payload: dict[str, Any] = {"ErrorNumber": 10, "Type": "ValidationException", "Message": message}
    if elements is not None:
        payload["Elements"] = elements
    return _json_response(400, payload)


def _query_error(message: str) -> _Response:
    return _json_response(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message})


def _oauth_error(status: int, error: str) -> _Response:
    return _json_response(status, {"error": error}, [("Cache-Control", "no-store")])


@dataclass(slots=True)
class _AccessToken:
    expires_at: float
    family: str | None
    client_id: str


@dataclass(slots=True)
class _RefreshToken:
    family: str
    client_id: str
    scope: str
    expires_at: float
    superseded_at: float | None = None


@dataclass(slots=True)
class _AuthCode:
    client_id: str
    redirect_uri: str
    scope: str
    expires_at: float


@dataclass(slots=True)
class _IdempotencyEntry:
    method: str
    target: str
    body_hash: str
    created: float
    response: _Response


@dataclass(slots=True)
class _Faults:
    outage_until: float = 0.0
    offline_until: float = 0.0
    rate_limit_next: int = 0
    day_limit_next: int = 0
    drop_response_after_commit_next: int = 0
    server_error_next: int = 0
    latency_seconds: float = 0.0

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "outage_seconds": max(0.0, self.outage_until - now),
            "offline_seconds": max(0.0, self.offline_until - now),
            "rate_limit_next": self.rate_limit_next,
            "day_limit_next": self.day_limit_next,
            "drop_response_after_commit_next": self.drop_response_after_commit_next,
            "server_error_next": self.server_error_next,
            "latency_seconds": self.latency_seconds,
        }


@dataclass(slots=True)
class _Request:
    method: str
    segments: list[str]
    query: dict[str, str]
    headers: _Headers
    body: bytes
    target: str

    def flag(self, name: str) -> bool | None:
        value = self.query.get(name.lower())
        if value is None:
            return None
        return value.strip().lower() in ("true", "1", "yes")


@dataclass(slots=True)
class _Claims:
    """Names and numbers taken by earlier elements of an all-or-nothing batch not yet committed."""

    contact_names: set[str] = field(default_factory=set)
    contact_numbers: set[str] = field(default_factory=set)
    invoice_numbers: set[tuple[str, str]] = field(default_factory=set)


@dataclass(slots=True)
class _ContactPlan:
    existing_id: str | None
    record: Record


@dataclass(slots=True)
class _InvoicePlan:
    existing_id: str | None
    record: Record
    new_contact: Record | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    standin: XeroStandIn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; the benchmark would otherwise spend its time on stderr."""

    def _read_body(self) -> tuple[bytes, bool]:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(65537)
                length = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    self.rfile.readline(65537)
                    break
                size += length
                data = self.rfile.read(length)
                if size <= MAX_BODY_BYTES:
                    chunks.append(data)
                self.rfile.readline(65537)
            return b"".join(chunks), size > MAX_BODY_BYTES
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            remaining = length
            # Drain so the client sees the 413 rather than a reset connection.
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
            return b"", True
        return (self.rfile.read(length) if length else b""), False

    def _handle(self) -> None:
        standin = self.server.standin
        try:
            body, too_large = self._read_body()
        except ValueError:
            self.close_connection = True
            return
        response, holds_slot = standin._handle_http(self.command, self.path, self.headers, body, too_large)
        try:
            if response.drop:
                self.close_connection = True
                return
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        finally:
            if holds_slot:
                standin._release_slot()

    do_GET = _handle
    do_PUT = _handle
    do_POST = _handle
    do_DELETE = _handle
    do_PATCH = _handle
    do_HEAD = _handle


class XeroStandIn:
    """A fake Xero (Accounting API + OAuth 2.0) served over real HTTP from a daemon thread.

    Limits of ``None`` mean unlimited. ``refresh_grace_seconds`` is how long a rotated refresh token keeps
    working (Xero: 30 minutes). Seed contacts may carry ``ContactStatus: "ARCHIVED"`` and a ``ContactID``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        client_id: str = "standin-client",
        client_secret: str = "standin-secret",  # noqa: S107 - a fake's published test credential
        tenant_id: str = DEFAULT_TENANT_ID,
        org_name: str = "Demo Company (AU)",
        minute_limit: int | None = None,
        day_limit: int | None = None,
        concurrent_limit: int | None = None,
        window_seconds: float = 60.0,
        day_window_seconds: float = 86_400.0,
        idempotency_ttl_seconds: float = 360.0,
        access_token_ttl_seconds: int = 1800,
        refresh_grace_seconds: float = 1800.0,
        period_lock_date: dt.date | None = dt.date(2020, 6, 30),
        seed_contacts: list[dict[str, Any]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant_id = tenant_id
        self.org_name = org_name
        self.minute_limit = minute_limit
        self.day_limit = day_limit
        self.concurrent_limit = concurrent_limit
        self.window_seconds = window_seconds
        self.day_window_seconds = day_window_seconds
        self.idempotency_ttl_seconds = idempotency_ttl_seconds
        self.access_token_ttl_seconds = access_token_ttl_seconds
        self.refresh_grace_seconds = refresh_grace_seconds
        self.period_lock_date = period_lock_date
        self._seed_contacts = copy.deepcopy(seed_contacts or [])
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._org_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-standin-org:{tenant_id}"))
        self._connection_id = str(uuid.uuid4())
        self._auth_event_id = str(uuid.uuid4())
        self._created = _now().replace(microsecond=0)
        # Tokens survive reset() so that connected clients keep working across test cases.
        self._access_tokens: dict[str, _AccessToken] = {}
        self._refresh_tokens: dict[str, _RefreshToken] = {}
        self._revoked_families: set[str] = set()
        self._auth_codes: dict[str, _AuthCode] = {}
        self._clear_state()

    # ----------------------------------------------------------------------------------------- lifecycle

    def _clear_state(self) -> None:
        self._contacts: dict[str, Record] = {}
        self._contact_by_number: dict[str, str] = {}
        self._active_contact_by_name: dict[str, str] = {}
        self._invoices: dict[str, Record] = {}
        self._invoice_by_number: dict[tuple[str, str], str] = {}
        self._invoices_by_contact: dict[str, set[str]] = {}
        self._history: dict[str, list[Record]] = {}
        self._next_invoice_number = 1
        self._seq = 0
        self._last_stamp = _now()
        self._minute_calls: deque[float] = deque()
        self._day_calls: deque[float] = deque()
        self._in_flight = 0
        self._idempotency: dict[str, _IdempotencyEntry] = {}
        self._idempotency_order: deque[tuple[float, str]] = deque()
        self._faults = _Faults()
        self._connected = True
        self._calls = 0
        self._by_endpoint: Counter[str] = Counter()
        self._rate_limited = 0
        self._token_requests = 0
        self._replays = 0
        self._dropped = 0
        for seed in self._seed_contacts:
            self._seed_one_contact(seed)

    def start(self) -> XeroStandIn:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.standin = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="xero-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> XeroStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (the port is known once started when port=0)."""
        if self.port == 0:
            raise RuntimeError("XeroStandIn.url is known only after start() when port=0")
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Accounting API base, the ``base_url`` for ``AccountingApi``."""
        return self.url + API_PREFIX

    @property
    def token_url(self) -> str:
        """OAuth token endpoint (all grants)."""
        return self.url + "/connect/token"

    @property
    def revoke_url(self) -> str:
        """OAuth revocation endpoint."""
        return self.url + "/connect/revocation"

    @property
    def connections_url(self) -> str:
        """``GET /connections``."""
        return self.url + "/connections"

    @property
    def authorize_url(self) -> str:
        """Authorization endpoint (auto-consents and redirects with a code)."""
        return self.url + "/identity/connect/authorize"

    # ------------------------------------------------------------------------------- in-process access

    def invoices(self) -> list[dict[str, Any]]:
        """All invoices as Xero JSON with line items; amounts are ``Decimal``; oldest update first."""
        with self._lock:
            return [self._render_invoice(inv, lines=True, num=_same) for inv in self._invoices.values()]

    def contacts(self) -> list[dict[str, Any]]:
        """All contacts (archived included) as Xero JSON; oldest update first."""
        with self._lock:
            return [self._render_contact(c, num=_same) for c in self._contacts.values()]

    def stats(self) -> dict[str, Any]:
        """Counters: API calls (total and per endpoint), 429s, token requests, replays, dropped responses."""
        with self._lock:
            return {
                "calls": self._calls,
                "by_endpoint": dict(self._by_endpoint),
                "rate_limited": self._rate_limited,
                "token_requests": self._token_requests,
                "idempotent_replays": self._replays,
                "dropped_responses": self._dropped,
                "in_flight": self._in_flight,
            }

    def set_faults(self, **faults: Any) -> None:
        """Inject faults for API calls (admin and OAuth endpoints are never faulted).

        ``outage_seconds`` / ``offline_seconds``: 503 text for that long; ``rate_limit_next`` /
        ``day_limit_next``: the next N calls get a 429 (minute: Retry-After 1; day: until UTC midnight);
        ``server_error_next``: next N calls get a 500; ``drop_response_after_commit_next``: the next N
        PUT/POST calls are processed (and their idempotency key stored), then the connection is closed
        without a response; ``latency_seconds``: sleep before handling each call (outside the lock, so
        requests overlap); ``expire_all_tokens``: every access token issued so far expires now.
        Unknown names raise ``ValueError``.
        """
        unknown = set(faults) - set(FAULT_KEYS)
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        now = time.monotonic()
        with self._lock:
            for name, raw in faults.items():
                value = FAULT_KEYS[name](raw)
                if name == "outage_seconds":
                    self._faults.outage_until = now + float(value)
                elif name == "offline_seconds":
                    self._faults.offline_until = now + float(value)
                elif name == "expire_all_tokens":
                    if value:
                        expired = time.time() - 1
                        for token in self._access_tokens.values():
                            token.expires_at = min(token.expires_at, expired)
                else:
                    setattr(self._faults, name, value)

    def faults(self) -> dict[str, Any]:
        """The faults currently armed."""
        with self._lock:
            return self._faults.describe(time.monotonic())

    def reset(self) -> None:
        """Forget all data, counters, rate windows, idempotency keys and faults; re-apply seed contacts."""
        with self._lock:
            self._clear_state()

    def seed_contacts(self, contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert contacts without API validation beyond uniqueness (archived ones allowed)."""
        with self._lock:
            return [self._render_contact(self._seed_one_contact(c), num=_same) for c in contacts]

    def pay_invoice(self, invoice_id: str) -> dict[str, Any]:
        """Record a full payment on an AUTHORISED invoice (status PAID); KeyError/ValueError otherwise."""
        with self._lock:
            inv = self._invoices.get(invoice_id.lower())
            if inv is None:
                raise KeyError(invoice_id)
            if inv["Status"] != "AUTHORISED":
                raise ValueError(f"Invoice is {inv['Status']}; only AUTHORISED invoices can be paid")
            due = self._amount_due(inv)
            today = _now().date()
            inv["AmountPaid"] += due
            inv["Payments"].append(
                {"PaymentID": str(uuid.uuid4()), "Date": today, "Amount": due, "CurrencyRate": inv["CurrencyRate"]}
            )
            inv["Status"] = "PAID"
            inv["FullyPaidOnDate"] = today
            self._touch(self._invoices, inv, "InvoiceID")
            return self._render_invoice(inv, lines=True, num=_same)

    # -------------------------------------------------------------------------------------- internals

    def _stamp(self) -> dt.datetime:
        # Non-decreasing and at millisecond precision, so ordering by insertion equals UpdatedDateUTC ASC.
        now = _now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        now = max(now, self._last_stamp)
        self._last_stamp = now
        return now

    def _touch(self, table: dict[str, Record], record: Record, id_key: str) -> None:
        self._seq += 1
        record["_seq"] = self._seq
        record["UpdatedDateUTC"] = self._stamp()
        key = record[id_key]
        table.pop(key, None)
        table[key] = record

    def _seed_one_contact(self, seed: Mapping[str, Any]) -> Record:
        contact_id = str(seed.get("ContactID") or uuid.uuid4()).lower()
        record: Record = {
            "ContactID": contact_id,
            "ContactStatus": "ACTIVE",
            "Addresses": {},
            "Phones": {},
            "IsSupplier": False,
            "IsCustomer": False,
            "ContactPersons": [],
        }
        existing_id = contact_id if contact_id in self._contacts else None
        if existing_id is not None:
            record = copy.deepcopy(self._contacts[existing_id])
        errors = self._apply_contact_fields(record, seed, existing_id)
        self._check_contact_uniqueness(record, existing_id, None, errors)
        if errors:
            raise ValueError("; ".join(errors))
        return self._commit_contact(_ContactPlan(existing_id, record))

    # ------------------------------------------------------------------------------------ HTTP entry

    def _handle_http(
        self, method: str, raw_path: str, headers: _Headers, body: bytes, too_large: bool
    ) -> tuple[_Response, bool]:
        split = urlsplit(raw_path)
        path = split.path.rstrip("/") or "/"
        lower = path.lower()
        if lower.startswith("/_standin/"):
            return self._admin(method, path, body), False
        if lower == API_PREFIX.lower() or lower.startswith(API_PREFIX.lower() + "/"):
            return self._api(method, path[len(API_PREFIX) :], split.query, headers, body, too_large)
        if lower == "/connect/token" and method == "POST":
            return self._token(headers, body), False
        if lower == "/connect/revocation" and method == "POST":
            return self._revoke(headers, body), False
        if lower == "/identity/connect/authorize" and method == "GET":
            return self._authorize(split.query), False
        if lower == "/connections" and method == "GET":
            return self._connections(headers), False
        if lower.startswith("/connections/") and method == "DELETE":
            return self._disconnect(headers, path.rsplit("/", 1)[1]), False
        return _not_found(), False

    def _release_slot(self) -> None:
        with self._lock:
            self._in_flight -= 1

    # ---------------------------------------------------------------------------------------- OAuth

    def _client_from(self, headers: _Headers, form: Mapping[str, str]) -> str | None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            client_id, _, secret = decoded.partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
        if (
            client_id == self.client_id
            and secret is not None
            and secrets.compare_digest(secret.encode(), self.client_secret.encode())
        ):
            return client_id
        return None

    def _issue_access_token(self, client_id: str, scope: str, family: str | None) -> tuple[str, int]:
        now = int(time.time())
        ttl = int(self.access_token_ttl_seconds)
        header = {"alg": "RS256", "kid": "standin", "typ": "JWT"}
        payload = {
            "nbf": now,
            "exp": now + ttl,
            "iss": self.url + "/identity",
            "aud": "https://identity.xero.com/resources",
            "client_id": client_id,
            "sub": hashlib.sha256(client_id.encode()).hexdigest()[:32],
            "auth_time": now,
            "xero_userid": self._org_id,
            "global_session_id": family or uuid.uuid4().hex,
            "jti": uuid.uuid4().hex,
            "authentication_event_id": self._auth_event_id,
            "scope": scope.split(),
        }

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

        token = ".".join(
            (b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(secrets.token_bytes(32)))
        )
        self._access_tokens[token] = _AccessToken(time.time() + ttl, family, client_id)
        return token, ttl

    def _issue_refresh_token(self, client_id: str, scope: str, family: str) -> str:
        token = secrets.token_hex(32)
        self._refresh_tokens[token] = _RefreshToken(family, client_id, scope, time.time() + REFRESH_TOKEN_TTL_SECONDS)
        return token

    def _token(self, headers: _Headers, body: bytes) -> _Response:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            self._token_requests += 1
            client_id = self._client_from(headers, form)
            if client_id is None:
                return _oauth_error(400, "invalid_client")
            grant = form.get("grant_type", "")
            now = time.time()
            if grant == "client_credentials":
                scope = form.get("scope") or DEFAULT_SCOPE
                token, ttl = self._issue_access_token(client_id, scope, None)
                return _json_response(
                    200,
                    {"access_token": token, "expires_in": ttl, "token_type": "Bearer", "scope": scope},
                    [("Cache-Control", "no-store")],
                )
            if grant == "authorization_code":
                code = self._auth_codes.pop(form.get("code", ""), None)
                if (
                    code is None
                    or code.expires_at < now
                    or code.client_id != client_id
                    or ("redirect_uri" in form and form["redirect_uri"] != code.redirect_uri)
                ):
                    return _oauth_error(400, "invalid_grant")
                family = uuid.uuid4().hex
                return self._token_pair(client_id, code.scope, family)
            if grant == "refresh_token":
                old = self._refresh_tokens.get(form.get("refresh_token", ""))
                if (
                    old is None
                    or old.client_id != client_id
                    or old.family in self._revoked_families
                    or old.expires_at < now
                    or (old.superseded_at is not None and now > old.superseded_at + self.refresh_grace_seconds)
                ):
                    return _oauth_error(400, "invalid_grant")
                if old.superseded_at is None:
                    old.superseded_at = now
                return self._token_pair(client_id, old.scope, old.family)
            return _oauth_error(400, "unsupported_grant_type")

    def _token_pair(self, client_id: str, scope: str, family: str) -> _Response:
        token, ttl = self._issue_access_token(client_id, scope, family)
        payload: dict[str, Any] = {
            "access_token": token,
            "expires_in": ttl,
            "token_type": "Bearer",
            "refresh_token": self._issue_refresh_token(client_id, scope, family),
            "scope": scope,
        }
        if "openid" in scope.split():
            payload["id_token"] = token
        return _json_response(200, payload, [("Cache-Control", "no-store")])

    def _revoke(self, headers: _Headers, body: bytes) -> _Response:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            if self._client_from(headers, form) is None:
                return _oauth_error(400, "invalid_client")
            refresh = self._refresh_tokens.get(form.get("token", ""))
            if refresh is not None:
                self._revoked_families.add(refresh.family)
            return _Response(200, [], b"")

    def _authorize(self, query: str) -> _Response:
        params = dict(parse_qsl(query, keep_blank_values=True))
        if params.get("client_id") != self.client_id:
            return _text_response(400, "invalid_client")
        if params.get("response_type") != "code" or not params.get("redirect_uri"):
            return _text_response(400, "invalid_request")
        code = secrets.token_urlsafe(24)
        scope = params.get("scope") or DEFAULT_SCOPE
        with self._lock:
            self._auth_codes[code] = _AuthCode(
                self.client_id, params["redirect_uri"], scope, time.time() + AUTH_CODE_TTL_SECONDS
            )
        out = {"code": code, "scope": scope}
        if "state" in params:
            out["state"] = params["state"]
        redirect = params["redirect_uri"]
        location = redirect + ("&" if "?" in redirect else "?") + urlencode(out)
        return _Response(302, [("Location", location)], b"")

    def _bearer_problem(self, headers: _Headers) -> _Response | None:
        """401 for a missing, unknown, revoked or expired access token (caller holds the lock)."""
        auth = headers.get("Authorization") or ""
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        record = self._access_tokens.get(token)
        if record is None or (record.family is not None and record.family in self._revoked_families):
            detail = "AuthorizationUnsuccessful"
        elif record.expires_at <= time.time():
            when = dt.datetime.fromtimestamp(record.expires_at, dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
            detail = f"TokenExpired: token expired at {when}"
        else:
            return None
        return _json_response(
            401,
            {
                "Type": None,
                "Title": "Unauthorized",
                "Status": 401,
                "Detail": detail,
                "Instance": str(uuid.uuid4()),
                "Extensions": {},
            },
            [("WWW-Authenticate", 'Bearer error="invalid_token"')],
        )

    def _connections(self, headers: _Headers) -> _Response:
        with self._lock:
            problem = self._bearer_problem(headers)
            if problem is not None:
                return problem
            if not self._connected:
                return _json_response(200, [])
            stamp = self._created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            return _json_response(
                200,
                [
                    {
                        "id": self._connection_id,
                        "authEventId": self._auth_event_id,
                        "tenantId": self.tenant_id,
                        "tenantType": "ORGANISATION",
                        "tenantName": self.org_name,
                        "createdDateUtc": stamp,
                        "updatedDateUtc": stamp,
                    }
                ],
            )

    def _disconnect(self, headers: _Headers, connection_id: str) -> _Response:
        with self._lock:
            problem = self._bearer_problem(headers)
            if problem is not None:
                return problem
            if connection_id != self._connection_id or not self._connected:
                return _not_found()
            self._connected = False
            return _Response(204, [], b"")

    # ---------------------------------------------------------------------------------------- admin

    def _admin(self, method: str, path: str, body: bytes) -> _Response:
        parts = [unquote(p) for p in path.split("/") if p][1:]
        num: Num = str
        try:
            payload = json.loads(body, parse_float=Decimal) if body.strip() else None
        except ValueError:
            return _json_response(400, {"error": "invalid JSON"})
        key = (method, tuple(p.lower() for p in parts))
        if key == ("GET", ("invoices",)):
            with self._lock:
                items = [self._render_invoice(i, lines=True, num=num) for i in self._invoices.values()]
            return _json_response(200, items)
        if key == ("GET", ("contacts",)):
            with self._lock:
                contacts = [self._render_contact(c, num=num) for c in self._contacts.values()]
            return _json_response(200, contacts)
        if key == ("GET", ("stats",)):
            return _json_response(200, self.stats())
        if key == ("POST", ("reset",)):
            self.reset()
            return _json_response(200, {"ok": True})
        if key in (("POST", ("faults",)), ("GET", ("faults",))):
            if method == "POST":
                try:
                    self.set_faults(**(payload or {}))
                except (TypeError, ValueError) as exc:
                    return _json_response(400, {"error": str(exc)})
            return _json_response(200, {"ok": True, "faults": self.faults()})
        if key == ("POST", ("contacts",)):
            seeds = payload.get("Contacts") if isinstance(payload, dict) else payload
            if not isinstance(seeds, list):
                return _json_response(400, {"error": "expected a list of contacts"})
            try:
                created = self.seed_contacts(seeds)
            except ValueError as exc:
                return _json_response(400, {"error": str(exc)})
            return _json_response(200, _jsonable(created, num))
        if method == "POST" and len(parts) == 3 and parts[0].lower() == "invoices" and parts[2].lower() == "pay":
            try:
                paid = self.pay_invoice(parts[1])
            except KeyError:
                return _not_found()
            except ValueError as exc:
                return _json_response(400, {"error": str(exc)})
            return _json_response(200, _jsonable(paid, num))
        return _not_found()

    # ----------------------------------------------------------------------------------- rate limits

    def _prune_windows(self, now: float) -> None:
        minute_floor = now - self.window_seconds
        while self._minute_calls and self._minute_calls[0] <= minute_floor:
            self._minute_calls.popleft()
        day_floor = now - self.day_window_seconds
        while self._day_calls and self._day_calls[0] <= day_floor:
            self._day_calls.popleft()

    def _rate_headers(self) -> list[tuple[str, str]]:
        used_minute = len(self._minute_calls)
        minute = self.minute_limit if self.minute_limit is not None else UNLIMITED_REPORTED
        day = self.day_limit if self.day_limit is not None else UNLIMITED_REPORTED
        return [
            ("X-MinLimit-Remaining", str(max(0, minute - used_minute))),
            ("X-DayLimit-Remaining", str(max(0, day - len(self._day_calls)))),
            ("X-AppMinLimit-Remaining", str(max(0, APP_MINUTE_LIMIT - used_minute))),
        ]

    def _too_many(self, problem: str, retry_after: float) -> _Response:
        self._rate_limited += 1
        seconds = max(1, math.ceil(retry_after))
        return _text_response(
            429,
            "Too Many Requests",
            [("Retry-After", str(seconds)), ("X-Rate-Limit-Problem", problem), *self._rate_headers()],
        )

    def _rate_check(self, now: float) -> _Response | None:
        self._prune_windows(now)
        if self._faults.day_limit_next > 0:
            self._faults.day_limit_next -= 1
            return self._too_many("day", 86_400 - (time.time() % 86_400))
        if self._faults.rate_limit_next > 0:
            self._faults.rate_limit_next -= 1
            return self._too_many("minute", 1)
        if self.day_limit is not None and len(self._day_calls) >= self.day_limit:
            oldest = self._day_calls[0] if self._day_calls else now
            return self._too_many("day", oldest + self.day_window_seconds - now)
        if self.minute_limit is not None and len(self._minute_calls) >= self.minute_limit:
            oldest = self._minute_calls[0] if self._minute_calls else now
            return self._too_many("minute", oldest + self.window_seconds - now)
        if self.concurrent_limit is not None and self._in_flight > self.concurrent_limit:
            return self._too_many("concurrent", 1)
        self._minute_calls.append(now)
        self._day_calls.append(now)
        return None

    # ------------------------------------------------------------------------------------------ API

    def _route(self, method: str, segments: list[str]) -> tuple[str, Callable[[_Request], _Response] | None]:
        if not segments:
            return f"{method} /", None
        resource = segments[0].lower()
        n = len(segments)
        table: dict[tuple[str, str, int], tuple[str, Callable[[_Request], _Response]]] = {
            ("GET", "organisation", 1): ("/Organisation", self._get_organisation),
            ("GET", "accounts", 1): ("/Accounts", self._get_accounts),
            ("GET", "taxrates", 1): ("/TaxRates", self._get_tax_rates),
            ("GET", "currencies", 1): ("/Currencies", self._get_currencies),
            ("GET", "contacts", 1): ("/Contacts", self._list_contacts),
            ("GET", "contacts", 2): ("/Contacts/{id}", self._get_contact),
            ("PUT", "contacts", 1): ("/Contacts", self._write_contacts),
            ("POST", "contacts", 1): ("/Contacts", self._write_contacts),
            ("POST", "contacts", 2): ("/Contacts/{id}", self._write_contacts),
            ("GET", "invoices", 1): ("/Invoices", self._list_invoices),
            ("GET", "invoices", 2): ("/Invoices/{id}", self._get_invoice),
            ("PUT", "invoices", 1): ("/Invoices", self._write_invoices),
            ("POST", "invoices", 1): ("/Invoices", self._write_invoices),
            ("POST", "invoices", 2): ("/Invoices/{id}", self._write_invoices),
        }
        if n == 3 and segments[2].lower() == "history" and resource in ("invoices", "contacts"):
            name = "/Invoices/{id}/History" if resource == "invoices" else "/Contacts/{id}/History"
            if method == "GET":
                return f"GET {name}", self._get_history
            if method in ("PUT", "POST"):
                return f"{method} {name}", self._put_history
        entry = table.get((method, resource, n))
        if entry is None:
            return f"{method} /{segments[0]}", None
        return f"{method} {entry[0]}", entry[1]

    def _api(
        self, method: str, subpath: str, query: str, headers: _Headers, body: bytes, too_large: bool
    ) -> tuple[_Response, bool]:
        segments = [unquote(s) for s in subpath.split("/") if s]
        endpoint, handler = self._route(method, segments)
        now = time.monotonic()
        with self._lock:
            self._calls += 1
            self._by_endpoint[endpoint] += 1
            if self._faults.outage_until > now:
                # No Retry-After: Xero's 503s are not documented to carry one (and urllib3 would then
                # silently retry GET/PUT on the client's behalf).
                return _text_response(503, "The service is currently unavailable"), False
            if self._faults.offline_until > now:
                return _text_response(503, "The Organisation is offline"), False
            problem = self._bearer_problem(headers)
            if problem is not None:
                return problem, False
            tenant = (headers.get("xero-tenant-id") or "").strip().lower()
            if (tenant and tenant != self.tenant_id.lower()) or not self._connected:
                return _json_response(
                    403,
                    {
                        "Type": None,
                        "Title": "Forbidden",
                        "Status": 403,
                        "Detail": "AuthenticationUnsuccessful",
                        "Instance": str(uuid.uuid4()),
                        "Extensions": {},
                    },
                ), False
            self._in_flight += 1
            limited = self._rate_check(now)
            if limited is not None:
                return limited, True
            if self._faults.server_error_next > 0:
                self._faults.server_error_next -= 1
                return _json_response(
                    500,
                    {
                        "ErrorNumber": 500,
                        "Type": "UnknownErrorException",
                        "Message": "An error occurred in Xero. Check the API Status "
                        "page http://status.developer.xero.com for current "
                        "service status.",
                    },
                    self._rate_headers(),
                ), True
            latency = self._faults.latency_seconds
        if too_large:
            return _text_response(413, "The request was too large"), True
        if latency > 0:
            time.sleep(latency)
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key.lower()] = value
        request = _Request(method, segments, params, headers, body, f"{subpath}?{query}")
        idem_key = headers.get("Idempotency-Key") if method in ("PUT", "POST", "PATCH") else None
        with self._lock:
            if idem_key is not None:
                replay = self._idempotency_lookup(idem_key, request)
                if replay is not None:
                    return replay, True
            if handler is None:
                response = _not_found()
            else:
                try:
                    response = handler(request)
                except _BadRequest as exc:
                    response = exc.response
            response.headers.extend(self._rate_headers())
            if idem_key is not None and response.status < 500:
                self._idempotency_store(idem_key, request, response)
            if method in ("PUT", "POST") and handler is not None and self._faults.drop_response_after_commit_next > 0:
                self._faults.drop_response_after_commit_next -= 1
                self._dropped += 1
                return _Response(0, [], b"", drop=True), True
            return response, True

    def _idempotency_lookup(self, key: str, request: _Request) -> _Response | None:
        if len(key) > IDEMPOTENCY_KEY_MAX:
            return _validation_error(
                f"Idempotency Key: {key[:16]}... must be {IDEMPOTENCY_KEY_MAX} characters or fewer."
            )
        now = time.monotonic()
        while self._idempotency_order and self._idempotency_order[0][0] + self.idempotency_ttl_seconds <= now:
            _, old = self._idempotency_order.popleft()
            entry = self._idempotency.get(old)
            if entry is not None and entry.created + self.idempotency_ttl_seconds <= now:
                del self._idempotency[old]
        entry = self._idempotency.get(key)
        if entry is None:
            return None
        digest = hashlib.sha256(request.body).hexdigest()
        if (entry.method, entry.target, entry.body_hash) != (request.method, request.target, digest):
            return _validation_error(f"Idempotency Key: {key} is used with a different request.")
        self._replays += 1
        stored = entry.response
        return _Response(stored.status, list(stored.headers), stored.body)

    def _idempotency_store(self, key: str, request: _Request, response: _Response) -> None:
        if len(key) > IDEMPOTENCY_KEY_MAX or key in self._idempotency:
            return
        now = time.monotonic()
        digest = hashlib.sha256(request.body).hexdigest()
        self._idempotency[key] = _IdempotencyEntry(
            request.method,
            request.target,
            digest,
            now,
            _Response(response.status, list(response.headers), response.body),
        )
        self._idempotency_order.append((now, key))

    def _envelope(self, key: str, items: list[Any], pagination: dict[str, int] | None = None) -> _Response:
        payload: dict[str, Any] = {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": PROVIDER_NAME,
            "DateTimeUTC": ms_datetime(_now()),
        }
        if pagination is not None:
            payload["pagination"] = pagination
        payload[key] = items
        return _json_response(200, payload)

    @staticmethod
    def _json_body(request: _Request, key: str, singular: str) -> list[Any]:
        try:
            payload = json.loads(request.body, parse_float=Decimal) if request.body.strip() else None
        except ValueError as exc:
            raise _BadRequest(
                _json_response(
                    400, {"ErrorNumber": 17, "Type": "PostDataInvalidException", "Message": f"Invalid Json data: {exc}"}
                )
            ) from exc
        if isinstance(payload, dict):
            items = next((v for k, v in payload.items() if k.lower() == key.lower()), None)
            if items is None and payload:
                items = [payload]
        elif isinstance(payload, list):
            items = payload
        else:
            items = None
        if not isinstance(items, list) or not items:
            raise _BadRequest(
                _validation_error(
                    f"No data has been processed for this endpoint. This endpoint is expecting {singular} data "
                    "to be specifed in the request body."
                )
            )
        return items

    @staticmethod
    def _paging(request: _Request) -> tuple[int, int] | None:
        if "page" not in request.query and "pagesize" not in request.query:
            return None
        try:
            page = max(1, int(request.query.get("page") or 1))
            size = int(request.query.get("pagesize") or 100)
        except ValueError as exc:
            raise _BadRequest(_validation_error("page and pageSize must be integers")) from exc
        return page, min(max(size, 1), 1000)

    @staticmethod
    def _paginate(items: list[Record], paging: tuple[int, int] | None) -> tuple[list[Record], dict[str, int] | None]:
        if paging is None:
            return items, None
        page, size = paging
        total = len(items)
        block = {"page": page, "pageSize": size, "pageCount": math.ceil(total / size), "itemCount": total}
        return items[(page - 1) * size : page * size], block

    @staticmethod
    def _where(request: _Request, schema: FieldSpec, entity: str) -> Node | None:
        text = request.query.get("where")
        if text is None or not text.strip():
            return None
        try:
            return parse_where(text, schema, entity)
        except WhereError as exc:
            raise _BadRequest(_query_error(str(exc))) from exc

    def _order(
        self,
        request: _Request,
        items: list[Record],
        schema: FieldSpec,
        entity: str,
        getter: Callable[[Record, tuple[str, ...]], Any],
    ) -> list[Record]:
        text = request.query.get("order")
        if not text or not text.strip():
            return items
        keys: list[tuple[tuple[str, ...], bool]] = []
        for part in text.split(","):
            words = part.split()
            if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
                raise _BadRequest(_query_error(f"Invalid order clause '{part.strip()}'"))
            path = tuple(words[0].split("."))
            try:
                parse_where(f"{words[0]} == null", schema, entity)
            except WhereError as exc:
                raise _BadRequest(_query_error(str(exc))) from exc
            keys.append((path, len(words) == 2 and words[1].upper() == "DESC"))
        ordered = list(items)
        for path, descending in reversed(keys):

            def sort_key(record: Record, path: tuple[str, ...] = path) -> tuple[bool, Any]:
                value = getter(record, path)
                if isinstance(value, str):
                    value = value.casefold()
                elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                    value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
                return (value is None, value if value is not None else 0)

            present = [r for r in ordered if getter(r, path) is not None]
            missing = [r for r in ordered if getter(r, path) is None]
            present.sort(key=sort_key, reverse=descending)
            ordered = present + missing
        return ordered

    def _modified_since(
        self, request: _Request, table: dict[str, Record]
    ) -> tuple[dt.datetime | None, list[Record] | None]:
        raw = request.headers.get("If-Modified-Since")
        since = _parse_http_date(raw) if raw else None
        if since is None:
            return None, None
        newer: list[Record] = []
        # Records are kept in UpdatedDateUTC order, so walk back from the newest and stop early.
        for record in reversed(table.values()):
            if record["UpdatedDateUTC"] < since:
                break
            newer.append(record)
        newer.reverse()
        return since, newer

    # ----------------------------------------------------------------------------- reference data

    def _get_organisation(self, request: _Request) -> _Response:
        org: dict[str, Any] = {
            "OrganisationID": self._org_id,
            "APIKey": "",
            "Name": self.org_name,
            "LegalName": self.org_name,
            "PaysTax": True,
            "Version": "AU",
            "OrganisationType": "COMPANY",
            "BaseCurrency": "AUD",
            "CountryCode": "AU",
            "IsDemoCompany": False,
            "OrganisationStatus": "ACTIVE",
            "TaxNumber": "12345678901",
            "FinancialYearEndDay": 30,
            "FinancialYearEndMonth": 6,
            "SalesTaxBasis": "ACCRUALS",
            "SalesTaxPeriod": "QUARTERLY1",
            "DefaultSalesTax": "Tax Exclusive",
            "DefaultPurchasesTax": "Tax Exclusive",
            "CreatedDateUTC": ms_datetime(self._created),
            "OrganisationEntityType": "COMPANY",
            "Timezone": "AUSEASTERNSTANDARDTIME",
            "ShortCode": "!sT4nd",
            "Class": "STANDARD",
            "Edition": "BUSINESS",
            "LineOfBusiness": "Wholesale",
            "Addresses": [],
            "Phones": [],
            "ExternalLinks": [],
            "PaymentTerms": {},
        }
        if self.period_lock_date is not None:
            org["PeriodLockDate"] = ms_date(self.period_lock_date)
            org["EndOfYearLockDate"] = ms_date(self.period_lock_date)
        return self._envelope("Organisations", [org])

    def _get_accounts(self, request: _Request) -> _Response:
        return self._envelope("Accounts", [a.to_xero(self._created) for a in ACCOUNTS.values()])

    def _get_tax_rates(self, request: _Request) -> _Response:
        return self._envelope("TaxRates", [t.to_xero() for t in TAX_RATES.values()])

    def _get_currencies(self, request: _Request) -> _Response:
        return self._envelope("Currencies", [{"Code": c, "Description": d} for c, d in CURRENCIES.items()])

    # ----------------------------------------------------------------------------------- contacts

    def _find_contact(self, ref: str) -> Record | None:
        if _is_guid(ref):
            return self._contacts.get(ref.lower())
        contact_id = self._contact_by_number.get(ref.casefold())
        return self._contacts.get(contact_id) if contact_id else None

    @staticmethod
    def _contact_field(record: Record, path: tuple[str, ...]) -> Any:
        if len(path) != 1:
            return None
        name = path[0].lower()
        for key in CONTACT_SCHEMA:
            if key.lower() == name:
                return record.get(key)
        return None

    def _render_contact(self, c: Record, *, num: Num, summary: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"ContactID": c["ContactID"], "ContactStatus": c["ContactStatus"]}
        for key in CONTACT_SUMMARY_FIELDS if summary else CONTACT_TEXT_FIELDS:
            if c.get(key) is not None:
                out[key] = c[key]
        out["UpdatedDateUTC"] = ms_datetime(c["UpdatedDateUTC"])
        out["IsSupplier"] = c["IsSupplier"]
        out["IsCustomer"] = c["IsCustomer"]
        if summary:
            out["HasValidationErrors"] = False
            return out
        addresses = dict(c["Addresses"])
        for kind in ADDRESS_TYPES:
            addresses.setdefault(kind, {"AddressType": kind})
        phones = dict(c["Phones"])
        for kind in ("DEFAULT", "DDI", "FAX", "MOBILE"):
            phones.setdefault(kind, {"PhoneType": kind})
        out["Addresses"] = [dict(a) for a in addresses.values()]
        out["Phones"] = [dict(p) for p in phones.values()]
        out["ContactGroups"] = []
        out["ContactPersons"] = _jsonable(c["ContactPersons"], num)
        if c.get("PaymentTerms"):
            out["PaymentTerms"] = _jsonable(c["PaymentTerms"], num)
        out["HasAttachments"] = False
        out["HasValidationErrors"] = False
        return out

    def _list_contacts(self, request: _Request) -> _Response:
        node = self._where(request, CONTACT_SCHEMA, "Contact")
        include_archived = bool(request.flag("includeArchived"))
        ids = {i.lower() for i in _csv(request.query.get("ids"))}
        hints = equality_hints(node) if node is not None else {}
        candidates: set[str] | None = None

        def narrow(found: Iterable[str]) -> None:
            nonlocal candidates
            found_set = set(found)
            candidates = found_set if candidates is None else candidates & found_set

        if ids:
            narrow(i for i in ids if i in self._contacts)
        if "contactid" in hints:
            narrow([hints["contactid"].lower()] if hints["contactid"].lower() in self._contacts else [])
        if "contactnumber" in hints:
            found = self._contact_by_number.get(hints["contactnumber"].casefold())
            narrow([found] if found else [])
        if "name" in hints and not include_archived:
            found = self._active_contact_by_name.get(hints["name"].strip().casefold())
            narrow([found] if found else [])
        since, newer = self._modified_since(request, self._contacts)
        records: list[Record]
        if candidates is not None:
            records = sorted((self._contacts[i] for i in candidates), key=lambda r: r["_seq"])
        elif newer is not None:
            records = newer
        else:
            records = list(self._contacts.values())
        term = (request.query.get("searchterm") or "").strip().casefold()
        out: list[Record] = []
        for c in records:
            if not include_archived and c["ContactStatus"] == "ARCHIVED" and not ids:
                continue
            if since is not None and c["UpdatedDateUTC"] < since:
                continue
            if term and not any(
                term in (c.get(k) or "").casefold()
                for k in ("Name", "ContactNumber", "EmailAddress", "FirstName", "LastName")
            ):
                continue
            if node is not None and not evaluate(node, functools.partial(self._contact_field, c)):
                continue
            out.append(c)
        out = self._order(request, out, CONTACT_SCHEMA, "Contact", self._contact_field)
        page, pagination = self._paginate(out, self._paging(request))
        summary = bool(request.flag("summaryOnly"))
        return self._envelope(
            "Contacts", [self._render_contact(c, num=_float, summary=summary) for c in page], pagination
        )

    def _get_contact(self, request: _Request) -> _Response:
        contact = self._find_contact(request.segments[1])
        if contact is None:
            return _not_found()
        return self._envelope("Contacts", [self._render_contact(contact, num=_float)])

    def _apply_contact_fields(self, record: Record, elem: Mapping[str, Any], existing_id: str | None) -> list[str]:
        errors: list[str] = []
        for key in CONTACT_TEXT_FIELDS:
            if key in elem:
                value = _text(elem[key])
                record[key] = value.strip() if value is not None and key == "Name" else value
        if "ContactStatus" in elem:
            status = str(elem["ContactStatus"] or "ACTIVE").upper()
            if status not in CONTACT_STATUSES:
                errors.append(f"The ContactStatus '{elem['ContactStatus']}' is not valid.")
            record["ContactStatus"] = status
        if "Addresses" in elem:
            for addr in elem["Addresses"] or []:
                kind = str((addr or {}).get("AddressType") or "").upper()
                if kind not in ADDRESS_TYPES:
                    errors.append(f"The address type '{kind}' is not valid. Use POBOX or STREET.")
                    continue
                record["Addresses"][kind] = {k: v for k, v in addr.items() if v is not None} | {"AddressType": kind}
        if "Phones" in elem:
            for phone in elem["Phones"] or []:
                kind = str((phone or {}).get("PhoneType") or "").upper()
                if kind not in PHONE_TYPES:
                    errors.append(f"The phone type '{kind}' is not valid.")
                    continue
                record["Phones"][kind] = {k: v for k, v in phone.items() if v is not None} | {"PhoneType": kind}
        if "PaymentTerms" in elem:
            record["PaymentTerms"] = copy.deepcopy(elem["PaymentTerms"]) or {}
        if "ContactPersons" in elem:
            record["ContactPersons"] = copy.deepcopy(elem["ContactPersons"]) or []
        name = record.get("Name")
        if not name:
            errors.append(
                "The contact name must be specified." if existing_id is None else "The contact name cannot be empty."
            )
        elif len(name) > 255:
            errors.append("The contact name must be 255 characters or less.")
        number = record.get("ContactNumber")
        if number is not None and len(number) > 50:
            errors.append("The Contact Number must be 50 characters or less.")
        if record.get("AccountNumber") and len(record["AccountNumber"]) > 50:
            errors.append("The Account Number must be 50 characters or less.")
        email_address = record.get("EmailAddress")
        if email_address is not None and len(email_address) > 255:
            errors.append("The Email Address must be 255 characters or less.")
        currency = record.get("DefaultCurrency")
        if currency and currency not in CURRENCIES:
            errors.append(f"The currency {currency} has not been enabled for this organisation.")
        return errors

    def _check_contact_uniqueness(
        self, record: Record, existing_id: str | None, claims: _Claims | None, errors: list[str]
    ) -> None:
        name = (record.get("Name") or "").casefold()
        if name and record["ContactStatus"] == "ACTIVE":
            holder = self._active_contact_by_name.get(name)
            if (holder is not None and holder != existing_id) or (claims is not None and name in claims.contact_names):
                errors.append(
                    f"The contact name {record['Name']} is already assigned to another contact. "
                    "The contact name must be unique across all active contacts."
                )
        number = (record.get("ContactNumber") or "").casefold()
        if number:
            holder = self._contact_by_number.get(number)
            if (holder is not None and holder != existing_id) or (
                claims is not None and number in claims.contact_numbers
            ):
                errors.append(
                    f"The contact number {record['ContactNumber']} is already assigned to another contact. "
                    "The contact number must be unique across all contacts."
                )

    def _prepare_contact(
        self, elem: Any, method: str, path_contact: Record | None, claims: _Claims | None
    ) -> tuple[_ContactPlan | None, list[str]]:
        if not isinstance(elem, dict):
            return None, ["A contact element must be a JSON object."]
        existing = path_contact
        given_id = _text(elem.get("ContactID"))
        if existing is None and given_id and given_id != ZERO_GUID:
            existing = self._contacts.get(given_id.lower()) if _is_guid(given_id) else None
            if existing is None:
                return None, [f"The contact with ContactID {given_id} could not be found."]
            if method == "PUT":
                return None, [f"A contact with ContactID {given_id} already exists. Use POST to update it."]
        number = _text(elem.get("ContactNumber"))
        if existing is None and number and method == "POST":
            existing = self._find_contact_by_number(number)
        if existing is not None:
            record = copy.deepcopy(existing)
            existing_id: str | None = existing["ContactID"]
        else:
            record = {
                "ContactID": None,
                "ContactStatus": "ACTIVE",
                "Addresses": {},
                "Phones": {},
                "IsSupplier": False,
                "IsCustomer": False,
                "ContactPersons": [],
            }
            existing_id = None
        errors = self._apply_contact_fields(record, elem, existing_id)
        self._check_contact_uniqueness(record, existing_id, claims, errors)
        if errors:
            return None, errors
        return _ContactPlan(existing_id, record), []

    def _find_contact_by_number(self, number: str) -> Record | None:
        contact_id = self._contact_by_number.get(number.casefold())
        return self._contacts.get(contact_id) if contact_id else None

    def _claim_contact(self, record: Record, claims: _Claims) -> None:
        if record.get("Name") and record["ContactStatus"] == "ACTIVE":
            claims.contact_names.add(record["Name"].casefold())
        if record.get("ContactNumber"):
            claims.contact_numbers.add(record["ContactNumber"].casefold())

    def _commit_contact(self, plan: _ContactPlan) -> Record:
        record = plan.record
        if plan.existing_id is not None:
            old = self._contacts[plan.existing_id]
            old_name = (old.get("Name") or "").casefold()
            if self._active_contact_by_name.get(old_name) == plan.existing_id:
                del self._active_contact_by_name[old_name]
            old_number = (old.get("ContactNumber") or "").casefold()
            if old_number and self._contact_by_number.get(old_number) == plan.existing_id:
                del self._contact_by_number[old_number]
        else:
            record["ContactID"] = record.get("ContactID") or str(uuid.uuid4())
        if record.get("Name") and record["ContactStatus"] == "ACTIVE":
            self._active_contact_by_name[record["Name"].casefold()] = record["ContactID"]
        if record.get("ContactNumber"):
            self._contact_by_number[record["ContactNumber"].casefold()] = record["ContactID"]
        self._touch(self._contacts, record, "ContactID")
        return record

    def _contact_error_echo(self, elem: Any, errors: list[str]) -> dict[str, Any]:
        echo: dict[str, Any] = _jsonable(dict(elem), _float) if isinstance(elem, dict) else {}
        if not echo.get("ContactID"):
            echo["ContactID"] = ZERO_GUID
        echo["HasErrors"] = True
        echo["HasValidationErrors"] = True
        echo["StatusAttributeString"] = "ERROR"
        echo["ValidationErrors"] = [{"Message": m} for m in errors]
        return echo

    def _write_contacts(self, request: _Request) -> _Response:
        path_contact: Record | None = None
        if len(request.segments) == 2:
            path_contact = self._find_contact(request.segments[1])
            if path_contact is None:
                return _not_found()
        items = self._json_body(request, "Contacts", "Contact")
        if path_contact is not None:
            items = items[:1]
        summarize = request.flag("summarizeErrors") is not False
        if not summarize:
            results: list[dict[str, Any]] = []
            for elem in items:
                plan, errors = self._prepare_contact(elem, request.method, path_contact, None)
                if plan is None:
                    results.append(self._contact_error_echo(elem, errors))
                    continue
                record = self._commit_contact(plan)
                results.append(self._render_contact(record, num=_float) | {"StatusAttributeString": "OK"})
            return self._envelope("Contacts", results)
        claims = _Claims()
        plans: list[_ContactPlan] = []
        failures: list[dict[str, Any]] = []
        for elem in items:
            plan, errors = self._prepare_contact(elem, request.method, path_contact, claims)
            if plan is None:
                failures.append(self._contact_error_echo(elem, errors))
            else:
                self._claim_contact(plan.record, claims)
                plans.append(plan)
        if failures:
            return _validation_error("A validation exception occurred", failures)
        committed = [self._commit_contact(plan) for plan in plans]
        return self._envelope("Contacts", [self._render_contact(c, num=_float) for c in committed])

    # ----------------------------------------------------------------------------------- invoices

    def _find_invoice(self, ref: str) -> Record | None:
        if _is_guid(ref):
            return self._invoices.get(ref.lower())
        for kind in INVOICE_TYPES:
            invoice_id = self._invoice_by_number.get((kind, ref.casefold()))
            if invoice_id:
                return self._invoices[invoice_id]
        return None

    @staticmethod
    def _amount_due(inv: Record) -> Decimal:
        if inv["Status"] in ("VOIDED", "DELETED"):
            return Decimal("0.00")
        due: Decimal = inv["Total"] - inv["AmountPaid"] - inv["AmountCredited"]
        return due

    def _invoice_field(self, inv: Record, path: tuple[str, ...]) -> Any:
        head = path[0].lower()
        if head == "contact":
            contact = self._contacts.get(inv["ContactID"])
            return self._contact_field(contact, path[1:]) if contact is not None and len(path) > 1 else None
        if len(path) != 1:
            return None
        if head == "amountdue":
            return self._amount_due(inv)
        if head == "hasattachments":
            return False
        for key in INVOICE_SCHEMA:
            if key.lower() == head:
                return inv.get(key)
        return None

    def _render_line(self, line: Record, num: Num) -> dict[str, Any]:
        out: dict[str, Any] = {
            "LineItemID": line["LineItemID"],
            "Description": line["Description"],
            "Quantity": num(line["Quantity"]),
            "UnitAmount": num(line["UnitAmount"]),
        }
        for key in ("ItemCode", "AccountCode"):
            if line.get(key):
                out[key] = line[key]
        if line.get("AccountCode") in ACCOUNTS:
            out["AccountID"] = ACCOUNTS[line["AccountCode"]].to_xero(self._created)["AccountID"]
        out["TaxType"] = line["TaxType"]
        out["TaxAmount"] = num(line["TaxAmount"])
        out["LineAmount"] = num(line["LineAmount"])
        if line.get("DiscountRate") is not None:
            out["DiscountRate"] = num(line["DiscountRate"])
        if line.get("DiscountAmount") is not None:
            out["DiscountAmount"] = num(line["DiscountAmount"])
        out["Tracking"] = _jsonable(line.get("Tracking") or [], num)
        return out

    def _render_invoice(self, inv: Record, *, lines: bool, num: Num, summary: bool = False) -> dict[str, Any]:
        contact = self._contacts.get(inv["ContactID"], {})
        contact_out: dict[str, Any] = {"ContactID": inv["ContactID"], "Name": contact.get("Name", "")}
        if contact.get("ContactNumber"):
            contact_out["ContactNumber"] = contact["ContactNumber"]
        contact_out["ContactStatus"] = contact.get("ContactStatus", "ACTIVE")
        contact_out["HasValidationErrors"] = False
        out: dict[str, Any] = {"Type": inv["Type"], "InvoiceID": inv["InvoiceID"]}
        if inv.get("InvoiceNumber"):
            out["InvoiceNumber"] = inv["InvoiceNumber"]
        if inv.get("Reference") is not None:
            out["Reference"] = inv["Reference"]
        if not summary:
            out["Payments"] = [
                {
                    "PaymentID": p["PaymentID"],
                    "Date": ms_date(p["Date"]),
                    "Amount": num(p["Amount"]),
                    "CurrencyRate": num(p["CurrencyRate"]),
                    "HasAccount": False,
                    "HasValidationErrors": False,
                }
                for p in inv["Payments"]
            ]
            out["CreditNotes"] = []
            out["Prepayments"] = []
            out["Overpayments"] = []
        out["AmountDue"] = num(self._amount_due(inv))
        out["AmountPaid"] = num(inv["AmountPaid"])
        out["AmountCredited"] = num(inv["AmountCredited"])
        out["CurrencyRate"] = num(inv["CurrencyRate"])
        out["IsDiscounted"] = inv["IsDiscounted"]
        out["HasAttachments"] = False
        out["HasErrors"] = False
        out["Contact"] = contact_out
        out["DateString"] = inv["Date"].isoformat() + "T00:00:00"
        out["Date"] = ms_date(inv["Date"])
        if inv.get("DueDate") is not None:
            out["DueDateString"] = inv["DueDate"].isoformat() + "T00:00:00"
            out["DueDate"] = ms_date(inv["DueDate"])
        out["Status"] = inv["Status"]
        out["LineAmountTypes"] = inv["LineAmountTypes"]
        if lines and not summary:
            out["LineItems"] = [self._render_line(line, num) for line in inv["LineItems"]]
        out["SubTotal"] = num(inv["SubTotal"])
        out["TotalTax"] = num(inv["TotalTax"])
        out["Total"] = num(inv["Total"])
        out["UpdatedDateUTC"] = ms_datetime(inv["UpdatedDateUTC"])
        out["CurrencyCode"] = inv["CurrencyCode"]
        if inv.get("FullyPaidOnDate") is not None:
            out["FullyPaidOnDate"] = ms_date(inv["FullyPaidOnDate"])
        out["SentToContact"] = inv["SentToContact"]
        for key in ("Url", "BrandingThemeID"):
            if inv.get(key):
                out[key] = inv[key]
        return out

    def _list_invoices(self, request: _Request) -> _Response:
        node = self._where(request, INVOICE_SCHEMA, "Invoice")
        hints = equality_hints(node) if node is not None else {}
        candidates: set[str] | None = None

        def narrow(found: Iterable[str]) -> None:
            nonlocal candidates
            found_set = set(found)
            candidates = found_set if candidates is None else candidates & found_set

        ids = [i.lower() for i in _csv(request.query.get("ids"))]
        if ids:
            narrow(i for i in ids if i in self._invoices)
        if "invoiceid" in hints:
            narrow(i for i in [hints["invoiceid"].lower()] if i in self._invoices)
        numbers = _csv(request.query.get("invoicenumbers"))
        if "invoicenumber" in hints:
            narrow(self._ids_for_numbers([hints["invoicenumber"]]))
        if numbers:
            narrow(self._ids_for_numbers(numbers))
        contact_ids = [c.lower() for c in _csv(request.query.get("contactids"))]
        if "contact.contactid" in hints:
            narrow(self._invoices_by_contact.get(hints["contact.contactid"].lower(), set()))
        if contact_ids:
            narrow(i for c in contact_ids for i in self._invoices_by_contact.get(c, ()))
        statuses = {s.upper() for s in _csv(request.query.get("statuses"))}
        since, newer = self._modified_since(request, self._invoices)
        records: list[Record]
        if candidates is not None:
            records = sorted((self._invoices[i] for i in candidates), key=lambda r: r["_seq"])
        elif newer is not None:
            records = newer
        else:
            records = list(self._invoices.values())
        term = (request.query.get("searchterm") or "").strip().casefold()
        out: list[Record] = []
        for inv in records:
            if statuses and inv["Status"] not in statuses:
                continue
            if since is not None and inv["UpdatedDateUTC"] < since:
                continue
            if (
                term
                and term not in (inv.get("InvoiceNumber") or "").casefold()
                and term not in (inv.get("Reference") or "").casefold()
            ):
                continue
            if node is not None and not evaluate(node, functools.partial(self._invoice_field, inv)):
                continue
            out.append(inv)
        out = self._order(request, out, INVOICE_SCHEMA, "Invoice", self._invoice_field)
        paging = self._paging(request)
        page, pagination = self._paginate(out, paging)
        summary = bool(request.flag("summaryOnly"))
        lines = paging is not None and "page" in request.query
        return self._envelope(
            "Invoices",
            [self._render_invoice(i, lines=lines, num=_float, summary=summary) for i in page],
            pagination,
        )

    def _ids_for_numbers(self, numbers: Iterable[str]) -> list[str]:
        found: list[str] = []
        for number in numbers:
            for kind in INVOICE_TYPES:
                invoice_id = self._invoice_by_number.get((kind, number.casefold()))
                if invoice_id:
                    found.append(invoice_id)
        return found

    def _get_invoice(self, request: _Request) -> _Response:
        inv = self._find_invoice(request.segments[1])
        if inv is None:
            return _not_found()
        return self._envelope("Invoices", [self._render_invoice(inv, lines=True, num=_float)])

    def _resolve_invoice_contact(self, ref: Any, errors: list[str]) -> tuple[str | None, Record | None]:
        """(existing ContactID, or None plus a contact to create when Name alone is given)."""
        if not isinstance(ref, dict) or not any(ref.get(k) for k in ("ContactID", "ContactNumber", "Name")):
            errors.append("A Contact must be specified for this type of transaction")
            return None, None
        contact: Record | None = None
        contact_id = _text(ref.get("ContactID"))
        number = _text(ref.get("ContactNumber"))
        name = (_text(ref.get("Name")) or "").strip()
        if contact_id and contact_id != ZERO_GUID:
            contact = self._contacts.get(contact_id.lower()) if _is_guid(contact_id) else None
            if contact is None:
                errors.append(f"The contact with ContactID {contact_id} could not be found.")
                return None, None
        elif number:
            contact = self._find_contact_by_number(number)
            if contact is None and not name:
                errors.append(f"The contact with ContactNumber {number} could not be found.")
                return None, None
        if contact is None and name:
            found = self._active_contact_by_name.get(name.casefold())
            contact = self._contacts.get(found) if found else None
        if contact is None:
            new: Record = {
                "ContactID": None,
                "ContactStatus": "ACTIVE",
                "Addresses": {},
                "Phones": {},
                "IsSupplier": False,
                "IsCustomer": False,
                "ContactPersons": [],
                "Name": name,
            }
            if number:
                new["ContactNumber"] = number
            new_errors = self._apply_contact_fields(new, {}, None)
            if number and self._find_contact_by_number(number) is not None:
                new_errors.append(f"The contact number {number} is already assigned to another contact.")
            errors.extend(new_errors)
            return None, (new if not new_errors else None)
        if contact["ContactStatus"] != "ACTIVE":
            errors.append(f"The contact is archived and cannot be used on new transactions ({contact.get('Name')}).")
        return contact["ContactID"], None

    def _prepare_invoice(
        self, elem: Any, method: str, path_invoice: Record | None, unitdp4: bool, claims: _Claims | None
    ) -> tuple[_InvoicePlan | None, list[str]]:
        if not isinstance(elem, dict):
            return None, ["An invoice element must be a JSON object."]
        errors: list[str] = []
        existing = path_invoice
        given_id = _text(elem.get("InvoiceID"))
        number = (_text(elem.get("InvoiceNumber")) or "").strip() or None
        elem_type = (_text(elem.get("Type")) or "").upper() or None
        if existing is None and given_id and given_id != ZERO_GUID:
            existing = self._invoices.get(given_id.lower()) if _is_guid(given_id) else None
            if existing is None:
                return None, [f"The invoice with InvoiceID {given_id} could not be found."]
            if method == "PUT":
                return None, [f"An invoice with InvoiceID {given_id} already exists. Use POST to update it."]
        if existing is None and number is not None:
            kinds = [elem_type] if elem_type in INVOICE_TYPES else list(INVOICE_TYPES)
            match = next(
                (
                    self._invoice_by_number[(k, number.casefold())]
                    for k in kinds
                    if (k, number.casefold()) in self._invoice_by_number
                ),
                None,
            )
            if match is not None:
                if method == "PUT":
                    return None, ["Invoice # must be unique."]
                existing = self._invoices[match]
        if existing is not None:
            if existing["Status"] in ("VOIDED", "DELETED"):
                return None, ["Invoice not of valid status for modification"]
            if existing["Status"] == "PAID" or existing["AmountPaid"] > 0 or existing["AmountCredited"] > 0:
                return None, ["This document cannot be edited as it has a payment or credit note allocated to it."]
            record: Record = dict(existing)
        else:
            record = {
                "InvoiceID": None,
                "Type": elem_type,
                "InvoiceNumber": None,
                "Reference": None,
                "ContactID": None,
                "Date": None,
                "DueDate": None,
                "Status": "DRAFT",
                "LineAmountTypes": "Exclusive",
                "LineItems": [],
                "CurrencyCode": "AUD",
                "CurrencyRate": Decimal("1"),
                "AmountPaid": Decimal("0.00"),
                "AmountCredited": Decimal("0.00"),
                "SentToContact": False,
                "Payments": [],
                "FullyPaidOnDate": None,
                "IsDiscounted": False,
            }
            if elem_type not in INVOICE_TYPES:
                errors.append(
                    "Invoice Type must be ACCREC or ACCPAY." if elem_type else "The Invoice Type must be specified."
                )
        kind = record["Type"] or "ACCREC"

        # Status and transitions.
        if "Status" in elem and elem["Status"] is not None:
            status = str(elem["Status"]).upper()
            if status not in INVOICE_STATUSES:
                errors.append(f"'{elem['Status']}' is not a valid invoice status.")
            elif existing is None and status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
                errors.append("Invoice not of valid status for creation")
            elif (
                existing is not None
                and status != existing["Status"]
                and status not in STATUS_TRANSITIONS.get(existing["Status"], frozenset())
            ):
                errors.append("Invoice not of valid status for modification")
            record["Status"] = status

        # Number.
        if number is not None and (existing is None or number != existing.get("InvoiceNumber")):
            if len(number) > 255:
                errors.append("Invoice Number must be 255 characters or less.")
            holder = self._invoice_by_number.get((kind, number.casefold()))
            if (holder is not None and (existing is None or holder != existing["InvoiceID"])) or (
                claims is not None and (kind, number.casefold()) in claims.invoice_numbers
            ):
                errors.append("Invoice # must be unique.")
            record["InvoiceNumber"] = number

        # Contact.
        new_contact: Record | None = None
        if "Contact" in elem or existing is None:
            contact_id, new_contact = self._resolve_invoice_contact(elem.get("Contact"), errors)
            record["ContactID"] = contact_id

        # Simple fields.
        for key in ("Reference", "Url", "BrandingThemeID"):
            if key in elem:
                record[key] = _text(elem[key])
        if kind == "ACCPAY":
            record["Reference"] = None
        if "SentToContact" in elem:
            record["SentToContact"] = bool(elem["SentToContact"])
        for key in ("Date", "DueDate"):
            if elem.get(key):
                try:
                    record[key] = parse_input_date(elem[key])
                except ValueError:
                    errors.append(f"The {key} '{elem[key]}' is not a valid date.")
        if record["Date"] is None:
            record["Date"] = _now().date()
        lock = self.period_lock_date
        if lock is not None and record["Date"] <= lock:
            errors.append(
                f"The document date cannot be before the period lock date ({lock.day} {lock.strftime('%b %Y')})."
            )
        if elem.get("LineAmountTypes") is not None:
            lat = LINE_AMOUNT_TYPES.get(str(elem["LineAmountTypes"]).lower())
            if lat is None:
                errors.append(f"'{elem['LineAmountTypes']}' is not a valid LineAmountTypes value.")
            else:
                record["LineAmountTypes"] = lat
        if elem.get("CurrencyCode"):
            code = str(elem["CurrencyCode"]).upper()
            if code not in CURRENCIES:
                errors.append(
                    f"The currency {code} has not been enabled for this organisation. "
                    "Add it in Settings > Currencies before using it."
                )
            elif code != record["CurrencyCode"]:
                record["CurrencyRate"] = DEFAULT_CURRENCY_RATES[code]
            record["CurrencyCode"] = code
        if elem.get("CurrencyRate") is not None and record["CurrencyCode"] != "AUD":
            try:
                rate = parse_decimal(elem["CurrencyRate"])
            except ValueError:
                rate = None
            if rate is None or rate <= 0:
                errors.append("The CurrencyRate must be greater than zero.")
            else:
                record["CurrencyRate"] = rate
        if record["CurrencyCode"] == "AUD":
            record["CurrencyRate"] = Decimal("1")

        # Lines.
        recompute = "LineItems" in elem or (
            existing is not None and record["LineAmountTypes"] != existing["LineAmountTypes"]
        )
        if "LineItems" in elem:
            raw_lines = elem["LineItems"]
            old_ids = {line["LineItemID"] for line in existing["LineItems"]} if existing else set()
        else:
            raw_lines = [
                {
                    "LineItemID": line["LineItemID"],
                    "Description": line["Description"],
                    "Quantity": line["Quantity"],
                    "UnitAmount": line["UnitAmount"],
                    "DiscountRate": line.get("DiscountRate"),
                    "DiscountAmount": line.get("DiscountAmount"),
                    "ItemCode": line.get("ItemCode"),
                    "AccountCode": line.get("AccountCode"),
                    "TaxType": line["TaxType"],
                    "Tracking": line.get("Tracking"),
                }
                for line in (existing["LineItems"] if existing else [])
            ]
            old_ids = {line["LineItemID"] for line in raw_lines}
        if recompute or existing is None:
            if not isinstance(raw_lines, list) or not raw_lines:
                errors.append("At least one line item must be specified.")
                raw_lines = []
            lines = [
                self._prepare_line(raw, kind, record["LineAmountTypes"], unitdp4, old_ids, errors) for raw in raw_lines
            ]
            record["LineItems"] = [line for line in lines if line is not None]
            self._totals(record)
        if errors:
            return None, errors
        return _InvoicePlan(existing["InvoiceID"] if existing else None, record, new_contact), []

    def _prepare_line(
        self, raw: Any, kind: str, amount_types: str, unitdp4: bool, old_ids: set[str], errors: list[str]
    ) -> Record | None:
        if not isinstance(raw, dict):
            errors.append("A line item must be a JSON object.")
            return None
        description = (_text(raw.get("Description")) or "").strip()
        if not description:
            errors.append("The description field is mandatory for each line item.")
        try:
            quantity = parse_decimal(raw.get("Quantity"))
            unit = parse_decimal(raw.get("UnitAmount"))
            given_amount = parse_decimal(raw.get("LineAmount"))
            discount = parse_decimal(raw.get("DiscountRate"))
            discount_amount = parse_decimal(raw.get("DiscountAmount"))
            given_tax = parse_decimal(raw.get("TaxAmount"))
        except ValueError as exc:
            errors.append(f"A line item amount is not a number: {exc}")
            return None
        if quantity is None and unit is None and given_amount is not None:
            quantity, unit = Decimal("1"), given_amount
        quantity = Decimal("1") if quantity is None else quantity.quantize(Decimal("0.0001"))
        unit = Decimal("0") if unit is None else unit
        unit = unit.quantize(Decimal("0.0001") if unitdp4 else Decimal("0.01"), rounding=ROUND_HALF_UP)
        if discount is not None and not Decimal(0) <= discount <= Decimal(100):
            errors.append("Discount rate must be between 0 and 100.")
        if discount_amount is not None:
            computed = round2(quantity * unit - discount_amount)
        else:
            computed = round2(quantity * unit * (1 - (discount or Decimal(0)) / 100))
        line_amount = computed
        if given_amount is not None:
            given_amount = round2(given_amount)
            if abs(given_amount - computed) > Decimal("0.01"):
                errors.append(
                    f"The line total {given_amount} does not match the expected line total "
                    f"{computed} (Quantity x UnitAmount less discount)."
                )
            line_amount = given_amount
        account_code = _text(raw.get("AccountCode"))
        account = ACCOUNTS.get(account_code) if account_code else None
        if account_code and (account is None or not account.usable_on_invoices):
            errors.append(f"Account code '{account_code}' is not a valid code for this document.")
        tax_type = _text(raw.get("TaxType")) or (account.tax_type if account else "BASEXCLUDED")
        rate = TAX_RATES.get(tax_type)
        if rate is None or rate.status != "ACTIVE" or not (rate.revenue if kind == "ACCREC" else rate.expenses):
            errors.append(
                f"The TaxType code '{tax_type}' does not exist or cannot be used for this type of transaction."
            )
            r = Decimal(0)
        else:
            r = rate.rate / 100
        if given_tax is not None:
            tax = round2(given_tax)
        elif amount_types == "NoTax":
            tax = Decimal("0.00")
        elif amount_types == "Inclusive":
            tax = round2(line_amount * r / (1 + r))
        else:
            tax = round2(line_amount * r)
        line_id = _text(raw.get("LineItemID"))
        if not line_id or line_id.lower() not in old_ids:
            line_id = str(uuid.uuid4())
        return {
            "LineItemID": line_id.lower(),
            "Description": description,
            "Quantity": quantity,
            "UnitAmount": unit,
            "ItemCode": _text(raw.get("ItemCode")),
            "AccountCode": account_code,
            "TaxType": tax_type,
            "TaxAmount": tax,
            "LineAmount": line_amount,
            "DiscountRate": discount,
            "DiscountAmount": discount_amount,
            "Tracking": copy.deepcopy(raw.get("Tracking")) or [],
        }

    @staticmethod
    def _totals(record: Record) -> None:
        lines = record["LineItems"]
        line_sum = sum((line["LineAmount"] for line in lines), Decimal("0.00"))
        tax_sum = sum((line["TaxAmount"] for line in lines), Decimal("0.00"))
        if record["LineAmountTypes"] == "Inclusive":
            record["Total"], record["TotalTax"] = line_sum, tax_sum
            record["SubTotal"] = line_sum - tax_sum
        else:
            record["SubTotal"], record["TotalTax"] = line_sum, tax_sum
            record["Total"] = line_sum + tax_sum
        record["IsDiscounted"] = any(
            (line.get("DiscountRate") or 0) > 0 or (line.get("DiscountAmount") or 0) > 0 for line in lines
        )

    def _claim_invoice(self, plan: _InvoicePlan, claims: _Claims) -> None:
        record = plan.record
        if record.get("InvoiceNumber"):
            claims.invoice_numbers.add((record["Type"], record["InvoiceNumber"].casefold()))
        if plan.new_contact is not None:
            claims.contact_names.add(plan.new_contact["Name"].casefold())

    def _commit_invoice(self, plan: _InvoicePlan) -> Record:
        record = plan.record
        if plan.new_contact is not None:
            # An earlier element of the same batch may have created this contact already.
            found = self._active_contact_by_name.get(plan.new_contact["Name"].casefold())
            if found is None:
                found = self._commit_contact(_ContactPlan(None, plan.new_contact))["ContactID"]
            record["ContactID"] = found
        if plan.existing_id is not None:
            old = self._invoices[plan.existing_id]
            if old.get("InvoiceNumber"):
                self._invoice_by_number.pop((old["Type"], old["InvoiceNumber"].casefold()), None)
            self._invoices_by_contact.get(old["ContactID"], set()).discard(plan.existing_id)
        else:
            record["InvoiceID"] = str(uuid.uuid4())
            if not record.get("InvoiceNumber") and record["Type"] == "ACCREC":
                record["InvoiceNumber"] = self._next_number()
        if record.get("InvoiceNumber"):
            self._invoice_by_number[(record["Type"], record["InvoiceNumber"].casefold())] = record["InvoiceID"]
        self._invoices_by_contact.setdefault(record["ContactID"], set()).add(record["InvoiceID"])
        contact = self._contacts.get(record["ContactID"])
        if contact is not None:
            # Xero derives these flags and, notably, does not bump the contact's UpdatedDateUTC.
            contact["IsCustomer" if record["Type"] == "ACCREC" else "IsSupplier"] = True
        self._touch(self._invoices, record, "InvoiceID")
        return record

    def _next_number(self) -> str:
        while True:
            candidate = f"INV-{self._next_invoice_number:04d}"
            self._next_invoice_number += 1
            if ("ACCREC", candidate.casefold()) not in self._invoice_by_number:
                return candidate

    def _invoice_error_echo(self, elem: Any, errors: list[str]) -> dict[str, Any]:
        echo: dict[str, Any] = {}
        if isinstance(elem, dict):
            for key, value in elem.items():
                if key in ("Date", "DueDate"):
                    try:
                        echo[key] = ms_date(parse_input_date(value))
                    except ValueError:
                        continue
                else:
                    echo[key] = _jsonable(value, _float)
        if not echo.get("InvoiceID"):
            echo["InvoiceID"] = ZERO_GUID
        echo["HasErrors"] = True
        echo["StatusAttributeString"] = "ERROR"
        echo["ValidationErrors"] = [{"Message": m} for m in errors]
        return echo

    def _write_invoices(self, request: _Request) -> _Response:
        path_invoice: Record | None = None
        if len(request.segments) == 2:
            path_invoice = self._find_invoice(request.segments[1])
            if path_invoice is None:
                return _not_found()
        items = self._json_body(request, "Invoices", "Invoice")
        if path_invoice is not None:
            items = items[:1]
        unitdp4 = (request.query.get("unitdp") or "").strip() == "4"
        summarize = request.flag("summarizeErrors") is not False
        if not summarize:
            results: list[dict[str, Any]] = []
            for elem in items:
                plan, errors = self._prepare_invoice(elem, request.method, path_invoice, unitdp4, None)
                if plan is None:
                    results.append(self._invoice_error_echo(elem, errors))
                    continue
                record = self._commit_invoice(plan)
                results.append(self._render_invoice(record, lines=True, num=_float) | {"StatusAttributeString": "OK"})
            return self._envelope("Invoices", results)
        claims = _Claims()
        plans: list[_InvoicePlan] = []
        failures: list[dict[str, Any]] = []
        for elem in items:
            plan, errors = self._prepare_invoice(elem, request.method, path_invoice, unitdp4, claims)
            if plan is None:
                failures.append(self._invoice_error_echo(elem, errors))
            else:
                self._claim_invoice(plan, claims)
                plans.append(plan)
        if failures:
            return _validation_error("A validation exception occurred", failures)
        committed = [self._commit_invoice(plan) for plan in plans]
        return self._envelope("Invoices", [self._render_invoice(i, lines=True, num=_float) for i in committed])

    # ------------------------------------------------------------------------------------ history

    def _history_owner(self, request: _Request) -> str | None:
        ref = request.segments[1]
        if request.segments[0].lower() == "invoices":
            inv = self._find_invoice(ref)
            return inv["InvoiceID"] if inv else None
        contact = self._find_contact(ref)
        return contact["ContactID"] if contact else None

    def _render_history(self, record: Record) -> dict[str, Any]:
        return {
            "Changes": record["Changes"],
            "DateUTCString": record["DateUTC"].strftime("%Y-%m-%dT%H:%M:%S"),
            "DateUTC": ms_datetime(record["DateUTC"]),
            "User": record["User"],
            "Details": record["Details"],
        }

    def _get_history(self, request: _Request) -> _Response:
        owner = self._history_owner(request)
        if owner is None:
            return _not_found()
        return self._envelope("HistoryRecords", [self._render_history(r) for r in self._history.get(owner, [])])

    def _put_history(self, request: _Request) -> _Response:
        owner = self._history_owner(request)
        if owner is None:
            return _not_found()
        items = self._json_body(request, "HistoryRecords", "HistoryRecord")
        failures: list[dict[str, Any]] = []
        for item in items:
            details = _text(item.get("Details")) if isinstance(item, dict) else None
            message = None
            if not details:
                message = "The Details field is required."
            elif len(details) > 250:
                message = "The Details field must be 250 characters or less."
            if message:
                failures.append({"Details": details, "ValidationErrors": [{"Message": message}]})
        if failures:
            return _validation_error("A validation exception occurred", failures)
        added = [
            {"Changes": "Note", "DateUTC": self._stamp(), "User": "System Generated", "Details": item["Details"]}
            for item in items
        ]
        self._history.setdefault(owner, []).extend(added)
        return self._envelope("HistoryRecords", [self._render_history(r) for r in added])


class _BadRequest(Exception):
    """Raised inside a handler to return an error response from deep in the call stack."""

    def __init__(self, response: _Response) -> None:
        super().__init__(response.status)
        self.response = response


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground until SIGTERM/SIGINT; prints the URL once listening."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.standins.xero", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--client-id", default="standin-client")
    parser.add_argument("--client-secret", default="standin-secret")
    parser.add_argument("--tenant-id", default=DEFAULT_TENANT_ID)
    parser.add_argument("--org-name", default="Demo Company (AU)")
    parser.add_argument("--minute-limit", type=int, default=None)
    parser.add_argument("--day-limit", type=int, default=None)
    parser.add_argument("--concurrent-limit", type=int, default=None)
    parser.add_argument("--window-seconds", type=float, default=60.0)
    parser.add_argument("--day-window-seconds", type=float, default=86_400.0)
    parser.add_argument("--idempotency-ttl-seconds", type=float, default=360.0)
    parser.add_argument("--access-token-ttl-seconds", type=int, default=1800)
    parser.add_argument("--refresh-grace-seconds", type=float, default=1800.0)
    parser.add_argument("--period-lock-date", default="2020-06-30", help="YYYY-MM-DD, or 'none' for no lock date")
    args = parser.parse_args(argv)
    lock = None if args.period_lock_date.lower() == "none" else dt.date.fromisoformat(args.period_lock_date)
    standin = XeroStandIn(
        args.host,
        args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        tenant_id=args.tenant_id,
        org_name=args.org_name,
        minute_limit=args.minute_limit,
        day_limit=args.day_limit,
        concurrent_limit=args.concurrent_limit,
        window_seconds=args.window_seconds,
        day_window_seconds=args.day_window_seconds,
        idempotency_ttl_seconds=args.idempotency_ttl_seconds,
        access_token_ttl_seconds=args.access_token_ttl_seconds,
        refresh_grace_seconds=args.refresh_grace_seconds,
        period_lock_date=lock,
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    standin.start()
    print(standin.url, flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        standin.stop()


if __name__ == "__main__":
    main()

"""A Cin7 Core ExternalApi v2 stand-in: a real HTTP server (standard library only) with Cin7's quirks.

What it imitates (see ``/work/shared/reference/cin7-core.md``):

* paths and query parameter names are case-insensitive; auth is the ``api-auth-accountid`` and
  ``api-auth-applicationkey`` headers, and bad credentials give **403**;
* ``saleList``/``customer``/``ref/*`` paging with ``Page`` (1-based) and ``Limit`` (default 100, clamped to
  1..1000), responses ``{Total, Page, <List>}``;
* ``saleList`` rows are ordered by ``Updated`` ascending, then ``SaleID``. ``UpdatedSince`` keeps rows with
  ``Updated >= UpdatedSince`` (real Cin7 does not document ``>`` vs ``>=``; ``>=`` is the one that forces a
  client to cope with re-delivered rows, which it must anyway). ``CreatedSince`` is accepted and ignored;
* an unknown sale id gives HTTP 404 with ``[{"ErrorCode":404,"Exception":"Sale not found"}]`` (wrapped in a
  list, as Cin7 sometimes does); a path under ``/ExternalApi/v2/sale/<anything>`` gives HTTP 200 with an
  HTML "Page not found" page;
* a rate limit of N calls per sliding window over all endpoints, answered with 429 (text body "You reached
  N calls per minute API limit") or 503, never with ``Retry-After``. Throttled calls do not use up the window;
* injectable faults: ``throttle_next``, ``outage_seconds`` (HTTP 500), ``error_in_200_next`` (HTTP 200 with an
  ``ErrorCode`` body).

Admin endpoints under ``/_standin/`` are not counted, limited or authenticated.

Amounts are held as ``Decimal`` and written as JSON numbers with the Decimal's own digits.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from pipeline.standins.generator import (
    TAX_RULES,
    Dataset,
    edit_invoice,
    generate,
    parse_timestamp,
    sale_list_row,
    void_invoice,
)

__all__ = ["DEFAULT_ACCOUNT_ID", "DEFAULT_APPLICATION_KEY", "Cin7StandIn", "dumps", "main"]

DEFAULT_ACCOUNT_ID = "3f2c6a4e-8d1b-4c57-9e0a-6b7d2f1c9a31"
DEFAULT_APPLICATION_KEY = "b8e41d27-5c9f-4a6e-8f13-2d7c0a9e5b64"

_API_PREFIX = "/externalapi/v2/"
_MAX_LIMIT = 1000
_DEFAULT_LIMIT = 100
_WEBHOOKS_PER_TYPE = 5
_AUTH_TYPES = ("noauth", "basicauth", "bearerauth")
_PAGE_NOT_FOUND_HTML = (
    b"<!DOCTYPE html><html><head><title>Page not found</title></head>"
    b"<body><h1>Page not found</h1><p>The page you requested was not found.</p></body></html>"
)

# Cin7's own chart. 999 exists in Cin7 (so a line can use it) but not in the Xero chart.
_ACCOUNTS: list[dict[str, Any]] = [
    {
        "Code": "090",
        "Name": "Business Bank Account",
        "Status": "ACTIVE",
        "Type": "BANK",
        "Class": "ASSET",
        "SystemAccount": None,
    },
    {
        "Code": "200",
        "Name": "Sales",
        "Status": "ACTIVE",
        "Type": "REVENUE",
        "Class": "REVENUE",
        "SystemAccount": None,
    },
    {
        "Code": "260",
        "Name": "Other Revenue",
        "Status": "ACTIVE",
        "Type": "REVENUE",
        "Class": "REVENUE",
        "SystemAccount": None,
    },
    {
        "Code": "270",
        "Name": "Interest Income",
        "Status": "ACTIVE",
        "Type": "REVENUE",
        "Class": "REVENUE",
        "SystemAccount": None,
    },
    {
        "Code": "400",
        "Name": "Advertising",
        "Status": "ACTIVE",
        "Type": "EXPENSE",
        "Class": "EXPENSE",
        "SystemAccount": None,
    },
    {
        "Code": "610",
        "Name": "Accounts Receivable",
        "Status": "ACTIVE",
        "Type": "CURRENT",
        "Class": "ASSET",
        "SystemAccount": "DEBTORS",
    },
    {
        "Code": "820",
        "Name": "GST",
        "Status": "ACTIVE",
        "Type": "CURRLIAB",
        "Class": "LIABILITY",
        "SystemAccount": "GST",
    },
    {
        "Code": "999",
        "Name": "Suspense Sales",
        "Status": "ACTIVE",
        "Type": "REVENUE",
        "Class": "REVENUE",
        "SystemAccount": None,
    },
]


# --------------------------------------------------------------------------------------------------
# JSON


def _number(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"cannot serialise {value} as JSON")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Decimal):
        out.append(_number(value))
    elif isinstance(value, int | float):
        out.append(json.dumps(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """JSON text with ``Decimal`` written as a JSON number using exactly its digits (``12.3456``, ``358``)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def _loads(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"), parse_float=Decimal) if body.strip() else None


# --------------------------------------------------------------------------------------------------
# State


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _json_response(status: int, payload: Any) -> _Response:
    return _Response(status, dumps(payload).encode("utf-8"))


def _error(status: int, message: str, *, wrap: bool = True, code: int | None = None) -> _Response:
    error = {"ErrorCode": code if code is not None else status, "Exception": message}
    return _json_response(status, [error] if wrap else error)


class _BadRequest(Exception):
    pass


@dataclass
class _SaleEntry:
    detail: dict[str, Any]
    row: dict[str, Any]
    updated: datetime
    encoded: bytes | None = None


def _endpoint_name(route: str) -> str:
    known = {
        "me": "me",
        "salelist": "saleList",
        "sale": "sale",
        "customer": "customer",
        "ref/tax": "ref/tax",
        "ref/account": "ref/account",
        "webhooks": "webhooks",
    }
    return known.get(route, "other")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    standin: Cin7StandIn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment; otherwise Nagle + delayed ACK add ~40 ms per keep-alive call.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server_version = "Cin7StandIn/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; the stand-in is used in tests and benchmarks."""

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        standin = cast(_Server, self.server).standin
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = standin.handle(method, self.path, headers, body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def do_GET(self) -> None:
        """Dispatch a GET."""
        self._handle("GET")

    def do_POST(self) -> None:
        """Dispatch a POST."""
        self._handle("POST")

    def do_PUT(self) -> None:
        """Dispatch a PUT."""
        self._handle("PUT")

    def do_DELETE(self) -> None:
        """Dispatch a DELETE."""
        self._handle("DELETE")


class Cin7StandIn:
    """An in-process Cin7 Core ExternalApi v2 server over real HTTP; thread-safe.

    Use as ``with Cin7StandIn(dataset=...) as cin7:`` or ``start()``/``stop()``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        application_key: str = DEFAULT_APPLICATION_KEY,
        dataset: Dataset | None = None,
        rate_limit_per_minute: int | None = None,
        window_seconds: float = 60.0,
        throttle_status: int = 429,
    ) -> None:
        self.host = host
        self.port = port
        self.account_id = account_id
        self.application_key = application_key
        self._initial = dataset
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.api_url = ""
        self._sales: dict[str, _SaleEntry] = {}
        self._sorted: list[tuple[datetime, str]] | None = None
        self._customers: dict[str, dict[str, Any]] = {}
        self._webhooks: list[dict[str, Any]] = []
        self._rate_limit = rate_limit_per_minute
        self._window = window_seconds
        self._throttle_status = throttle_status
        self._calls_in_window: deque[float] = deque()
        self._calls = 0
        self._throttled = 0
        self._by_endpoint: dict[str, int] = {}
        self._throttle_next = 0
        self._outage_until = 0.0
        self._error_in_200_next = 0
        self._load_dataset()

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Cin7StandIn:
        """Bind and serve in a daemon thread; sets ``url`` and ``api_url``."""
        server = _Server((self.host, self.port), _Handler)
        server.standin = self
        self._server = server
        self.port = int(server.server_address[1])
        self.url = f"http://{self.host}:{self.port}"
        self.api_url = f"{self.url}/ExternalApi/v2"
        # a short poll interval keeps stop() (and so every test fixture) fast
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="cin7-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Cin7StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- data ------------------------------------------------------------------------------------

    def _load_dataset(self) -> None:
        with self._lock:
            self._sales.clear()
            self._customers.clear()
            self._sorted = None
            if self._initial is not None:
                for sale in self._initial.sales:
                    self._put_sale_locked(copy.deepcopy(sale))
                for customer in self._initial.customers:
                    self._customers[str(customer["ID"]).lower()] = copy.deepcopy(customer)

    def _put_sale_locked(self, sale: dict[str, Any]) -> None:
        row = sale_list_row(sale)
        updated = parse_timestamp(str(row["Updated"]))
        self._sales[str(sale["ID"]).lower()] = _SaleEntry(sale, row, updated)
        self._sorted = None

    def put_sale(self, sale: dict[str, Any]) -> None:
        """Add or replace a sale detail; its list row's ``Updated`` becomes the sale's ``LastModifiedOn``."""
        detail = copy.deepcopy(sale)
        with self._lock:
            self._put_sale_locked(detail)

    def put_customer(self, customer: dict[str, Any]) -> None:
        """Add or replace a customer (by ``ID``)."""
        with self._lock:
            self._customers[str(customer["ID"]).lower()] = copy.deepcopy(customer)

    def sale(self, sale_id: str) -> dict[str, Any]:
        """A copy of the current sale detail; ``KeyError`` if unknown."""
        with self._lock:
            return copy.deepcopy(self._sales[sale_id.lower()].detail)

    def webhooks(self) -> list[dict[str, Any]]:
        """A copy of the registered webhooks."""
        with self._lock:
            return copy.deepcopy(self._webhooks)

    # ---- stats and faults ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """``{"calls": n, "by_endpoint": {...}, "throttled": n}`` for API calls (admin calls not counted)."""
        with self._lock:
            return {
                "calls": self._calls,
                "by_endpoint": dict(self._by_endpoint),
                "throttled": self._throttled,
            }

    def set_faults(self, **faults: Any) -> None:
        """Inject faults.

        ``throttle_next`` (next N calls get the throttle status), ``outage_seconds`` (HTTP 500 for that long),
        ``error_in_200_next`` (next N calls get HTTP 200 with an ``ErrorCode`` body). Also accepted:
        ``throttle_status``, ``rate_limit_per_minute`` (None disables) and ``window_seconds``.
        """
        with self._lock:
            for name, value in faults.items():
                match name:
                    case "throttle_next":
                        self._throttle_next = int(value)
                    case "outage_seconds":
                        self._outage_until = time.monotonic() + float(value)
                    case "error_in_200_next":
                        self._error_in_200_next = int(value)
                    case "throttle_status":
                        self._throttle_status = int(value)
                    case "rate_limit_per_minute":
                        self._rate_limit = None if value is None else int(value)
                        self._calls_in_window.clear()
                    case "window_seconds":
                        self._window = float(value)
                    case _:
                        raise ValueError(f"unknown fault {name!r}")

    def reset(self, *, restore_data: bool = False) -> None:
        """Clear stats, faults, the rate-limit window and webhooks; optionally reload the initial dataset."""
        with self._lock:
            self._calls = 0
            self._throttled = 0
            self._by_endpoint.clear()
            self._throttle_next = 0
            self._outage_until = 0.0
            self._error_in_200_next = 0
            self._calls_in_window.clear()
            self._webhooks.clear()
        if restore_data:
            self._load_dataset()

    # ---- request handling ------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Response:
        """Answer one HTTP request (``headers`` keyed in lower case). Used by the HTTP handler."""
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            query[key.lower()] = value
        lowered = path.lower()
        try:
            if lowered.startswith("/_standin/"):
                return self._admin(method, path, body)
            if lowered.startswith(_API_PREFIX):
                return self._api(method, lowered[len(_API_PREFIX) :].strip("/"), query, headers, body)
            return _error(404, "Not found")
        except _BadRequest as exc:
            return _error(400, str(exc))

    def _gate(self, endpoint: str, headers: dict[str, str]) -> _Response | None:
        # Auth first (a real gateway rejects bad keys before counting them), then faults, then the limit.
        with self._lock:
            self._calls += 1
            self._by_endpoint[endpoint] = self._by_endpoint.get(endpoint, 0) + 1
            account = headers.get("api-auth-accountid", "").strip().lower()
            key = headers.get("api-auth-applicationkey", "").strip().lower()
            if account != self.account_id.lower() or key != self.application_key.lower():
                return _error(403, "Incorrect credentials!", wrap=False)
            if self._throttle_next > 0:
                self._throttle_next -= 1
                self._throttled += 1
                return self._throttle_response()
            if time.monotonic() < self._outage_until:
                return _error(500, "An unexpected error has occurred. Please try again later.", wrap=False)
            if self._rate_limit is not None:
                now = time.monotonic()
                while self._calls_in_window and self._calls_in_window[0] <= now - self._window:
                    self._calls_in_window.popleft()
                if len(self._calls_in_window) >= self._rate_limit:
                    self._throttled += 1
                    return self._throttle_response()
                self._calls_in_window.append(now)
            if self._error_in_200_next > 0:
                self._error_in_200_next -= 1
                message = "Object reference not set to an instance of an object."
                return _json_response(200, {"ErrorCode": 500, "Exception": message})
        return None

    def _throttle_response(self) -> _Response:
        if self._throttle_status == 429:
            limit = self._rate_limit or 60
            text = f"You reached {limit} calls per minute API limit"
            return _Response(429, text.encode(), "text/plain; charset=utf-8")
        return _Response(
            self._throttle_status,
            b"<html><body><h1>503 Service Unavailable</h1>No server is available to handle this request.</body></html>",
            "text/html; charset=utf-8",
        )

    def _api(self, method: str, route: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> _Response:
        endpoint = _endpoint_name(route)
        gated = self._gate(endpoint, headers)
        if gated is not None:
            return gated
        if route.startswith("sale/"):
            return _Response(200, _PAGE_NOT_FOUND_HTML, "text/html; charset=utf-8")
        handlers = {
            ("GET", "me"): self._me,
            ("GET", "salelist"): self._sale_list,
            ("GET", "sale"): self._sale_detail,
            ("GET", "customer"): self._customer_list,
            ("GET", "ref/tax"): self._tax_rules,
            ("GET", "ref/account"): self._accounts,
            ("GET", "webhooks"): self._webhooks_get,
            ("POST", "webhooks"): self._webhooks_post,
            ("PUT", "webhooks"): self._webhooks_put,
            ("DELETE", "webhooks"): self._webhooks_delete,
        }
        handler = handlers.get((method, route))
        if handler is not None:
            return handler(query, body)
        if endpoint != "other":
            return _error(405, f"The requested resource does not support http method '{method}'.")
        return _error(404, "Not found")

    # ---- API endpoints ---------------------------------------------------------------------------

    def _me(self, query: dict[str, str], body: bytes) -> _Response:
        return _json_response(
            200,
            {
                "Company": "Stand-in Trading Pty Ltd",
                "Currency": "AUD",
                "TimeZone": "AUS Eastern Standard Time",
                "DefaultWeightUnits": "g",
                "DefaultDimensionsUnits": "cm",
                "LockDate": None,
            },
        )

    @staticmethod
    def _paging(query: dict[str, str]) -> tuple[int, int]:
        try:
            page = int(query.get("page") or 1)
            limit = int(query.get("limit") or _DEFAULT_LIMIT)
        except ValueError as exc:
            raise _BadRequest("Page and Limit must be integers") from exc
        return max(1, page), min(_MAX_LIMIT, max(1, limit))

    @staticmethod
    def _since(query: dict[str, str], name: str) -> datetime | None:
        value = query.get(name.lower())
        if not value:
            return None
        try:
            # a "+" in the offset arrives as a space after form decoding
            return parse_timestamp(value.replace(" ", "+") if re.search(r"T.* \d\d:?\d\d$", value) else value)
        except ValueError as exc:
            raise _BadRequest(f"{name} is not a valid date: {value!r}") from exc

    def _sale_list(self, query: dict[str, str], body: bytes) -> _Response:
        page, limit = self._paging(query)
        since = self._since(query, "UpdatedSince")
        self._since(query, "CreatedSince")  # validated, not filtered: the stand-in keeps no created time
        filters = {
            key: query[key.lower()].strip().lower()
            for key in ("Status", "OrderStatus", "CombinedInvoiceStatus", "ExternalID")
            if query.get(key.lower())
        }
        search = (query.get("search") or "").strip().lower()
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted((e.updated, sid) for sid, e in self._sales.items())
            ordered = self._sorted
            start = bisect.bisect_left(ordered, (since, "")) if since is not None else 0
            rows: Iterable[dict[str, Any]] = (self._sales[sid].row for _, sid in ordered[start:])
            if filters:
                rows = (r for r in rows if all(str(r.get(k) or "").lower() == v for k, v in filters.items()))
            if search:
                rows = (
                    r
                    for r in rows
                    if any(
                        search in str(r.get(k) or "").lower()
                        for k in ("OrderNumber", "InvoiceNumber", "Customer", "CustomerReference")
                    )
                )
            matched = list(rows)
        chunk = matched[(page - 1) * limit : page * limit]
        return _json_response(200, {"Total": len(matched), "Page": page, "SaleList": chunk})

    def _sale_detail(self, query: dict[str, str], body: bytes) -> _Response:
        sale_id = (query.get("id") or query.get("saleid") or "").strip().lower()
        if not sale_id:
            return _error(400, "ID is required")
        with self._lock:
            entry = self._sales.get(sale_id)
            if entry is None:
                return _error(404, "Sale not found")
            if entry.encoded is None:
                entry.encoded = dumps(entry.detail).encode("utf-8")
            return _Response(200, entry.encoded)

    def _customer_list(self, query: dict[str, str], body: bytes) -> _Response:
        page, limit = self._paging(query)
        since = self._since(query, "ModifiedSince")
        wanted_id = (query.get("id") or "").strip().lower()
        name = (query.get("name") or "").strip().lower()
        include_deprecated = (query.get("includedeprecated") or "").strip().lower() == "true"
        with self._lock:
            customers = list(self._customers.values())
        if wanted_id:
            customers = [c for c in customers if str(c["ID"]).lower() == wanted_id]
        if name:
            customers = [c for c in customers if name in str(c.get("Name") or "").lower()]
        if since is not None:
            customers = [c for c in customers if parse_timestamp(str(c["LastModifiedOn"])) >= since]
        if not include_deprecated:
            customers = [c for c in customers if str(c.get("Status") or "").lower() != "deprecated"]
        customers.sort(key=lambda c: (str(c.get("Name") or "").strip().lower(), str(c["ID"])))
        chunk = customers[(page - 1) * limit : page * limit]
        return _json_response(200, {"Total": len(customers), "Page": page, "CustomerList": chunk})

    def _tax_rules(self, query: dict[str, str], body: bytes) -> _Response:
        page, limit = self._paging(query)
        rules = []
        for rule_name, rate in TAX_RULES.items():
            percent = rate * 100
            rules.append(
                {
                    "ID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"cin7-standin/tax/{rule_name}")),
                    "Name": rule_name,
                    "Account": "820",
                    "IsActive": True,
                    "TaxInclusive": False,
                    "TaxPercent": percent,
                    "IsTaxForSale": True,
                    "IsTaxForPurchase": False,
                    "Components": [{"Name": rule_name, "Percent": percent, "AccountCode": "820", "Compound": False}],
                }
            )
        for flag in ("IsActive", "IsTaxForSale"):
            value = query.get(flag.lower())
            if value:
                rules = [r for r in rules if str(r[flag]).lower() == value.strip().lower()]
        chunk = rules[(page - 1) * limit : page * limit]
        return _json_response(200, {"Total": len(rules), "Page": page, "TaxRuleList": chunk})

    def _accounts(self, query: dict[str, str], body: bytes) -> _Response:
        page, limit = self._paging(query)
        chunk = _ACCOUNTS[(page - 1) * limit : page * limit]
        return _json_response(200, {"Total": len(_ACCOUNTS), "Page": page, "AccountsList": chunk})

    # ---- webhooks --------------------------------------------------------------------------------

    def _webhooks_get(self, query: dict[str, str], body: bytes) -> _Response:
        with self._lock:
            return _json_response(200, {"Webhooks": self._webhooks})

    @staticmethod
    def _webhook_body(body: bytes) -> dict[str, Any]:
        try:
            payload = _loads(body)
        except ValueError as exc:
            raise _BadRequest("Request body is not valid JSON") from exc
        if isinstance(payload, dict) and isinstance(payload.get("Webhooks"), list) and payload["Webhooks"]:
            payload = payload["Webhooks"][0]
        if not isinstance(payload, dict):
            raise _BadRequest("Request body must be a webhook object")
        return payload

    @staticmethod
    def _validate_webhook(hook: dict[str, Any]) -> None:
        if not str(hook.get("Type") or "").strip():
            raise _BadRequest("Type is required")
        if not str(hook.get("ExternalURL") or "").strip():
            raise _BadRequest("ExternalURL is required")
        auth = str(hook.get("ExternalAuthorizationType") or "noauth").lower()
        if auth not in _AUTH_TYPES:
            raise _BadRequest(f"ExternalAuthorizationType must be one of {', '.join(_AUTH_TYPES)}")
        headers = hook.get("ExternalHeaders") or []
        if not isinstance(headers, list) or not all(isinstance(h, dict) and "Key" in h for h in headers):
            raise _BadRequest("ExternalHeaders must be a list of {Key, Value}")

    @staticmethod
    def _normalise_webhook(hook: dict[str, Any], hook_id: str) -> dict[str, Any]:
        return {
            "ID": hook_id,
            "Type": str(hook["Type"]).strip(),
            "Name": hook.get("Name") or "",
            "IsActive": bool(hook.get("IsActive", True)),
            "ExternalURL": str(hook["ExternalURL"]).strip(),
            "ExternalAuthorizationType": str(hook.get("ExternalAuthorizationType") or "noauth").lower(),
            "ExternalUserName": hook.get("ExternalUserName"),
            "ExternalPassword": hook.get("ExternalPassword"),
            "ExternalBearerToken": hook.get("ExternalBearerToken"),
            "ExternalHeaders": list(hook.get("ExternalHeaders") or []),
        }

    def _webhooks_post(self, query: dict[str, str], body: bytes) -> _Response:
        hook = self._webhook_body(body)
        self._validate_webhook(hook)
        with self._lock:
            same_type = [w for w in self._webhooks if w["Type"].lower() == str(hook["Type"]).strip().lower()]
            if len(same_type) >= _WEBHOOKS_PER_TYPE:
                return _error(400, f"A maximum of {_WEBHOOKS_PER_TYPE} webhooks per type is allowed.")
            created = self._normalise_webhook(hook, str(uuid.uuid4()))
            self._webhooks.append(created)
            return _json_response(200, {"Webhooks": [created]})

    def _webhooks_put(self, query: dict[str, str], body: bytes) -> _Response:
        hook = self._webhook_body(body)
        hook_id = str(hook.get("ID") or query.get("id") or "").strip().lower()
        if not hook_id:
            return _error(400, "ID is required")
        with self._lock:
            for i, existing in enumerate(self._webhooks):
                if existing["ID"].lower() == hook_id:
                    merged = {**existing, **hook}
                    self._validate_webhook(merged)
                    if merged["Type"].strip().lower() != existing["Type"].lower():
                        same_type = [w for w in self._webhooks if w["Type"].lower() == merged["Type"].lower()]
                        if len(same_type) >= _WEBHOOKS_PER_TYPE:
                            limit = _WEBHOOKS_PER_TYPE
                            return _error(400, f"A maximum of {limit} webhooks per type is allowed.")
                    updated = self._normalise_webhook(merged, existing["ID"])
                    self._webhooks[i] = updated
                    return _json_response(200, {"Webhooks": [updated]})
        return _error(404, "Webhook not found")

    def _webhooks_delete(self, query: dict[str, str], body: bytes) -> _Response:
        hook_id = (query.get("id") or "").strip().lower()
        if not hook_id:
            return _error(400, "ID is required")
        with self._lock:
            remaining = [w for w in self._webhooks if w["ID"].lower() != hook_id]
            if len(remaining) == len(self._webhooks):
                return _error(404, "Webhook not found")
            self._webhooks = remaining
            return _json_response(200, {"Webhooks": remaining})

    # ---- admin -----------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: bytes) -> _Response:
        route = path[len("/_standin/") :].strip("/")
        try:
            payload = _loads(body)
        except ValueError:
            return _error(400, "Request body is not valid JSON", wrap=False)
        if (method, route.lower()) == ("GET", "stats"):
            return _json_response(200, self.stats())
        if (method, route.lower()) == ("POST", "reset"):
            restore = bool(isinstance(payload, dict) and payload.get("restore_data"))
            self.reset(restore_data=restore)
            return _json_response(200, {"ok": True})
        if (method, route.lower()) == ("POST", "faults"):
            try:
                self.set_faults(**(payload or {}))
            except (TypeError, ValueError) as exc:
                return _error(400, str(exc), wrap=False)
            return _json_response(200, {"ok": True})
        if (method, route.lower()) == ("PUT", "sales"):
            if not isinstance(payload, dict) or "ID" not in payload:
                return _error(400, "body must be a sale detail with an ID", wrap=False)
            self.put_sale(payload)
            return _json_response(200, {"ok": True})
        if (method, route.lower()) == ("PUT", "customers"):
            if not isinstance(payload, dict) or "ID" not in payload:
                return _error(400, "body must be a customer with an ID", wrap=False)
            self.put_customer(payload)
            return _json_response(200, {"ok": True})
        match = re.fullmatch(r"sales/([^/]+)/invoices/([^/]+)/(edit|void)", route, flags=re.IGNORECASE)
        if method == "POST" and match:
            options = payload if isinstance(payload, dict) else {}
            try:
                now = parse_timestamp(str(options["now"])) if options.get("now") else datetime.now(UTC)
                with self._lock:
                    entry = self._sales.get(match.group(1).lower())
                    if entry is None:
                        return _error(404, "Sale not found", wrap=False)
                    if match.group(3).lower() == "edit":
                        delta = int(options.get("quantity_delta", 1))
                        changed = edit_invoice(entry.detail, match.group(2), now=now, quantity_delta=delta)
                    else:
                        changed = void_invoice(entry.detail, match.group(2), now=now)
                    self._put_sale_locked(changed)
            except KeyError as exc:
                return _error(404, str(exc), wrap=False)
            except ValueError as exc:
                return _error(400, str(exc), wrap=False)
            return _json_response(200, changed)
        return _error(404, "Not found", wrap=False)


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground: ``python -m pipeline.standins.cin7 --sales 500``."""
    parser = argparse.ArgumentParser(description="Cin7 Core ExternalApi v2 stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sales", type=int, default=200)
    parser.add_argument("--no-hostile", action="store_true", help="omit the deliberately failing invoices")
    parser.add_argument("--rate-limit-per-minute", type=int, default=None)
    parser.add_argument("--window-seconds", type=float, default=60.0)
    parser.add_argument("--throttle-status", type=int, default=429, choices=(429, 503))
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID)
    parser.add_argument("--application-key", default=DEFAULT_APPLICATION_KEY)
    args = parser.parse_args(argv)
    dataset = generate(args.seed, args.sales, now=datetime.now(UTC), hostile=not args.no_hostile)
    standin = Cin7StandIn(
        args.host,
        args.port,
        account_id=args.account_id,
        application_key=args.application_key,
        dataset=dataset,
        rate_limit_per_minute=args.rate_limit_per_minute,
        window_seconds=args.window_seconds,
        throttle_status=args.throttle_status,
    ).start()
    print(f"Cin7 Core stand-in on {standin.url} (API {standin.api_url}); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()


if __name__ == "__main__":
    main()

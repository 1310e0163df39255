"""The Xero stand-in's HTTP server: the request handler, request parsing, routing and the API gate.

``XeroStandIn`` puts the endpoint mixins together and serves them from a daemon thread. Every API call
passes one gate (outages, bearer token, tenant, rate limits, injected errors, latency, idempotency
replays) before its endpoint runs under the store's lock.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from urllib.parse import parse_qsl, unquote, urlsplit

from pipeline.standins.serving import QuietHandler, StandInServer
from pipeline.standins.xero.admin import AdminMixin
from pipeline.standins.xero.history import HistoryMixin
from pipeline.standins.xero.limits import LimitsMixin
from pipeline.standins.xero.oauth import OAuthMixin
from pipeline.standins.xero.organisation import OrganisationMixin
from pipeline.standins.xero.responses import (
    BadRequest,
    Headers,
    Request,
    Response,
    json_response,
    not_found,
    text_response,
)
from pipeline.standins.xero.state import API_PREFIX

MAX_BODY_BYTES = int(3.5 * 1024 * 1024)


class _Server(StandInServer["XeroStandIn"]):
    request_queue_size = 256


class _Handler(QuietHandler):
    server: _Server

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


class XeroStandIn(HistoryMixin, AdminMixin, OrganisationMixin, OAuthMixin, LimitsMixin):
    """A fake Xero (Accounting API + OAuth 2.0) served over real HTTP from a daemon thread.

    Its settings are ``XeroOptions``, given as ``options=`` or field by field as keyword arguments; limits of
    ``None`` mean unlimited, and Xero keeps a rotated refresh token working for 30 minutes. Seed contacts may
    carry ``ContactStatus: "ARCHIVED"`` and a ``ContactID``; seed invoices (``seed_invoices``, ``PUT /Invoices``
    JSON) are added after them as if typed in Xero (``seeding.py``). Seed tracking categories (``seed_tracking``,
    e.g. ``{"Sales Rep": ["Alice"]}``; ``tracking.py``) come before the invoices, which may name them.
    The constructor and the store are ``XeroState``'s; each mixin serves one part of the API.
    """

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

    def _handle_http(
        self, method: str, raw_path: str, headers: Headers, body: bytes, too_large: bool
    ) -> tuple[Response, bool]:
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
        return not_found(), False

    def _release_slot(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _route(self, method: str, segments: list[str]) -> tuple[str, Callable[[Request], Response] | None]:
        if not segments:
            return f"{method} /", None
        resource = segments[0].lower()
        n = len(segments)
        table: dict[tuple[str, str, int], tuple[str, Callable[[Request], Response]]] = {
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
            ("GET", "creditnotes", 1): ("/CreditNotes", self._list_credit_notes),
            ("GET", "creditnotes", 2): ("/CreditNotes/{id}", self._get_credit_note),
            ("PUT", "creditnotes", 1): ("/CreditNotes", self._write_credit_notes),
            ("POST", "creditnotes", 1): ("/CreditNotes", self._write_credit_notes),
            ("POST", "creditnotes", 2): ("/CreditNotes/{id}", self._write_credit_notes),
            ("PUT", "creditnotes", 3): ("/CreditNotes/{id}/Allocations", self._write_allocations),
            ("DELETE", "creditnotes", 4): ("/CreditNotes/{id}/Allocations/{id}", self._delete_allocation),
            ("GET", "payments", 1): ("/Payments", self._list_payments),
            ("GET", "payments", 2): ("/Payments/{id}", self._get_payment),
            ("PUT", "payments", 1): ("/Payments", self._write_payments),
            ("POST", "payments", 2): ("/Payments/{id}", self._delete_payment),
            ("GET", "trackingcategories", 1): ("/TrackingCategories", self._list_tracking_categories),
            ("GET", "trackingcategories", 2): ("/TrackingCategories/{id}", self._get_tracking_category),
            ("PUT", "trackingcategories", 3): ("/TrackingCategories/{id}/Options", self._put_tracking_options),
        }
        if n == 3 and segments[2].lower() == "history" and resource in ("invoices", "contacts"):
            name = "/Invoices/{id}/History" if resource == "invoices" else "/Contacts/{id}/History"
            if method == "GET":
                return f"GET {name}", self._get_history
            if method in ("PUT", "POST"):
                return f"{method} {name}", self._put_history
        entry = table.get((method, resource, n))
        if n >= 3 and resource == "creditnotes" and segments[2].lower() != "allocations":
            entry = None
        if n == 3 and resource == "trackingcategories" and segments[2].lower() != "options":
            entry = None
        if entry is None:
            return f"{method} /{segments[0]}", None
        return f"{method} {entry[0]}", entry[1]

    def _api(
        self, method: str, subpath: str, query: str, headers: Headers, body: bytes, too_large: bool
    ) -> tuple[Response, bool]:
        segments = [unquote(s) for s in subpath.split("/") if s]
        endpoint, handler = self._route(method, segments)
        now = time.monotonic()
        with self._lock:
            self._calls += 1
            self._by_endpoint[endpoint] += 1
            refusal = self._refusal(headers, now)
            if refusal is not None:
                return refusal, False
            self._in_flight += 1
            failure = self._slot_failure(now)
            if failure is not None:
                return failure, True
            latency = self._faults.latency_seconds
        if too_large:
            return text_response(413, "The request was too large"), True
        if latency > 0:
            time.sleep(latency)
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key.lower()] = value
        request = Request(method, segments, params, headers, body, f"{subpath}?{query}")
        with self._lock:
            return self._dispatch(request, handler), True

    def _refusal(self, headers: Headers, now: float) -> Response | None:
        """The answer to a call turned away before it takes a concurrency slot (caller holds the lock)."""
        if self._faults.outage_until > now:
            # No Retry-After: Xero's 503s are not documented to carry one (and urllib3 would then
            # silently retry GET/PUT on the client's behalf).
            return text_response(503, "The service is currently unavailable")
        if self._faults.offline_until > now:
            return text_response(503, "The Organisation is offline")
        problem = self._bearer_problem(headers)
        if problem is not None:
            return problem
        tenant = (headers.get("xero-tenant-id") or "").strip().lower()
        if (tenant and tenant != self.tenant_id.lower()) or not self._connected:
            return json_response(
                403,
                {
                    "Type": None,
                    "Title": "Forbidden",
                    "Status": 403,
                    "Detail": "AuthenticationUnsuccessful",
                    "Instance": str(uuid.uuid4()),
                    "Extensions": {},
                },
            )
        return None

    def _slot_failure(self, now: float) -> Response | None:
        """A rate limit or an injected 500 for a call that holds its concurrency slot (caller holds the lock)."""
        limited = self._rate_check(now)
        if limited is not None:
            return limited
        if self._faults.server_error_next > 0:
            self._faults.server_error_next -= 1
            return json_response(
                500,
                {
                    "ErrorNumber": 500,
                    "Type": "UnknownErrorException",
                    "Message": "An error occurred in Xero. Check the API Status "
                    "page http://status.developer.xero.com for current "
                    "service status.",
                },
                self._rate_headers(),
            )
        return None

    def _dispatch(self, request: Request, handler: Callable[[Request], Response] | None) -> Response:
        """Run the endpoint or replay its stored answer, with the rate headers added (caller holds the lock)."""
        method = request.method
        idem_key = request.headers.get("Idempotency-Key") if method in ("PUT", "POST", "PATCH") else None
        if idem_key is not None:
            replay = self._idempotency_lookup(idem_key, request)
            if replay is not None:
                return replay
        if handler is None:
            response = not_found()
        else:
            try:
                response = handler(request)
            except BadRequest as exc:
                response = exc.response
        response.headers.extend(self._rate_headers())
        if idem_key is not None and response.status < 500:
            self._idempotency_store(idem_key, request, response)
        if method in ("PUT", "POST") and handler is not None and self._faults.drop_response_after_commit_next > 0:
            self._faults.drop_response_after_commit_next -= 1
            self._dropped += 1
            return Response(0, [], b"", drop=True)
        return response

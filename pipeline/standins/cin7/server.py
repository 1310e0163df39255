"""The Cin7 stand-in's HTTP server: the request handler, routing and the API gate (auth, faults, rate limit).

``Cin7StandIn`` puts the endpoint mixins together and serves them from a daemon thread.
"""

from __future__ import annotations

import threading
import time
from typing import cast
from urllib.parse import parse_qsl, unquote, urlsplit

from pipeline.standins.cin7.admin import AdminMixin
from pipeline.standins.cin7.customers import CustomersMixin
from pipeline.standins.cin7.purchases import PurchasesMixin
from pipeline.standins.cin7.reference import ReferenceMixin
from pipeline.standins.cin7.responses import BadRequest, Response, error_response, json_response
from pipeline.standins.cin7.sales import SalesMixin
from pipeline.standins.cin7.webhooks import WebhooksMixin
from pipeline.standins.serving import QuietHandler, StandInServer

_API_PREFIX = "/externalapi/v2/"
_PAGE_NOT_FOUND_HTML = (
    b"<!DOCTYPE html><html><head><title>Page not found</title></head>"
    b"<body><h1>Page not found</h1><p>The page you requested was not found.</p></body></html>"
)


def _endpoint_name(route: str) -> str:
    known = {
        "me": "me",
        "salelist": "saleList",
        "sale": "sale",
        "customer": "customer",
        "supplier": "supplier",
        "purchaselist": "purchaseList",
        "advanced-purchase": "advanced-purchase",
        "ref/tax": "ref/tax",
        "ref/account": "ref/account",
        "webhooks": "webhooks",
    }
    return known.get(route, "other")


class _Server(StandInServer["Cin7StandIn"]):
    request_queue_size = 128


class _Handler(QuietHandler):
    # Headers and body leave in one segment; otherwise Nagle + delayed ACK add ~40 ms per keep-alive call.
    wbufsize = 64 * 1024
    server_version = "Cin7StandIn/1.0"

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


class Cin7StandIn(SalesMixin, PurchasesMixin, CustomersMixin, ReferenceMixin, WebhooksMixin, AdminMixin):
    """An in-process Cin7 Core ExternalApi v2 server over real HTTP; thread-safe.

    Use as ``with Cin7StandIn(dataset=...) as cin7:`` or ``start()``/``stop()``.
    The constructor and the store are ``Cin7State``'s; each mixin serves one part of the API.
    """

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

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Response:
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
            return error_response(404, "Not found")
        except BadRequest as exc:
            return error_response(400, str(exc))

    def _gate(self, endpoint: str, headers: dict[str, str]) -> Response | None:
        # Auth first (a real gateway rejects bad keys before counting them), then faults, then the limit.
        with self._lock:
            self._calls += 1
            self._by_endpoint[endpoint] = self._by_endpoint.get(endpoint, 0) + 1
            account = headers.get("api-auth-accountid", "").strip().lower()
            key = headers.get("api-auth-applicationkey", "").strip().lower()
            if account != self.account_id.lower() or key != self.application_key.lower():
                return error_response(403, "Incorrect credentials!", wrap=False)
            if self._throttle_next > 0:
                self._throttle_next -= 1
                self._throttled += 1
                return self._throttle_response()
            if time.monotonic() < self._outage_until or (endpoint == "sale" and self._take_sale_error()):
                return error_response(500, "An unexpected error has occurred. Please try again later.", wrap=False)
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
                return json_response(200, {"ErrorCode": 500, "Exception": message})
        return None

    def _take_sale_error(self) -> bool:
        if self._sale_errors_next <= 0:
            return False
        self._sale_errors_next -= 1
        return True

    def _throttle_response(self) -> Response:
        if self._throttle_status == 429:
            limit = self._rate_limit or 60
            text = f"You reached {limit} calls per minute API limit"
            return Response(429, text.encode(), "text/plain; charset=utf-8")
        return Response(
            self._throttle_status,
            b"<html><body><h1>503 Service Unavailable</h1>No server is available to handle this request.</body></html>",
            "text/html; charset=utf-8",
        )

    def _api(self, method: str, route: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Response:
        endpoint = _endpoint_name(route)
        gated = self._gate(endpoint, headers)
        if gated is not None:
            return gated
        if route.startswith("sale/"):
            return Response(200, _PAGE_NOT_FOUND_HTML, "text/html; charset=utf-8")
        handlers = {
            ("GET", "me"): self._me,
            ("GET", "salelist"): self._sale_list,
            ("GET", "sale"): self._sale_detail,
            ("GET", "customer"): self._customer_list,
            ("GET", "supplier"): self._supplier_list,
            ("GET", "purchaselist"): self._purchase_list,
            ("GET", "advanced-purchase"): self._purchase_detail,
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
            return error_response(405, f"The requested resource does not support http method '{method}'.")
        return error_response(404, "Not found")

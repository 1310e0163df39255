"""The webhook receiver over HTTP: `POST /webhooks/cin7`, and `GET /healthz`, `/readyz` and `/metrics`.

Cin7 signs nothing; it sends the credential configured on the subscription (bearer token or basic
auth). The receiver checks it in constant time, records the thin payload in the ledger's inbox
(`WebhookEvent`, unique per tenant and dedupe key), commits, enqueues one task and answers 200.
Webhooks are never trusted for data: the task only learns *which* sale or customer changed and
re-reads it through the API, so the polling path and the webhook path produce the same ledger rows
and the content hashes in `fetch_sale` keep either from writing twice.

If the broker is down the event stays `received` and `resend_unsent_events` (called by the sweep)
sends it later. If the ledger is down the receiver answers 503, so that Cin7 delivers again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.exc import DataError, SQLAlchemyError

from pipeline import app
from pipeline.context import tenant_context
from pipeline.operations.health import readiness
from pipeline.operations.metrics import pipeline_registry
from pipeline.settings import get_settings
from pipeline.source.cin7core.webhooks import auth_configured
from pipeline.webhooks.auth import is_authorised
from pipeline.webhooks.events import EventState, parse_event
from pipeline.webhooks.inbox import Receipt, mark_enqueued, publish_event, record_event

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/cin7"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
# The classic text format, which every Prometheus reads (our metric names are plain ASCII).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Reject(Exception):
    """An HTTP error answer decided while reading a request."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class WebhookReceiver:
    """The receiver's logic, independent of HTTP: accept one authenticated, decoded delivery."""

    def __init__(self, broker_backoff_seconds: float = 2.0) -> None:
        self._broker_backoff = broker_backoff_seconds
        self._broker_down_until = 0.0
        self._lock = threading.Lock()

    def accept(self, payload: Any) -> Receipt:
        """Record, then enqueue; a broker failure leaves the event `received` for the sweep."""
        ctx = tenant_context()
        parsed = parse_event(payload)
        receipt = record_event(ctx, parsed, payload)
        sendable = receipt.event_id is not None and receipt.state == EventState.RECEIVED
        if sendable and receipt.event_id is not None and self._send(ctx.tenant_key, receipt.event_id):
            mark_enqueued(ctx, [receipt.event_id])
            return replace(receipt, state=EventState.ENQUEUED)
        return receipt

    def _send(self, tenant_key: str, event_id: int) -> bool:
        with self._lock:
            if time.monotonic() < self._broker_down_until:
                return False
        try:
            publish_event(tenant_key, event_id)
        except app.BROKER_ERRORS as exc:
            # Answer 200 anyway: the event is committed and the sweep sends it when the broker is back.
            log.warning("broker unavailable, webhook event %s left for the sweep: %s", event_id, exc)
            with self._lock:
                self._broker_down_until = time.monotonic() + self._broker_backoff
            return False
        return True


_BUSY_RESPONSE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 5\r\nConnection: close\r\n\r\n"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True
    receiver: WebhookReceiver
    slots: threading.BoundedSemaphore
    metrics: CollectorRegistry

    def process_request(self, request: Any, client_address: Any) -> None:
        # Bound the threads a flood (or a slow-loris) can hold; Cin7 retries a 503 later.
        if not self.slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY_RESPONSE)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("webhook server: unhandled error serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cin7xero-webhooks/1.0"
    sys_version = ""
    # Socket timeout per read: an idle or trickling client is dropped.
    timeout = 10
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Route access logs through logging (debug level: a busy receiver would drown the log)."""
        log.debug("%s " + format, self.address_string(), *args)

    # -- responses --
    def _reply(self, status: HTTPStatus, body: Mapping[str, Any], *, close: bool = False) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _reject(self, reject: _Reject, *, drain: int = 0) -> None:
        self._reply(reject.status, {"error": reject.message}, close=True)
        if drain:
            self._drain(drain)

    def _drain(self, declared: int) -> None:
        # A client that sends its whole body before reading would see a reset instead of our answer
        # if we closed on unread data: read (a bounded amount of) it away first.
        budget = min(declared, 16 * 1024 * 1024)
        deadline = time.monotonic() + 2.0
        try:
            self.connection.settimeout(0.5)
            while budget > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(65536, budget)) if hasattr(self.rfile, "read1") else b""
                if not chunk:
                    break
                budget -= len(chunk)
        except OSError:
            pass

    # -- request checks (before any body byte is read) --
    def _precheck(self) -> tuple[_Reject, int] | None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        if path != WEBHOOK_PATH:
            return _Reject(HTTPStatus.NOT_FOUND, "not found"), 0
        settings = get_settings()
        if not auth_configured(settings) or not is_authorised(self.headers.get("Authorization"), settings):
            return _Reject(HTTPStatus.UNAUTHORIZED, "unauthorised"), 0
        return self._check_framing(settings.webhook_max_body_bytes)

    def _check_framing(self, limit: int) -> tuple[_Reject, int] | None:
        transfer = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        length_header = self.headers.get("Content-Length")
        if transfer:
            if length_header is not None:
                return _Reject(HTTPStatus.BAD_REQUEST, "both Content-Length and Transfer-Encoding"), 0
            if transfer != "chunked":
                return _Reject(HTTPStatus.NOT_IMPLEMENTED, f"transfer encoding {transfer!r} not supported"), 0
            return None
        if length_header is None:
            return _Reject(HTTPStatus.LENGTH_REQUIRED, "Content-Length or chunked encoding required"), 0
        try:
            length = int(length_header.strip())
        except ValueError:
            length = -1
        if length < 0:
            return _Reject(HTTPStatus.BAD_REQUEST, "invalid Content-Length"), 0
        if length > limit:
            return _Reject(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {limit} bytes"), length
        return None

    def handle_expect_100(self) -> bool:
        """Refuse before the client sends its body (401, 413) instead of after."""
        if self.command == "POST":
            rejected = self._precheck()
            if rejected is not None:
                self._reject(rejected[0])
                return False
        return super().handle_expect_100()

    def _read_body(self, limit: int) -> bytes:
        if (self.headers.get("Transfer-Encoding") or "").strip().lower() == "chunked":
            return self._read_chunked(limit)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) != length:
            raise _Reject(HTTPStatus.BAD_REQUEST, "body shorter than Content-Length")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise _Reject(HTTPStatus.BAD_REQUEST, "malformed chunk header")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise _Reject(HTTPStatus.BAD_REQUEST, "malformed chunk size") from exc
            if size < 0:
                raise _Reject(HTTPStatus.BAD_REQUEST, "malformed chunk size")
            if size == 0:
                for _ in range(100):  # trailers, up to the blank line
                    trailer = self.rfile.readline(8192)
                    if trailer in (b"\r\n", b"\n", b""):
                        break
                return bytes(body)
            if len(body) + size > limit:
                raise _Reject(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {limit} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise _Reject(HTTPStatus.BAD_REQUEST, "truncated chunk")
            body += chunk
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _Reject(HTTPStatus.BAD_REQUEST, "malformed chunk terminator")

    # -- methods --
    def do_POST(self) -> None:
        """`POST /webhooks/cin7`: authenticate, bound, decode, record, enqueue, answer."""
        try:
            self._post()
        except (TimeoutError, ConnectionError):
            self.close_connection = True
        except Exception:
            log.exception("webhook receiver failed on a request")
            try:
                self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}, close=True)
            except OSError:
                self.close_connection = True

    def _post(self) -> None:
        rejected = self._precheck()
        if rejected is not None:
            self._reject(rejected[0], drain=rejected[1])
            return
        try:
            raw = self._read_body(get_settings().webhook_max_body_bytes)
        except _Reject as exc:
            self._reject(exc)
            return
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "body is not valid JSON"})
            return
        if not isinstance(payload, dict | list):
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object or array"})
            return
        receiver = cast(_Server, self.server).receiver
        try:
            receipt = receiver.accept(payload)
        except DataError:
            # The ledger refuses this payload's content: a retry would fail the same way, and six
            # failures make Cin7 deactivate the whole subscription. Acknowledge; the poll brings the data.
            log.exception("webhook payload could not be stored; acknowledged and left to the poll")
            self._reply(HTTPStatus.OK, {"status": "unrecordable"})
            return
        except SQLAlchemyError as exc:
            # Not recorded: make Cin7 deliver again rather than lose the event.
            log.error("webhook not recorded, ledger unavailable: %s", exc)
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "ledger unavailable"}, close=True)
            return
        status = "duplicate" if receipt.duplicate else receipt.state
        self._reply(HTTPStatus.OK, {"status": status, "event_id": receipt.event_id, "type": receipt.event_type})

    def do_GET(self) -> None:
        """`GET /healthz` (liveness: the process answers), `/readyz` (ledger and broker reachable),
        `/metrics` (Prometheus text).
        """
        path = urlsplit(self.path).path.rstrip("/")
        if path == HEALTH_PATH:
            self._reply(HTTPStatus.OK, {"status": "ok"})
        elif path == READY_PATH:
            ready = readiness(get_settings())
            self._reply(HTTPStatus.OK if ready.ready else HTTPStatus.SERVICE_UNAVAILABLE, ready.as_json())
        elif path == METRICS_PATH:
            self._metrics()
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def _metrics(self) -> None:
        data = generate_latest(cast(_Server, self.server).metrics)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", METRICS_CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self) -> None:
        """`HEAD` of the `GET` paths."""
        self.do_GET()

    def _not_allowed(self) -> None:
        self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method not allowed"}, close=True)

    do_PUT = do_DELETE = do_PATCH = _not_allowed


class WebhookServer:
    """The receiver over HTTP (a threaded stdlib server): `start()` in a thread, or `serve_forever()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, max_connections: int = 128) -> None:
        settings = get_settings()
        if not auth_configured(settings):
            raise ValueError(
                "refusing to run the webhook receiver unauthenticated: set CIN7_WEBHOOK_TOKEN, or "
                "CIN7_WEBHOOK_USER and CIN7_WEBHOOK_PASSWORD"
            )
        self._server = _Server((host, port), _Handler)
        self._server.receiver = WebhookReceiver()
        self._server.slots = threading.BoundedSemaphore(max_connections)
        self._server.metrics = pipeline_registry(settings)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://host:port` (the port is the bound one when 0 was asked)."""
        return f"http://{self.host}:{self.port}"

    @property
    def webhook_url(self) -> str:
        """The URL to register in Cin7 (behind TLS in production)."""
        return self.url + WEBHOOK_PATH

    def start(self) -> WebhookServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="webhook-server", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until `stop()` is called from another."""
        self._server.serve_forever(poll_interval=0.25)

    def stop(self) -> None:
        """Stop accepting, release the port."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

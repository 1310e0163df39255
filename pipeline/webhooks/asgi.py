"""The receiver's HTTP application (ASGI): `POST /webhooks/cin7`, `GET /healthz`, `/readyz`, `/metrics`.

Served by uvicorn (`pipeline.webhooks.server`), which parses HTTP/1.1 with h11: strict Content-Length
and chunked framing, both at once refused. Nothing is done for a delivery before its credential is
checked from the request head: an unauthenticated or oversized request is answered without reading its
body (and, with `Expect: 100-continue`, before the client sends it). The body is read up to
WEBHOOK_MAX_BODY_BYTES within a deadline; the ledger write and every other blocking call run on a
bounded thread pool, so slow clients cost a coroutine each, never a thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.exc import DataError, SQLAlchemyError

from pipeline.operations.health import readiness
from pipeline.settings import get_settings
from pipeline.source.cin7core.webhooks import auth_configured
from pipeline.webhooks.auth import is_authorised
from pipeline.webhooks.receipt import WebhookReceiver

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WEBHOOK_PATH = "/webhooks/cin7"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
# The classic text format, which every Prometheus reads (our metric names are plain ASCII).
METRICS_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
# A body must arrive within this long of its head.
BODY_DEADLINE_SECONDS = 30.0
# What of a refused body is read away before closing (so the client reads our answer, not a reset).
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 2.0
_REFUSED_METHODS = frozenset({"PUT", "DELETE", "PATCH"})


class _Reject(Exception):
    """An HTTP error answer decided while reading a request."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _reply(send: Send, status: HTTPStatus, body: dict[str, Any], *, close: bool = False) -> None:
    data = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": int(status), "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _head_size(scope: Scope) -> int:
    """About the bytes of the request line and headers as sent."""
    line = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + 16
    return line + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (a repeated one: its last value)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}


def _framing(headers: dict[str, str], limit: int) -> tuple[_Reject, int] | None:
    """The refusal a request's framing earns before its body is read (h11 has refused what it cannot
    frame: both Content-Length and Transfer-Encoding, a coding other than chunked, a bad length).
    """
    if "transfer-encoding" in headers:
        return None
    length_header = headers.get("content-length")
    if length_header is None:
        return _Reject(HTTPStatus.LENGTH_REQUIRED, "Content-Length or chunked encoding required"), 0
    try:
        length = int(length_header.strip())
    except ValueError:
        return _Reject(HTTPStatus.BAD_REQUEST, "invalid Content-Length"), 0
    if length > limit:
        return _Reject(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {limit} bytes"), length
    return None


class ReceiverApp:
    """The ASGI application; blocking work goes to `executor`."""

    def __init__(self, receiver: WebhookReceiver, metrics: CollectorRegistry, executor: ThreadPoolExecutor) -> None:
        self._receiver = receiver
        self._metrics = metrics
        self._executor = executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one request (lifespan events are acknowledged and otherwise ignored)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = str(scope["path"]).rstrip("/") or "/"
        method = str(scope["method"]).upper()
        limit = get_settings().webhook_max_header_bytes
        if _head_size(scope) > limit:
            # A head that arrived whole in one read (h11 caps only a head still incomplete).
            message = f"request head larger than {limit} bytes"
            await _reply(send, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, {"error": message}, close=True)
        elif method in _REFUSED_METHODS:
            await _reply(send, HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method not allowed"}, close=True)
        elif path == WEBHOOK_PATH and method == "POST":
            await self._post(scope, receive, send)
        elif method in ("GET", "HEAD") and path in (HEALTH_PATH, READY_PATH, METRICS_PATH):
            await self._get(path, send)
        else:
            await _reply(send, HTTPStatus.NOT_FOUND, {"error": "not found"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _blocking(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    async def _get(self, path: str, send: Send) -> None:
        if path == HEALTH_PATH:
            await _reply(send, HTTPStatus.OK, {"status": "ok"})
        elif path == READY_PATH:
            ready = await self._blocking(readiness, get_settings())
            await _reply(send, HTTPStatus.OK if ready.ready else HTTPStatus.SERVICE_UNAVAILABLE, ready.as_json())
        else:
            data = await self._blocking(generate_latest, self._metrics)
            headers = [
                (b"content-type", METRICS_CONTENT_TYPE),
                (b"content-length", str(len(data)).encode()),
                (b"cache-control", b"no-store"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": data})

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate, bound, read, decode, record, enqueue, answer."""
        settings = get_settings()
        headers = _headers(scope)
        if not auth_configured(settings) or not is_authorised(headers.get("authorization"), settings):
            await _reply(send, HTTPStatus.UNAUTHORIZED, {"error": "unauthorised"}, close=True)
            return
        refused = _framing(headers, settings.webhook_max_body_bytes)
        if refused is not None:
            reject, declared = refused
            await _reply(send, reject.status, {"error": reject.message}, close=True)
            if declared and "100-continue" not in headers.get("expect", "").lower():
                await _drain(receive, declared)
            return
        try:
            raw = await asyncio.wait_for(_read_body(receive, settings.webhook_max_body_bytes), BODY_DEADLINE_SECONDS)
        except _Reject as exc:
            await _reply(send, exc.status, {"error": exc.message}, close=True)
            return
        except TimeoutError:
            await _reply(send, HTTPStatus.REQUEST_TIMEOUT, {"error": "body not received in time"}, close=True)
            return
        await self._accept(raw, send)

    async def _accept(self, raw: bytes, send: Send) -> None:
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):
            await _reply(send, HTTPStatus.BAD_REQUEST, {"error": "body is not valid JSON"})
            return
        if not isinstance(payload, dict | list):
            await _reply(send, HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object or array"})
            return
        try:
            receipt = await self._blocking(self._receiver.accept, payload)
        except DataError:
            # The ledger refuses this payload's content: a retry would fail the same way, and six
            # failures make Cin7 deactivate the whole subscription. Acknowledge; the poll brings the data.
            log.exception("webhook payload could not be stored; acknowledged and left to the poll")
            await _reply(send, HTTPStatus.OK, {"status": "unrecordable"})
            return
        except SQLAlchemyError as exc:
            # Not recorded: make Cin7 deliver again rather than lose the event.
            log.error("webhook not recorded, ledger unavailable: %s", exc)
            await _reply(send, HTTPStatus.SERVICE_UNAVAILABLE, {"error": "ledger unavailable"}, close=True)
            return
        except Exception:
            log.exception("webhook receiver failed on a request")
            await _reply(send, HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}, close=True)
            return
        status = "duplicate" if receipt.duplicate else receipt.state
        await _reply(send, HTTPStatus.OK, {"status": status, "event_id": receipt.event_id, "type": receipt.event_type})


async def _read_body(receive: Receive, limit: int) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Reject(HTTPStatus.BAD_REQUEST, "client went away before the body ended")
        body += message.get("body", b"")
        if len(body) > limit:
            raise _Reject(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {limit} bytes")
        if not message.get("more_body", False):
            return bytes(body)


async def _drain(receive: Receive, declared: int) -> None:
    """Read away (a bounded amount of) a refused body: a client that sends its whole body before reading
    would otherwise see a reset instead of our answer.
    """
    budget = min(declared, DRAIN_BYTES)
    deadline = time.monotonic() + DRAIN_SECONDS
    try:
        while budget > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            message = await asyncio.wait_for(receive(), left)
            if message["type"] != "http.request":
                return
            budget -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return
    except TimeoutError:
        return

"""Cin7 Core webhooks: the receiver, the event handling behind it, and the subscription registrar.

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

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import requests
from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy import or_, select, text, update
from sqlalchemy.exc import DataError, SQLAlchemyError
from sqlalchemy.orm import Session

from pipeline.context import TenantContext, tenant_context
from pipeline.discovery.poll import store_customers
from pipeline.errors import ErrorClass, SyncError, classify_cin7_response, transport_error
from pipeline.ledger.models import SaleRecord, SaleState, SyncDocument, WebhookEvent, utcnow
from pipeline.ledger.ops import dialect_insert, insert_ignore
from pipeline.ratelimit import limiter_for
from pipeline.settings import Settings, get_settings

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/cin7"
HEALTH_PATH = "/healthz"

# --- event types ------------------------------------------------------------------------------------

SALE_EVENT_TYPES: tuple[str, ...] = (
    "Sale/OrderAuthorised",
    "Sale/InvoiceAuthorised",
    "Sale/CreditNoteAuthorised",
    "Sale/Voided",
    "Sale/Undo",
    "Sale/PartialPaymentReceived",
    "Sale/FullPaymentReceived",
)
CUSTOMER_EVENT_TYPES: tuple[str, ...] = ("Customer/Updated",)
# What `register` subscribes to, and what the task acts on; everything else is recorded as ignored.
HANDLED_EVENT_TYPES: tuple[str, ...] = SALE_EVENT_TYPES + CUSTOMER_EVENT_TYPES

EventKind = Literal["sale", "customer"]


class EventState:
    """Values of `WebhookEvent.state`."""

    RECEIVED = "received"
    ENQUEUED = "enqueued"
    DONE = "done"
    IGNORED = "ignored"


# A delivery identical to one received less than this long ago is a repeat (Cin7 retries for about
# 76 minutes after a failed delivery, but a delivery we answered with 200 is not retried). An older
# identical body is a new event (e.g. an invoice undone and authorised again) and is processed again:
# re-processing is harmless, absorbing a real change would only delay it until the next poll.
DEDUPE_WINDOW_SECONDS = 900.0
# A `received` event older than this was never handed to the broker: the sweep sends it.
UNSENT_AFTER_SECONDS = 15.0
# Celery's default publish retry waits ~0.6 s per failure; a webhook answer must not.
_FAST_PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.05, "interval_max": 0.05}
_BROKER_ERRORS = (KombuError, RedisError, OSError)


def normalise_event_type(value: str) -> str:
    """Loose form of an event type: case-, space- and spelling-insensitive (`Authorized` == `Authorised`)."""
    lowered = re.sub(r"[\s_\-.]", "", value.strip().lower())
    return lowered.replace("authorized", "authorised")


_CANONICAL = {normalise_event_type(name): name for name in HANDLED_EVENT_TYPES}


def canonical_event_type(value: str) -> str | None:
    """The handled event type `value` stands for, or None when we do not act on it."""
    return _CANONICAL.get(normalise_event_type(value))


def event_kind(event_type: str) -> EventKind | None:
    """What an event type is about, for the types we handle."""
    canonical = canonical_event_type(event_type)
    if canonical in SALE_EVENT_TYPES:
        return "sale"
    if canonical in CUSTOMER_EVENT_TYPES:
        return "customer"
    return None


def _ci_get(obj: Mapping[str, Any], *keys: str) -> Any:
    """The first present value among `keys`, matching key names case-insensitively."""
    lowered = {str(k).lower(): v for k, v in obj.items()}
    for key in keys:
        value = lowered.get(key.lower())
        if value not in (None, ""):
            return value
    return None


def _guid(value: Any) -> str | None:
    """A lower-case GUID, or None when `value` is not one (webhook payloads are not trusted)."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def _canonical(value: Any) -> Any:
    """The payload with GUIDs lower-cased (their case varies between deliveries) for hashing."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, str):
        return _guid(value) or value
    return value


@dataclass(frozen=True)
class ParsedEvent:
    """What the receiver reads from a thin payload before recording it."""

    event_type: str  # canonical for handled types, else as received (or "unknown")
    kind: EventKind | None
    sale_id: str | None  # for sale events that carry an id
    document_ids: tuple[str, ...]  # every id or number the payload names, for the dedupe key
    dedupe_key: str


def _document_ids(item: Mapping[str, Any]) -> list[str]:
    ids: list[str] = []
    for key in ("SaleID", "SaleTaskID", "TaskID", "ID", "CustomerID"):
        guid = _guid(_ci_get(item, key))
        if guid:
            ids.append(guid)
    for key in ("DocumentNumber", "InvoiceNumber", "CreditNoteNumber", "OrderNumber", "SaleOrderNumber"):
        number = _ci_get(item, key)
        if isinstance(number, str | int):
            ids.append(str(number).strip())
    for detail in _ci_get(item, "CustomerDetailsList") or []:
        if isinstance(detail, Mapping):
            customer = _ci_get(detail, "Customer")
            guid = _guid(_ci_get(customer, "ID", "CustomerID")) if isinstance(customer, Mapping) else None
            guid = guid or _guid(_ci_get(detail, "CustomerID", "ID"))
            if guid:
                ids.append(guid)
    return ids


def parse_event(payload: Any) -> ParsedEvent:
    """Classify a decoded payload (an object, or an array for `Stock/*` and `Task/Overdue`)."""
    items = [p for p in payload if isinstance(p, Mapping)] if isinstance(payload, list) else [payload]
    first: Mapping[str, Any] = items[0] if items and isinstance(items[0], Mapping) else {}
    raw_type = _ci_get(first, "EventType", "Type", "Event")
    if not isinstance(raw_type, str) and _ci_get(first, "CustomerDetailsList") is not None:
        raw_type = "Customer/Updated"
    received_type = raw_type.strip()[:64] if isinstance(raw_type, str) and raw_type.strip() else "unknown"
    canonical = canonical_event_type(received_type)
    event_type = canonical or received_type
    kind = event_kind(event_type) if canonical else None
    ids: list[str] = []
    for item in items:
        ids.extend(i for i in _document_ids(item) if i not in ids)
    sale_id = None
    if kind == "sale":
        # Sale/InvoiceAuthorised names the sale `SaleTaskID`; the others `SaleID`.
        sale_id = _guid(_ci_get(first, "SaleID")) or _guid(_ci_get(first, "SaleTaskID"))
    body = json.dumps(_canonical(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"{normalise_event_type(event_type)}\n{body}".encode()).hexdigest()
    readable = f"{normalise_event_type(event_type)[:40]}:{(ids[0] if ids else '-')[:36]}:"
    dedupe_key = readable + digest[: 128 - len(readable)]
    return ParsedEvent(event_type, kind, sale_id, tuple(ids), dedupe_key)


# --- authentication ---------------------------------------------------------------------------------


def auth_configured(settings: Settings) -> bool:
    """True when a bearer token or a basic user and password is configured."""
    token = settings.cin7_webhook_token.get_secret_value()
    return bool(token) or bool(settings.cin7_webhook_user and settings.cin7_webhook_password.get_secret_value())


def is_authorised(header: str | None, settings: Settings) -> bool:
    """Check an `Authorization` header against the configured credentials in constant time."""
    if not header:
        return False
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    token = settings.cin7_webhook_token.get_secret_value()
    if scheme.lower() == "bearer" and token:
        return hmac.compare_digest(credential.encode(), token.encode())
    user = settings.cin7_webhook_user
    password = settings.cin7_webhook_password.get_secret_value()
    if scheme.lower() == "basic" and user and password:
        try:
            decoded = base64.b64decode(credential, validate=True)
        except (binascii.Error, ValueError):
            return False
        given_user, _, given_password = decoded.partition(b":")
        # Both comparisons always run: no early exit that would time the user name.
        user_ok = hmac.compare_digest(given_user, user.encode())
        password_ok = hmac.compare_digest(given_password, password.encode())
        return user_ok and password_ok
    return False


# --- the inbox --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """What the receiver did with one delivery."""

    event_id: int | None  # None: a repeat of an event already recorded
    state: str
    event_type: str
    duplicate: bool


def record_event(ctx: TenantContext, parsed: ParsedEvent, payload: Any) -> Receipt:
    """Record a delivery durably (committed on return); a repeat within the dedupe window is absorbed."""
    now = utcnow()
    state = EventState.RECEIVED if parsed.kind is not None else EventState.IGNORED
    error = None if parsed.kind is not None else f"event type {parsed.event_type!r} is not handled"
    if parsed.kind == "sale" and parsed.sale_id is None and not parsed.document_ids:
        state, error = EventState.IGNORED, "sale event without a sale id or document number"
    values = {
        "tenant_id": ctx.tenant_pk,
        "event_type": parsed.event_type,
        "dedupe_key": parsed.dedupe_key,
        "sale_id": parsed.sale_id,
        "payload": payload,
        "state": state,
        "received_at": now,
        "enqueued_at": None,
        "processed_at": None,
        "error": error,
    }
    with ctx.sessions() as session, session.begin():
        statement = (
            dialect_insert(session, WebhookEvent)
            .values(values)
            .on_conflict_do_update(
                index_elements=["tenant_id", "dedupe_key"],
                set_={k: v for k, v in values.items() if k not in ("tenant_id", "dedupe_key")},
                where=(WebhookEvent.received_at < now - timedelta(seconds=DEDUPE_WINDOW_SECONDS))
                & WebhookEvent.state.in_([EventState.DONE, EventState.IGNORED]),
            )
            .returning(WebhookEvent.id)
        )
        event_id = session.scalar(statement)
    if state == EventState.IGNORED and event_id is not None:
        log.info("webhook %s recorded as ignored (%s)", parsed.event_type, error)
    return Receipt(event_id, state, parsed.event_type, duplicate=event_id is None)


def publish_event(tenant_key: str, event_id: int) -> None:
    """Send the event's task, failing fast (not after Celery's default retries) when the broker is down."""
    from pipeline.app import TASK_QUEUES, TaskName, app

    app.send_task(
        TaskName.WEBHOOK_EVENT.value,
        args=(tenant_key, event_id),
        queue=TASK_QUEUES[TaskName.WEBHOOK_EVENT].value,
        retry=True,
        retry_policy=_FAST_PUBLISH_RETRY,
    )


def mark_enqueued(ctx: TenantContext, event_ids: Iterable[int]) -> None:
    """Stamp events whose message went out (unless the task has already finished them)."""
    ids = list(event_ids)
    if not ids:
        return
    with ctx.sessions() as session, session.begin():
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_(ids), WebhookEvent.state == EventState.RECEIVED)
            .values(state=EventState.ENQUEUED, enqueued_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def resend_unsent_events(ctx: TenantContext, older_than_seconds: float = UNSENT_AFTER_SECONDS) -> list[int]:
    """Events the broker never got (`received` for a while) or lost (`enqueued` and stuck).

    They are marked `enqueued` in the same transaction; the caller sends `TaskName.WEBHOOK_EVENT`
    (tenant key, event id) for each id after this returns. Sending twice is harmless.
    """
    now = utcnow()
    unsent_before = now - timedelta(seconds=older_than_seconds)
    lost_before = now - timedelta(seconds=ctx.settings.stuck_after_seconds)
    with ctx.sessions() as session, session.begin():
        events = list(
            session.scalars(
                select(WebhookEvent)
                .where(
                    WebhookEvent.tenant_id == ctx.tenant_pk,
                    or_(
                        (WebhookEvent.state == EventState.RECEIVED) & (WebhookEvent.received_at < unsent_before),
                        (WebhookEvent.state == EventState.ENQUEUED) & (WebhookEvent.enqueued_at < lost_before),
                    ),
                )
                .order_by(WebhookEvent.id)
                .limit(1000)
                .with_for_update(skip_locked=True)
            )
        )
        for event in events:
            event.state = EventState.ENQUEUED
            event.enqueued_at = now
        ids = [event.id for event in events]
    if ids:
        log.info("webhooks: re-sending %d events the broker did not take", len(ids))
    return ids


# --- processing (the task) --------------------------------------------------------------------------


@dataclass
class EventOutcome:
    """What processing one event did; the task sends a fetch for each sale id."""

    state: str
    sale_ids: list[str] = field(default_factory=list)
    customers: int = 0
    error: str | None = None


def _sale_ids_for(session: Session, ctx: TenantContext, event: WebhookEvent) -> list[str]:
    if event.sale_id:
        return [event.sale_id]
    items = event.payload if isinstance(event.payload, list) else [event.payload]
    first = items[0] if items and isinstance(items[0], Mapping) else {}
    sale_id = _guid(_ci_get(first, "SaleID")) or _guid(_ci_get(first, "SaleTaskID"))
    if sale_id:
        return [sale_id]
    # Only a number: find the sale through what the ledger already knows.
    number = _ci_get(first, "DocumentNumber", "InvoiceNumber", "CreditNoteNumber")
    if isinstance(number, str | int):
        found = session.scalar(
            select(SyncDocument.sale_id).where(
                SyncDocument.tenant_id == ctx.tenant_pk, SyncDocument.document_number == str(number).strip()
            )
        )
        if found:
            return [found]
    order = _ci_get(first, "OrderNumber", "SaleOrderNumber")
    if isinstance(order, str | int):
        found = session.scalar(
            select(SaleRecord.sale_id).where(
                SaleRecord.tenant_id == ctx.tenant_pk, SaleRecord.order_number == str(order).strip()
            )
        )
        if found:
            return [found]
    return []


def mark_sales_discovered(session: Session, tenant_pk: int, sale_ids: list[str]) -> None:
    """Flag sales for a fresh detail read, like a poll that saw them change (the sweep re-sends lost fetches)."""
    now = utcnow()
    insert_ignore(
        session,
        SaleRecord,
        [
            {
                "tenant_id": tenant_pk,
                "sale_id": sale_id,
                "state": SaleState.DISCOVERED.value,
                "discovered_at": now,
                "updated_at": now,
                "enqueued_at": now,
                "attempts": 0,
                "source": "cin7core",
            }
            for sale_id in sale_ids
        ],
        ["tenant_id", "sale_id"],
    )
    for record in session.scalars(
        select(SaleRecord).where(SaleRecord.tenant_id == tenant_pk, SaleRecord.sale_id.in_(sale_ids)).with_for_update()
    ):
        record.state = SaleState.DISCOVERED
        record.attempts = 0
        record.next_attempt_at = None
        record.enqueued_at = now


def _customer_ids(payload: Any) -> list[str]:
    items = payload if isinstance(payload, list) else [payload]
    ids: list[str] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        for detail in _ci_get(item, "CustomerDetailsList") or []:
            if not isinstance(detail, Mapping):
                continue
            customer = _ci_get(detail, "Customer")
            guid = _guid(_ci_get(customer, "ID", "CustomerID")) if isinstance(customer, Mapping) else None
            guid = guid or _guid(_ci_get(detail, "CustomerID", "ID"))
            if guid and guid not in ids:
                ids.append(guid)
        guid = _guid(_ci_get(item, "CustomerID"))
        if guid and guid not in ids:
            ids.append(guid)
    return ids


def process_event(ctx: TenantContext, event_id: int) -> EventOutcome:
    """Act on one recorded event; idempotent (a finished event is left alone).

    Sale events flag the sale for a detail read (the caller sends `FETCH_SALE` for each returned id
    after this commits). `Customer/Updated` re-reads each named customer from Cin7 and stores it.
    Raises `SyncError` when Cin7 fails (the task retries or calls `mark_event_failed`).
    """
    with ctx.sessions() as session:
        event = session.get(WebhookEvent, event_id)
        if event is None or event.tenant_id != ctx.tenant_pk:
            log.warning("webhook event %s not found for tenant %s", event_id, ctx.tenant_key)
            return EventOutcome(state="missing")
        if event.state in (EventState.DONE, EventState.IGNORED):
            return EventOutcome(state=event.state)
        kind = event_kind(event.event_type)
        payload = event.payload
    if kind == "customer":
        customer_ids = _customer_ids(payload)
        rows = [row for row in (ctx.cin7.get_customer(cid) for cid in customer_ids) if row is not None]
        state = EventState.DONE if customer_ids else EventState.IGNORED
        with ctx.sessions() as session, session.begin():
            store_customers(session, ctx.tenant_pk, rows)
            _finish(session, event_id, state, None if customer_ids else "no customer id in the payload")
        return EventOutcome(state=state, customers=len(rows))
    with ctx.sessions() as session, session.begin():
        event = session.get(WebhookEvent, event_id, with_for_update=True)
        if event is None or event.state in (EventState.DONE, EventState.IGNORED):
            return EventOutcome(state=event.state if event is not None else "missing")
        if kind != "sale":
            _finish(session, event_id, EventState.IGNORED, f"event type {event.event_type!r} is not handled")
            return EventOutcome(state=EventState.IGNORED)
        sale_ids = _sale_ids_for(session, ctx, event)
        if not sale_ids:
            _finish(session, event_id, EventState.IGNORED, "no sale found for this event")
            return EventOutcome(state=EventState.IGNORED, error="no sale found")
        mark_sales_discovered(session, ctx.tenant_pk, sale_ids)
        if event.sale_id is None:
            event.sale_id = sale_ids[0]
        _finish(session, event_id, EventState.DONE, None)
    return EventOutcome(state=EventState.DONE, sale_ids=sale_ids)


def _finish(session: Session, event_id: int, state: str, error: str | None) -> None:
    event = session.get(WebhookEvent, event_id)
    if event is not None:
        event.state = state
        event.error = error
        event.processed_at = utcnow()


def mark_event_failed(ctx: TenantContext, event_id: int, message: str) -> None:
    """Give up on an event (the poll is the safety net), keeping the reason."""
    with ctx.sessions() as session, session.begin():
        _finish(session, event_id, EventState.DONE, message[:4000])


# --- the HTTP service -------------------------------------------------------------------------------


class _Reject(Exception):
    """An HTTP error answer decided while reading a request."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def health(settings: Settings | None = None) -> tuple[HTTPStatus, dict[str, Any]]:
    """`(200, {"status": "ok"})` when the ledger answers `SELECT 1`, else 503."""
    from pipeline.db import engine_for

    settings = settings or get_settings()
    try:
        with engine_for(settings.database_url).connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health check: ledger unreachable: %s", exc)
        return HTTPStatus.SERVICE_UNAVAILABLE, {"status": "unavailable", "database": "down"}
    return HTTPStatus.OK, {"status": "ok"}


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
        except _BROKER_ERRORS as exc:
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
        limit = settings.webhook_max_body_bytes
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
            return _Reject(HTTPStatus.BAD_REQUEST, "invalid Content-Length"), 0
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
        """`GET /healthz` for load balancers."""
        if urlsplit(self.path).path.rstrip("/") != HEALTH_PATH:
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        status, body = health()
        self._reply(status, body)

    def do_HEAD(self) -> None:
        """`HEAD /healthz`."""
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


# --- registration in Cin7 ---------------------------------------------------------------------------


class Cin7WebhooksClient:
    """Cin7's `webhooks` endpoint (GET/POST/PUT), with the same auth headers and throttle handling as Cin7Client."""

    def __init__(self, settings: Settings, *, session: requests.Session | None = None) -> None:
        self._settings = settings
        self._base = settings.cin7_api_url.rstrip("/")
        self._session = session or requests.Session()
        self._session.headers.update(
            {
                "api-auth-accountid": settings.cin7_account_id,
                "api-auth-applicationkey": settings.cin7_application_key.get_secret_value(),
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
        )
        self._limiter = limiter_for(settings.redis_url)
        self._limit_key = f"cin7:{settings.cin7_account_id}"

    def _call(self, method: str, body: Mapping[str, Any] | None = None) -> Any:
        attempts = 0
        while True:
            # Registration shares the per-application 60 calls a minute with the running sync.
            self._limiter.acquire(
                self._limit_key,
                self._settings.cin7_calls_per_minute,
                60.0,
                burst=self._settings.cin7_burst_calls,
            )
            try:
                response = self._session.request(
                    method, f"{self._base}/webhooks", data=json.dumps(body) if body else None, timeout=(5, 60)
                )
            except requests.RequestException as exc:
                raise transport_error("cin7", exc) from exc
            error = self._error_for(response)
            if error is None:
                return response.json() if response.content else None
            if error.error_class is ErrorClass.RATE_LIMITED and attempts < self._settings.cin7_max_throttle_retries:
                attempts += 1
                time.sleep(error.retry_after or self._settings.cin7_throttle_wait_seconds)
                continue
            raise error

    def _error_for(self, response: requests.Response) -> SyncError | None:
        wait = self._settings.cin7_throttle_wait_seconds
        if response.status_code != 200:
            return classify_cin7_response(response.status_code, response.content, throttle_wait=wait)
        if "json" not in response.headers.get("Content-Type", "").lower():
            return SyncError(ErrorClass.VALIDATION, f"Cin7 returned non-JSON for {response.url}", api="cin7")
        body = response.json()
        if isinstance(body, list) and body and isinstance(body[0], dict) and "ErrorCode" in body[0]:
            return classify_cin7_response(200, response.content, throttle_wait=wait)
        if isinstance(body, dict) and "ErrorCode" in body and "Exception" in body:
            return classify_cin7_response(200, response.content, throttle_wait=wait)
        return None

    @staticmethod
    def _hooks(body: Any) -> list[dict[str, Any]]:
        hooks = body.get("Webhooks") if isinstance(body, dict) else body
        return [dict(h) for h in hooks or [] if isinstance(h, dict)]

    def list(self) -> list[dict[str, Any]]:
        """Every webhook subscription of the account."""
        return self._hooks(self._call("GET"))

    def create(self, hook: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new subscription; returns it as Cin7 stored it."""
        created = self._hooks(self._call("POST", hook))
        return created[0] if created else dict(hook)

    def update(self, hook: Mapping[str, Any]) -> dict[str, Any]:
        """PUT a subscription (by its `ID`); returns it as Cin7 stored it."""
        updated = self._hooks(self._call("PUT", hook))
        return updated[0] if updated else dict(hook)


RegistrationAction = Literal["created", "updated", "reactivated", "unchanged", "failed", "inactive (not ours)"]


@dataclass(frozen=True)
class RegistrationResult:
    """One row of what `register` did."""

    event_type: str
    action: RegistrationAction
    webhook_id: str | None
    url: str
    detail: str = ""


def desired_subscription(settings: Settings, event_type: str, url: str) -> dict[str, Any]:
    """The subscription we want for one event type: bearer auth when a token is set, else basic."""
    hook: dict[str, Any] = {
        "Type": event_type,
        "Name": f"cin7xero {event_type}",
        "IsActive": True,
        "ExternalURL": url,
        "ExternalHeaders": [],
    }
    token = settings.cin7_webhook_token.get_secret_value()
    if token:
        hook.update(
            ExternalAuthorizationType="bearerauth",
            ExternalBearerToken=token,
            ExternalUserName=None,
            ExternalPassword=None,
        )
    else:
        hook.update(
            ExternalAuthorizationType="basicauth",
            ExternalUserName=settings.cin7_webhook_user,
            ExternalPassword=settings.cin7_webhook_password.get_secret_value(),
            ExternalBearerToken=None,
        )
    return hook


def _same_url(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def _secret_differs(current: Any, wanted: Any) -> bool:
    # Cin7 may mask stored secrets when listing; only a value we can read counts as different.
    if current in (None, "") or (isinstance(current, str) and set(current) <= {"*"}):
        return False
    return bool(current != wanted)


def _differences(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    changed: list[str] = []
    if str(current.get("ExternalAuthorizationType") or "").lower() != wanted["ExternalAuthorizationType"]:
        changed.append("ExternalAuthorizationType")
    if wanted["ExternalAuthorizationType"] == "bearerauth":
        if _secret_differs(current.get("ExternalBearerToken"), wanted["ExternalBearerToken"]):
            changed.append("ExternalBearerToken")
    else:
        if (current.get("ExternalUserName") or "") != wanted["ExternalUserName"]:
            changed.append("ExternalUserName")
        if _secret_differs(current.get("ExternalPassword"), wanted["ExternalPassword"]):
            changed.append("ExternalPassword")
    if current.get("ExternalURL") != wanted["ExternalURL"]:
        changed.append("ExternalURL")
    return changed


def register_webhooks(
    settings: Settings,
    url: str,
    *,
    client: Cin7WebhooksClient | None = None,
    event_types: Iterable[str] = HANDLED_EVENT_TYPES,
    force: bool = False,
) -> list[RegistrationResult]:
    """Create or update our subscriptions (one per handled type, pointing at `url`); idempotent.

    An existing subscription is ours when its type matches (loosely) and its URL is `url`. A
    deactivated one (Cin7 gives up after 6 failed deliveries) is reactivated. Inactive
    subscriptions of other URLs for the same types are reported, not touched.
    """
    if not auth_configured(settings):
        raise ValueError("set CIN7_WEBHOOK_TOKEN (or CIN7_WEBHOOK_USER and CIN7_WEBHOOK_PASSWORD) before registering")
    client = client or Cin7WebhooksClient(settings)
    existing = client.list()
    results: list[RegistrationResult] = []
    for event_type in event_types:
        wanted = desired_subscription(settings, event_type, url)
        same_type = [
            h for h in existing if normalise_event_type(str(h.get("Type") or "")) == normalise_event_type(event_type)
        ]
        ours = [h for h in same_type if _same_url(h.get("ExternalURL"), url)]
        for other in same_type:
            if other not in ours and other.get("IsActive") is False:
                results.append(
                    RegistrationResult(
                        event_type, "inactive (not ours)", other.get("ID"), str(other.get("ExternalURL"))
                    )
                )
        try:
            if not ours:
                created = client.create(wanted)
                results.append(RegistrationResult(event_type, "created", created.get("ID"), url))
                continue
            current = ours[0]
            inactive = current.get("IsActive") is False
            changed = _differences(current, wanted)
            if not inactive and not changed and not force:
                results.append(RegistrationResult(event_type, "unchanged", current.get("ID"), url))
                continue
            client.update({**current, **wanted, "ID": current.get("ID"), "Name": current.get("Name") or wanted["Name"]})
            action: RegistrationAction = "reactivated" if inactive else "updated"
            detail = "was deactivated by Cin7" if inactive else ", ".join(changed) or "forced"
            results.append(RegistrationResult(event_type, action, current.get("ID"), url, detail))
        except SyncError as exc:
            results.append(RegistrationResult(event_type, "failed", None, url, exc.message))
    return results

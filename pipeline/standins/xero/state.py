"""The Xero stand-in's settings and in-memory store: records, tokens, counters and rate windows.

``XeroState`` holds everything the endpoint mixins read and write (all behind one lock), the stand-in's
URLs, the clock that stamps ``UpdatedDateUTC`` and the counters that ``stats()`` reports.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import uuid
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import ThreadingHTTPServer
from typing import Any, TypedDict, Unpack

from pipeline.standins.xero.responses import Response
from pipeline.standins.xero.values import Record, utc_now

DEFAULT_TENANT_ID = "7c1e2f9a-3b4d-4e5f-8a6b-9c0d1e2f3a4b"
API_PREFIX = "/api.xro/2.0"
#: Seed tracking categories: ``{"Sales Rep": ["Alice", "Bob"]}`` (ACTIVE categories and options), or a list of
#: ``{"Name": ..., "Status": ..., "TrackingCategoryID": ..., "Options": [name or {"Name": ..., "Status": ...}]}``.
SeedTracking = Mapping[str, Sequence[str]] | Sequence[Mapping[str, Any]]


@dataclass(slots=True)
class AccessToken:
    """An issued access token; ``family`` links it to a refresh-token chain (``None`` for client credentials)."""

    expires_at: float
    family: str | None
    client_id: str


@dataclass(slots=True)
class RefreshToken:
    """An issued refresh token; ``superseded_at`` is when it was rotated (it still works for the grace period)."""

    family: str
    client_id: str
    scope: str
    expires_at: float
    superseded_at: float | None = None


@dataclass(slots=True)
class AuthCode:
    """An authorization code awaiting exchange at the token endpoint."""

    client_id: str
    redirect_uri: str
    scope: str
    expires_at: float


@dataclass(slots=True)
class IdempotencyEntry:
    """The response stored for an ``Idempotency-Key``, and the request it must match to be replayed."""

    method: str
    target: str
    body_hash: str
    created: float
    response: Response


@dataclass(slots=True)
class Faults:
    """The faults armed by ``set_faults()`` (deadlines on the monotonic clock, counters of calls to fault)."""

    outage_until: float = 0.0
    offline_until: float = 0.0
    rate_limit_next: int = 0
    day_limit_next: int = 0
    drop_response_after_commit_next: int = 0
    server_error_next: int = 0
    latency_seconds: float = 0.0

    def describe(self, now: float) -> dict[str, Any]:
        """The armed faults as ``set_faults()`` takes them (seconds left rather than deadlines)."""
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
class DocumentStore:
    """One kind of document (invoices or credit notes) and its indexes: by (type, number), by contact.

    ``next_number`` is the counter behind auto-numbered documents (INV-0001, CN-0001 ...).
    """

    records: dict[str, Record] = field(default_factory=dict)
    by_number: dict[tuple[str, str], str] = field(default_factory=dict)
    by_contact: dict[str, set[str]] = field(default_factory=dict)
    next_number: int = 1


@dataclass(frozen=True, slots=True)
class XeroOptions:
    """How a Xero stand-in behaves: its credentials and organisation, its limits, and its token lifetimes.

    Limits of ``None`` mean unlimited; ``window_seconds`` and ``day_window_seconds`` are the spans of the
    minute and day limits. ``refresh_grace_seconds`` is how long a rotated refresh token keeps working.
    """

    client_id: str = "standin-client"
    client_secret: str = "standin-secret"  # noqa: S105 - a fake's published test credential
    tenant_id: str = DEFAULT_TENANT_ID
    org_name: str = "Demo Company (AU)"
    minute_limit: int | None = None
    day_limit: int | None = None
    concurrent_limit: int | None = None
    window_seconds: float = 60.0
    day_window_seconds: float = 86_400.0
    idempotency_ttl_seconds: float = 360.0
    access_token_ttl_seconds: int = 1800
    refresh_grace_seconds: float = 1800.0
    period_lock_date: dt.date | None = dt.date(2020, 6, 30)


class XeroOptionFields(TypedDict, total=False):
    """``XeroOptions`` fields passed one by one as keyword arguments, e.g. ``XeroStandIn(minute_limit=3)``."""

    client_id: str
    client_secret: str
    tenant_id: str
    org_name: str
    minute_limit: int | None
    day_limit: int | None
    concurrent_limit: int | None
    window_seconds: float
    day_window_seconds: float
    idempotency_ttl_seconds: float
    access_token_ttl_seconds: int
    refresh_grace_seconds: float
    period_lock_date: dt.date | None


class XeroState:
    """Settings and in-memory state of one Xero stand-in (see ``XeroStandIn`` for what the options mean).

    Options come as ``options=XeroOptions(...)``, as keyword arguments, or both (keywords win).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        options: XeroOptions | None = None,
        seed_contacts: list[dict[str, Any]] | None = None,
        seed_invoices: list[dict[str, Any]] | None = None,
        seed_tracking: SeedTracking | None = None,
        **fields: Unpack[XeroOptionFields],
    ) -> None:
        opts = replace(options or XeroOptions(), **fields)
        self.host = host
        self.port = port
        self.client_id = opts.client_id
        self.client_secret = opts.client_secret
        self.tenant_id = opts.tenant_id
        self.org_name = opts.org_name
        self.minute_limit = opts.minute_limit
        self.day_limit = opts.day_limit
        self.concurrent_limit = opts.concurrent_limit
        self.window_seconds = opts.window_seconds
        self.day_window_seconds = opts.day_window_seconds
        self.idempotency_ttl_seconds = opts.idempotency_ttl_seconds
        self.access_token_ttl_seconds = opts.access_token_ttl_seconds
        self.refresh_grace_seconds = opts.refresh_grace_seconds
        self.period_lock_date = opts.period_lock_date
        self._seed_contacts = copy.deepcopy(seed_contacts or [])
        self._seed_invoices = copy.deepcopy(seed_invoices or [])
        self._seed_tracking: SeedTracking = copy.deepcopy(seed_tracking or {})
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._org_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-standin-org:{opts.tenant_id}"))
        self._connection_id = str(uuid.uuid4())
        self._auth_event_id = str(uuid.uuid4())
        self._created = utc_now().replace(microsecond=0)
        # Tokens survive reset() so that connected clients keep working across test cases.
        self._access_tokens: dict[str, AccessToken] = {}
        self._refresh_tokens: dict[str, RefreshToken] = {}
        self._revoked_families: set[str] = set()
        self._auth_codes: dict[str, AuthCode] = {}
        self._clear_state()

    def _clear_state(self) -> None:
        self._contacts: dict[str, Record] = {}
        self._contact_by_number: dict[str, str] = {}
        self._active_contact_by_name: dict[str, str] = {}
        self._documents = {"invoice": DocumentStore(), "credit_note": DocumentStore()}
        # The invoice store's tables under the names the invoice code (and some tests) have always used.
        self._invoices = self._documents["invoice"].records
        self._invoice_by_number = self._documents["invoice"].by_number
        self._invoices_by_contact = self._documents["invoice"].by_contact
        self._credit_notes = self._documents["credit_note"].records
        # Payments and allocations by ID, and the IDs of those applied to each invoice or credit note.
        self._payments: dict[str, Record] = {}
        self._allocations: dict[str, Record] = {}
        self._payment_ids_by_document: dict[str, list[str]] = {}
        self._allocation_ids_by_document: dict[str, list[str]] = {}
        self._history: dict[str, list[Record]] = {}
        # Tracking categories by TrackingCategoryID, in the order they were added; each holds its Options.
        self._tracking: dict[str, Record] = {}
        self._seq = 0
        self._last_stamp = utc_now()
        self._minute_calls: deque[float] = deque()
        self._day_calls: deque[float] = deque()
        self._in_flight = 0
        self._idempotency: dict[str, IdempotencyEntry] = {}
        self._idempotency_order: deque[tuple[float, str]] = deque()
        self._faults = Faults()
        self._connected = True
        self._calls = 0
        self._by_endpoint: Counter[str] = Counter()
        self._rate_limited = 0
        self._token_requests = 0
        self._replays = 0
        self._dropped = 0

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

    def reset(self) -> None:
        """Forget all data, counters, rate windows, idempotency keys and faults; re-apply the seeds."""
        with self._lock:
            self._clear_state()

    def _stamp(self) -> dt.datetime:
        # Non-decreasing and at millisecond precision, so ordering by insertion equals UpdatedDateUTC ASC.
        now = utc_now()
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

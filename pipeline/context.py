"""Per-tenant context: the ledger row, the clients and the mapping rules a task needs.

Built once per process per tenant and reused (connections and tokens stay warm); everything in it is
safe to share between the threads of one process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, lru_cache

import redis
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from mappings import MappingRules, load_rules
from pipeline.db import engine_for
from pipeline.ledger.models import ApiUsage, Tenant
from pipeline.ledger.ops import dialect_insert
from pipeline.ratelimit import RateLimiter, limiter_for
from pipeline.settings import Settings, get_settings
from pipeline.source.base import Source
from pipeline.source.cin7core.client import Cin7Client
from pipeline.xero.auth import XeroTokenManager
from pipeline.xero.client import XeroClient

log = logging.getLogger(__name__)


def ensure_tenant(session: Session, settings: Settings, tenant_key: str | None = None) -> Tenant:
    """The row of tenant `tenant_key` (default: the deployment's TENANT_KEY), created on first use."""
    key = tenant_key or settings.tenant_key
    tenant = session.scalar(select(Tenant).where(Tenant.key == key))
    if tenant is None:
        session.execute(
            dialect_insert(session, Tenant)
            .values(
                key=key,
                name=key,
                cin7_account_id=settings.cin7_account_id,
                created_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        session.flush()
        tenant = session.scalar(select(Tenant).where(Tenant.key == key))
        assert tenant is not None
    return tenant


# --- API usage ---------------------------------------------------------------------------------------
#
# Every Cin7 and Xero call is counted per tenant, API and UTC day. With Redis, a call costs one HINCRBY
# on the tenant's live hash (fields "<day>|<api>|calls" and "<day>|<api>|429"); the sweep folds the hash
# into ApiUsage (pipeline.recovery.sweep.fold_api_usage) and pipeline.operations.status adds what is not folded yet, so
# readers see exact numbers at once. Without Redis (the demo), each call is one ledger upsert.


@dataclass(frozen=True)
class UsageKeys:
    """The Redis keys of one tenant's API usage counts."""

    live: str  # what workers increment
    folding: str  # a hash detached from `live`, being added to the ledger
    generation: str  # bumped each time a folded hash is dropped, so readers can tell they raced a fold


def usage_keys(tenant_key: str) -> UsageKeys:
    """The usage keys of a tenant."""
    base = f"cin7xero:usage:{tenant_key}"
    return UsageKeys(live=base, folding=f"{base}:folding", generation=f"{base}:generation")


# Set on a folding hash before its counts are committed to the ledger: the ApiUsage values they were
# added to, so that after a crash anyone can tell whether the commit happened.
USAGE_BASE_PREFIX = "base|"

UsageCounts = dict[tuple[str, str], tuple[int, int]]
"""(day, api) -> (calls, answered 429)."""


def parse_usage_hash(raw: Mapping[bytes | str, bytes | str]) -> tuple[UsageCounts, UsageCounts]:
    """A usage hash as (counts, bases); bases is empty until a fold has prepared the hash."""
    counts: dict[tuple[str, str], list[int]] = {}
    bases: dict[tuple[str, str], list[int]] = {}
    for raw_field, raw_value in raw.items():
        field_name = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
        target = counts
        if field_name.startswith(USAGE_BASE_PREFIX):
            target, field_name = bases, field_name[len(USAGE_BASE_PREFIX) :]
        day, api, what = field_name.split("|")
        slot = target.setdefault((day, api), [0, 0])
        slot[0 if what == "calls" else 1] += int(raw_value)
    return (
        {key: (calls, limited) for key, (calls, limited) in counts.items()},
        {key: (calls, limited) for key, (calls, limited) in bases.items()},
    )


def usage_applied(counts: UsageCounts, bases: UsageCounts, ledger: UsageCounts) -> bool:
    """Whether a prepared folding hash's counts are already in the ledger values `ledger`.

    "Every ledger value reached base + count", rather than "some value moved from base": a call that
    fell back to a ledger upsert while Redis was failing moves a value too, and must not make a hash
    that was never committed look committed.
    """
    return bool(bases) and all(
        ledger.get(key, (0, 0))[0] >= bases.get(key, (0, 0))[0] + calls
        and ledger.get(key, (0, 0))[1] >= bases.get(key, (0, 0))[1] + limited
        for key, (calls, limited) in counts.items()
    )


def add_usage(session: Session, tenant_pk: int, counts: UsageCounts) -> None:
    """Add call counts to the tenant's ApiUsage rows, creating the rows that do not exist yet."""
    for (day, api), (calls, limited) in sorted(counts.items()):
        statement = dialect_insert(session, ApiUsage).values(
            tenant_id=tenant_pk, api=api, day=day, calls=calls, rate_limited=limited
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["tenant_id", "api", "day"],
                set_={"calls": ApiUsage.calls + calls, "rate_limited": ApiUsage.rate_limited + limited},
            )
        )


def ledger_usage(session: Session, tenant_pk: int, keys: Iterable[tuple[str, str]] | None = None) -> UsageCounts:
    """The tenant's ApiUsage rows as {(day, api): (calls, 429s)}, all of them or only `keys`."""
    query = select(ApiUsage.day, ApiUsage.api, ApiUsage.calls, ApiUsage.rate_limited).where(
        ApiUsage.tenant_id == tenant_pk
    )
    if keys is not None:
        wanted = list(keys)
        if not wanted:
            return {}
        query = query.where(tuple_(ApiUsage.day, ApiUsage.api).in_(wanted))
    return {(day, api): (int(calls or 0), int(limited or 0)) for day, api, calls, limited in session.execute(query)}


@lru_cache(maxsize=8)
def _redis_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def shared_redis(settings: Settings) -> redis.Redis | None:
    """The deployment's Redis client, or None when there is none (the demo runs without)."""
    return _redis_for(settings.redis_url) if settings.uses_redis else None


class UsageRecorder:
    """Counts API calls per tenant and day (what the summary calls "Xero calls used")."""

    def __init__(self, sessions: sessionmaker[Session], tenant_pk: int, tenant_key: str, settings: Settings) -> None:
        self._sessions = sessions
        self._tenant_pk = tenant_pk
        self._redis = shared_redis(settings)
        self._key = usage_keys(tenant_key).live
        self._warned_at = 0.0

    def __call__(self, api: str, status: int) -> None:
        """Count one call to `api` that Xero or Cin7 answered with `status` (429s counted apart)."""
        day = datetime.now(UTC).date().isoformat()
        limited = int(status == 429)
        if self._redis is not None:
            try:
                if limited:
                    pipe = self._redis.pipeline(transaction=False)
                    pipe.hincrby(self._key, f"{day}|{api}|calls", 1)
                    pipe.hincrby(self._key, f"{day}|{api}|429", 1)
                    pipe.execute()
                else:
                    self._redis.hincrby(self._key, f"{day}|{api}|calls", 1)
                return
            except redis.RedisError as exc:
                # A call that was made is counted somewhere: the ledger, until Redis is back.
                now = time.monotonic()
                if now - self._warned_at > 30:
                    self._warned_at = now
                    log.warning("API usage: Redis unavailable (%s); counting in the ledger", exc)
        with self._sessions() as session, session.begin():
            add_usage(session, self._tenant_pk, {(day, api): (1, limited)})


@dataclass
class TenantContext:
    """What a task needs to work for one tenant."""

    settings: Settings
    tenant_pk: int
    tenant_key: str
    sessions: sessionmaker[Session]
    limiter: RateLimiter
    _lock: threading.Lock = field(default_factory=threading.Lock)

    _rules: tuple[float | None, MappingRules] | None = None

    @property
    def rules(self) -> MappingRules:
        """Mapping rules: the packaged defaults merged with MAPPING_RULES_FILE.

        Re-read when the file changes, so that an operator who fixes a tax rule and requeues the dead
        letters does not have to restart the workers first.
        """
        path = self.settings.mapping_rules_file
        try:
            stamp = path.stat().st_mtime if path is not None else None
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if self._rules is None or self._rules[0] != stamp:
                loaded = load_rules(path if stamp is not None else None)
                self._rules = (stamp, loaded.model_copy(update={"invoice_status": self.settings.xero_invoice_status}))
            return self._rules[1]

    @cached_property
    def cin7(self) -> Source:
        """The tenant's Cin7 source (today always Cin7 Core), sharing the per-application rate limit."""
        recorder = UsageRecorder(self.sessions, self.tenant_pk, self.tenant_key, self.settings)
        return Cin7Client(self.settings, limiter=self.limiter, on_call=lambda _path, status: recorder("cin7", status))

    @cached_property
    def xero_tokens(self) -> XeroTokenManager:
        """Token manager for this tenant's Xero connection."""
        return XeroTokenManager(self.settings, self.tenant_pk, self.sessions)

    @cached_property
    def xero(self) -> XeroClient:
        """The Xero client, bound to the tenant id (configured, stored, or read from /connections)."""
        recorder = UsageRecorder(self.sessions, self.tenant_pk, self.tenant_key, self.settings)
        client = XeroClient(
            self.settings,
            self.xero_tokens,
            tenant_id=self.settings.xero_tenant_id or "",
            limit_key=self.tenant_key,
            limiter=self.limiter,
            on_call=lambda _label, status: recorder("xero", status),
        )
        if not client.tenant_id:
            with self.sessions() as session, session.begin():
                tenant = session.get(Tenant, self.tenant_pk)
                assert tenant is not None
                if not tenant.xero_tenant_id:
                    tenant.xero_tenant_id = client.connections_tenant_id()
                client.tenant_id = tenant.xero_tenant_id
        return client


_contexts: dict[tuple[str, str], TenantContext] = {}
_contexts_lock = threading.Lock()


def tenant_context(tenant_key: str | None = None, settings: Settings | None = None) -> TenantContext:
    """The (cached) context for a tenant of this deployment."""
    settings = settings or get_settings()
    key = tenant_key or settings.tenant_key
    cache_key = (settings.database_url, key)
    with _contexts_lock:
        context = _contexts.get(cache_key)
        if context is None:
            sessions = sessionmaker(bind=engine_for(settings.database_url), expire_on_commit=False)
            with sessions() as session, session.begin():
                # Looked up by its own key: a context cached under one key must hold that tenant's row.
                tenant = ensure_tenant(session, settings, key)
                tenant_pk = tenant.id
            context = TenantContext(
                settings=settings,
                tenant_pk=tenant_pk,
                tenant_key=key,
                sessions=sessions,
                limiter=limiter_for(settings.redis_url),
            )
            _contexts[cache_key] = context
        return context


def forget_contexts() -> None:
    """Drop cached contexts (after fork, or when tests switch databases)."""
    with _contexts_lock:
        _contexts.clear()

"""Per-tenant context: the ledger row, the clients and the mapping rules a task needs.

Built once per process per tenant and reused (connections and tokens stay warm); everything in it is
safe to share between the threads of one process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mappings import MappingRules, load_rules
from pipeline.cin7.client import Cin7Client
from pipeline.db import engine_for
from pipeline.ledger.models import ApiUsage, Tenant
from pipeline.ledger.ops import dialect_insert
from pipeline.ratelimit import RateLimiter, limiter_for
from pipeline.settings import Settings, get_settings
from pipeline.xero.auth import XeroTokenManager
from pipeline.xero.client import XeroClient


def ensure_tenant(session: Session, settings: Settings) -> Tenant:
    """The tenant row for this deployment's configured pair, created on first use."""
    tenant = session.scalar(select(Tenant).where(Tenant.key == settings.tenant_key))
    if tenant is None:
        session.execute(
            dialect_insert(session, Tenant)
            .values(
                key=settings.tenant_key,
                name=settings.tenant_key,
                cin7_account_id=settings.cin7_account_id,
                created_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        session.flush()
        tenant = session.scalar(select(Tenant).where(Tenant.key == settings.tenant_key))
        assert tenant is not None
    return tenant


class UsageRecorder:
    """Counts API calls per tenant and day in the ledger (what the summary calls "Xero calls used")."""

    def __init__(self, sessions: sessionmaker[Session], tenant_pk: int) -> None:
        self._sessions = sessions
        self._tenant_pk = tenant_pk

    def __call__(self, api: str, status: int) -> None:
        day = datetime.now(UTC).date().isoformat()
        with self._sessions() as session, session.begin():
            statement = dialect_insert(session, ApiUsage).values(
                tenant_id=self._tenant_pk, api=api, day=day, calls=1, rate_limited=int(status == 429)
            )
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["tenant_id", "api", "day"],
                    set_={
                        "calls": ApiUsage.calls + 1,
                        "rate_limited": ApiUsage.rate_limited + int(status == 429),
                    },
                )
            )


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
    def cin7(self) -> Cin7Client:
        """The Cin7 Core client, sharing the per-application rate limit."""
        recorder = UsageRecorder(self.sessions, self.tenant_pk)
        return Cin7Client(self.settings, limiter=self.limiter, on_call=lambda _path, status: recorder("cin7", status))

    @cached_property
    def xero_tokens(self) -> XeroTokenManager:
        """Token manager for this tenant's Xero connection."""
        return XeroTokenManager(self.settings, self.tenant_pk, self.sessions)

    @cached_property
    def xero(self) -> XeroClient:
        """The Xero client, bound to the tenant id (configured, stored, or read from /connections)."""
        recorder = UsageRecorder(self.sessions, self.tenant_pk)
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
                tenant = ensure_tenant(session, settings)
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

"""The ledger: the source of truth for what has been seen in Cin7 and what Xero holds.

Every row is keyed by tenant from the start, so that one deployment can serve many
(Cin7 account, Xero organisation) pairs. The broker only carries ids that point here: a lost message
is healed by the sweep from these rows, a duplicate one finds its row already done.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Store UTC; a naive datetime is a bug, refused rather than guessed."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime written to the ledger")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Read back as aware UTC (SQLite returns naive values)."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Aware now() in UTC; the one clock the ledger uses."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base for every ledger table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        date: Date(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class DocumentState(enum.StrEnum):
    """Where one Cin7 document stands on its way to Xero.

    pending -> (map) -> ready -> (claim) -> writing -> synced | dead | conflict | voided
    retry: a transient failure; `next_attempt_at` says when the sweep sends it again.
    ignored: nothing to do in Xero (a draft, or voided before it was ever synced).
    waiting: held until another document of its sale is in Xero (a payment for its invoice); woken
    when that one is written, not polled.
    locked: dated on or before Xero's lock date: never written (a person decides).
    """

    PENDING = "pending"
    WAITING = "waiting"
    LOCKED = "locked"
    READY = "ready"
    WRITING = "writing"
    RETRY = "retry"
    SYNCED = "synced"
    VOIDED = "voided"
    IGNORED = "ignored"
    CONFLICT = "conflict"
    DEAD = "dead"


IN_FLIGHT_STATES = (DocumentState.PENDING, DocumentState.READY, DocumentState.WRITING, DocumentState.RETRY)


class SaleState(enum.StrEnum):
    """A Cin7 sale header: discovered by a poll (or webhook), then its detail fetched."""

    DISCOVERED = "discovered"
    FETCHED = "fetched"
    RETRY = "retry"
    DEAD = "dead"


class Tenant(Base):
    """One Cin7 account paired with one Xero organisation."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    cin7_account_id: Mapped[str] = mapped_column(String(64), default="")
    xero_tenant_id: Mapped[str | None] = mapped_column(String(64))
    # Writes for this tenant are held until then (day limit reached, credentials revoked, ...).
    paused_until: Mapped[datetime | None]
    pause_reason: Mapped[str | None] = mapped_column(Text)
    # What the mapping checks documents against (pipeline.mapping.reference): Xero's active account codes
    # and Rounding account, its tax rates, Cin7's tax rules. Cached: it changes hourly at most.
    reference: Mapped[dict[str, Any] | None]
    reference_fetched_at: Mapped[datetime | None]
    # One writer drains a tenant's ready documents at a time, so that writes coalesce into full
    # batches; the lease expires on its own if that writer dies.
    write_lease_owner: Mapped[str | None] = mapped_column(String(64))
    write_lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TenantRow:
    """A row that belongs to one tenant, with a surrogate key (BIGINT in PostgreSQL)."""

    # sort_order keeps these first in the table, as the migrations create them.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, sort_order=-2)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), sort_order=-1)


class ParentKind(enum.StrEnum):
    """What a parent record is: the Cin7 document whose detail holds the ledger's documents."""

    SALE = "sale"
    PURCHASE = "purchase"


class PartyKind(enum.StrEnum):
    """Whom a party record describes: the Cin7 customer or supplier a Xero contact stands for."""

    CUSTOMER = "customer"
    SUPPLIER = "supplier"


class SaleRecord(TenantRow, Base):
    """A Cin7 sale (or, with kind `purchase`, a purchase) as last listed, with the detail snapshot the
    mapping reads. Purchases share the table because their life is the sale's: listed, fetched, retried.
    """

    __tablename__ = "cin7_sales"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sale_id", name="uq_cin7_sales_tenant_sale"),
        Index("ix_cin7_sales_state", "tenant_id", "state"),
    )

    sale_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default=ParentKind.SALE, server_default=ParentKind.SALE.value)
    order_number: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="cin7core")
    # `Updated` from saleList: a newer value means the detail must be read again.
    listed_updated: Mapped[datetime | None]
    fetched_updated: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default=SaleState.DISCOVERED)
    snapshot: Mapped[dict[str, Any] | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    discovered_at: Mapped[datetime] = mapped_column(default=utcnow)
    fetched_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CustomerRecord(TenantRow, Base):
    """A Cin7 customer (or, with kind `supplier`, supplier) snapshot, read in bulk pages so that no order
    needs its own call. Ids are Cin7 GUIDs, unique across both.
    """

    __tablename__ = "cin7_customers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "customer_id", name="uq_cin7_customers_tenant_customer"),
        Index("ix_cin7_customers_tax", "tenant_id", "tax_key"),
    )

    customer_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default=PartyKind.CUSTOMER, server_default=PartyKind.CUSTOMER.value)
    snapshot: Mapped[dict[str, Any]]
    # The ABN (11 digits) of its TaxNumber: a customer and a supplier with one are one Xero contact.
    tax_key: Mapped[str | None] = mapped_column(String(32))
    last_modified_on: Mapped[datetime | None]
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncDocument(TenantRow, Base):
    """One Cin7 document (a sale invoice or credit note, a payment, refund or allocation) and its Xero one.

    Natural key: (tenant, source, kind, sale id, task id). `source_hash` is the Cin7 content we last read;
    `payload_hash` the Xero payload mapped from it; `synced_hash` the payload Xero confirmed.
    """

    __tablename__ = "sync_documents"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "kind", "sale_id", "task_id", name="uq_sync_documents_natural_key"),
        Index("ix_sync_documents_state", "tenant_id", "state"),
        # A fetch counts and reads its sale's documents (the natural key puts source and kind first).
        Index("ix_sync_documents_sale", "tenant_id", "sale_id"),
        Index("ix_sync_documents_number", "tenant_id", "kind", "document_number"),
        Index("ix_sync_documents_migration", "migration_id", "state"),
    )

    # The Source that read it (`Source.name`): ids are unique only within one source.
    source: Mapped[str] = mapped_column(String(24), default="cin7core", server_default="cin7core")
    kind: Mapped[str] = mapped_column(String(24), default="invoice")
    sale_id: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str] = mapped_column(String(64))
    document_number: Mapped[str | None] = mapped_column(String(255))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    cin7_status: Mapped[str | None] = mapped_column(String(24))
    cin7_modified_at: Mapped[datetime | None]
    # The document's own date (invoice, credit note, payment or allocation date): what Xero's lock date
    # and the cutover (SYNC_START_DATE) are compared with, and the order a migration writes in.
    document_date: Mapped[date | None]
    # Set for documents a historical migration brought in (`cin7xero migrate run`); the writer takes
    # live documents first.
    migration_id: Mapped[int | None] = mapped_column(ForeignKey("migration_runs.id"))
    source_hash: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any] | None]
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    # The source_hash the current payload was mapped from: a Cin7 edit that lands while a write is
    # in flight is noticed when the write completes.
    mapped_source_hash: Mapped[str | None] = mapped_column(String(64))
    # What the pending write does: create | update | void | delete.
    action: Mapped[str | None] = mapped_column(String(16))
    synced_hash: Mapped[str | None] = mapped_column(String(64))
    xero_id: Mapped[str | None] = mapped_column(String(64))
    xero_status: Mapped[str | None] = mapped_column(String(16))
    xero_totals: Mapped[dict[str, Any] | None]
    state: Mapped[str] = mapped_column(String(16), default=DocumentState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A write was sent and its outcome is unknown (lost response, killed worker): look Xero up first.
    write_uncertain: Mapped[bool] = mapped_column(default=False)
    # The contact name a create sent for a customer new to Xero (Xero finds or creates by it). While the
    # outcome is uncertain, the name is reserved: no other customer may take or adopt that contact.
    inline_contact_name: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(String(32))
    next_attempt_at: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    discovered_at: Mapped[datetime] = mapped_column(default=utcnow)
    synced_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MigrationRun(Base):
    """One historical migration of a date window: its test runs (plans) and its cutover."""

    __tablename__ = "migration_runs"
    __table_args__ = (Index("ix_migration_runs_tenant", "tenant_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    window_from: Mapped[date]
    window_until: Mapped[date]
    state: Mapped[str] = mapped_column(String(16), default="planned")  # planned | running | done
    update_conflicts: Mapped[bool] = mapped_column(default=False)
    # The last plan's counts and cost (plan.json has every document).
    plan: Mapped[dict[str, Any] | None]
    report_dir: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    planned_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ContactLink(TenantRow, Base):
    """Cin7 customer id <-> Xero ContactID, with the name Xero holds (it may be a de-clashed variant)."""

    __tablename__ = "contact_links"
    __table_args__ = (
        UniqueConstraint("tenant_id", "cin7_customer_id", name="uq_contact_links_customer"),
        Index("ix_contact_links_xero", "tenant_id", "xero_contact_id"),
    )

    cin7_customer_id: Mapped[str] = mapped_column(String(64))
    xero_contact_id: Mapped[str] = mapped_column(String(64))
    xero_name: Mapped[str] = mapped_column(String(255))
    # How the link was made: created | created_inline | adopted_number | adopted_email | adopted_name
    linked_by: Mapped[str] = mapped_column(String(24))
    # Why the Xero name differs from Cin7's, when it does (a name clash).
    name_note: Mapped[str | None] = mapped_column(Text)
    source_hash: Mapped[str | None] = mapped_column(String(64))
    # What of the customer Xero has from us: a contact created inside an invoice carries only its name,
    # an adopted one not yet our ContactNumber. Pushes wait for quiet moments (contacts.push_contacts).
    pushed_at: Mapped[datetime | None]
    pushed_source_hash: Mapped[str | None] = mapped_column(String(64))
    # The customer's Cin7 LastModifiedOn when last pushed (or checked): a newer one is an edit to send.
    pushed_modified_on: Mapped[datetime | None]
    push_error: Mapped[str | None] = mapped_column(Text)
    # The Cin7 people the Xero contact could not carry, each with the reason (Xero keeps five others
    # besides the primary, and none without a primary e-mail), as of its last create or push.
    people_left_out: Mapped[list[Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PollCursor(Base):
    """How far a Cin7 stream has been read (the UpdatedSince watermark)."""

    __tablename__ = "poll_cursors"
    __table_args__ = (UniqueConstraint("tenant_id", "stream", name="uq_poll_cursors_stream"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    stream: Mapped[str] = mapped_column(String(32))
    watermark: Mapped[datetime | None]
    # Where the first poll started reading (now minus CIN7_INITIAL_LOOKBACK_DAYS): the live sync covers
    # what changed since then.
    covers_from: Mapped[datetime | None]
    last_polled_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OAuthToken(Base):
    """The Xero token set for a tenant, encrypted at rest (Fernet)."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (UniqueConstraint("tenant_id", "provider", name="uq_oauth_tokens_provider"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    provider: Mapped[str] = mapped_column(String(16), default="xero")
    grant: Mapped[str] = mapped_column(String(24))  # client_credentials | authorization_code
    encrypted_token: Mapped[str] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None]
    refresh_token_issued_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeadLetter(TenantRow, Base):
    """A document that needs a person: what failed, where, why (Xero's words), and what was sent."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_open", "tenant_id", "resolved_at"),)

    document_id: Mapped[int | None] = mapped_column(ForeignKey("sync_documents.id"))
    kind: Mapped[str] = mapped_column(String(24), default="invoice")
    sale_id: Mapped[str | None] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(64))
    document_number: Mapped[str | None] = mapped_column(String(255))
    stage: Mapped[str] = mapped_column(String(16))  # fetch | map | contact | write
    error_class: Mapped[str] = mapped_column(String(32))
    messages: Mapped[list[Any]]
    payload: Mapped[dict[str, Any] | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    requeued_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]


class ApiUsage(Base):
    """Calls made to each API per tenant and UTC day: the "Xero calls used" an operator sees."""

    __tablename__ = "api_usage"
    __table_args__ = (UniqueConstraint("tenant_id", "api", "day", name="uq_api_usage_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    api: Mapped[str] = mapped_column(String(16))
    day: Mapped[str] = mapped_column(String(10))
    calls: Mapped[int] = mapped_column(Integer, default=0)
    rate_limited: Mapped[int] = mapped_column(Integer, default=0)


class AlertState(Base):
    """One open problem per (tenant, error class): alerts go out once per window, not once per order."""

    __tablename__ = "alert_states"
    __table_args__ = (UniqueConstraint("tenant_id", "error_class", name="uq_alert_states_class"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    error_class: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    last_sent_at: Mapped[datetime | None]
    # Occurrences since the last alert went out, and a few examples of them.
    pending_count: Mapped[int] = mapped_column(Integer, default=0)
    total_count: Mapped[int] = mapped_column(Integer, default=0)
    examples: Mapped[list[Any] | None]
    closed_at: Mapped[datetime | None]


class WebhookEvent(TenantRow, Base):
    """A Cin7 webhook delivery, recorded before it is acknowledged (an inbox with a unique key)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "dedupe_key", name="uq_webhook_events_dedupe"),
        Index("ix_webhook_events_state", "tenant_id", "state"),
    )

    event_type: Mapped[str] = mapped_column(String(64))
    # Identifies a repeated delivery of the same event (type + document ids + body hash).
    dedupe_key: Mapped[str] = mapped_column(String(128))
    sale_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any] | list[Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="received")  # received | enqueued | done | ignored
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class ReconciliationRun(Base):
    """One comparison of Cin7 and Xero over a date window, with every discrepancy found."""

    __tablename__ = "reconciliation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    window_from: Mapped[datetime | None]
    window_until: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    healed: Mapped[bool] = mapped_column(default=False)
    summary: Mapped[dict[str, Any] | None]
    findings: Mapped[list[Any] | None]
    report_dir: Mapped[str | None] = mapped_column(Text)


class XeroContactCache(TenantRow, Base):
    """What Xero's contact list holds, read in bulk pages (in full on the first run, then what changed).

    Contact resolution looks here instead of searching Xero per batch; a Xero-side uniqueness error
    still falls back to a targeted search, so a contact created in Xero since the last read is found.
    """

    __tablename__ = "xero_contacts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "contact_id", name="uq_xero_contacts_contact"),
        Index("ix_xero_contacts_number", "tenant_id", "number_key"),
        Index("ix_xero_contacts_email", "tenant_id", "email_key"),
        Index("ix_xero_contacts_name", "tenant_id", "name_key"),
        Index("ix_xero_contacts_tax", "tenant_id", "tax_key"),
        Index("ix_xero_contacts_domain", "tenant_id", "domain_key"),
        Index("ix_xero_contacts_website", "tenant_id", "website_key"),
    )

    contact_id: Mapped[str] = mapped_column(String(64))
    # The contact as Xero returned it (Name, ContactNumber, EmailAddress, ContactStatus, TaxNumber, Website).
    contact: Mapped[dict[str, Any]]
    number_key: Mapped[str | None] = mapped_column(String(64))
    email_key: Mapped[str | None] = mapped_column(String(255))
    name_key: Mapped[str | None] = mapped_column(String(255))
    # Its ABN (11 digits), and the domains of its e-mail and website: what suppliers are matched on.
    tax_key: Mapped[str | None] = mapped_column(String(32))
    domain_key: Mapped[str | None] = mapped_column(String(255))
    website_key: Mapped[str | None] = mapped_column(String(255))
    refreshed_at: Mapped[datetime] = mapped_column(default=utcnow)

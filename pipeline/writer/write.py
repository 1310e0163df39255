"""Ledger -> Xero: map each pending document, then write ready documents to Xero in batches.

Writes coalesce through the ledger: a write task claims up to 50 `ready` rows of its tenant (its own
first) by an UPDATE that only takes rows still `ready`, so concurrent writers never share a row, and
a writer whose row was already taken by another has nothing to do. One Xero call then carries the
whole batch (summarizeErrors=false), and each element's result goes back to its own row.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import redis
from sqlalchemy import func, or_, select, update

from mappings import (
    Cin7Customer,
    Cin7Sale,
    InvoiceAction,
    MappingError,
    XeroInvoiceStatus,
    content_hash,
    decide_invoice_action,
    map_invoice,
    normalise_name,
    void_payload,
)
from pipeline.contacts.resolve import (
    PUSH_BATCH,
    ContactResult,
    InlineContact,
    ensure_contacts,
    link_inline,
    push_backlog,
    push_contacts,
)
from pipeline.context import TenantContext, shared_redis
from pipeline.errors import ErrorClass, SyncError, pause_seconds
from pipeline.idempotency import idempotency_key
from pipeline.ledger.models import (
    ContactLink,
    CustomerRecord,
    DeadLetter,
    DocumentState,
    SaleRecord,
    SyncDocument,
    Tenant,
    utcnow,
)
from pipeline.operations import alerts
from pipeline.recovery.deadletters import record_dead_letter, resolve_dead_letters
from pipeline.xero.client import from_sdk, to_sdk

log = logging.getLogger(__name__)

ACCOUNTS_TTL = timedelta(hours=1)
# After a failed read of the chart of accounts, mapping tasks wait this long before anyone asks again.
ACCOUNTS_RETRY_AFTER = timedelta(seconds=5)


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter (attempt 1 -> up to base, doubling, capped)."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)


# --- tenant pause ----------------------------------------------------------------------------------


class TenantPaused(SyncError):
    """The tenant is parked (day limit, configuration): work that needs Xero waits for the pause."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(ErrorClass.DAY_LIMIT, message, api="xero", retry_after=retry_after)


def pause_tenant(ctx: TenantContext, error: SyncError) -> float | None:
    """Park the tenant's writes when the error says the whole tenant must wait; return the pause.

    Day limit: until Xero's Retry-After (the limit resets). Configuration (403, revoked consent): a
    fixed pause, then the sweep tries again, so a repaired connection resumes without anyone
    requeueing. The pause only ever lengthens, so a short wait cannot cut a long one short.
    """
    seconds = pause_seconds(error)
    if seconds is None or isinstance(error, TenantPaused):
        return seconds
    until = utcnow() + timedelta(seconds=seconds)
    reason = f"{error.error_class.value}: {error.message}"[:4000]
    with ctx.sessions() as session, session.begin():
        tenant = session.scalar(select(Tenant).where(Tenant.id == ctx.tenant_pk).with_for_update())
        assert tenant is not None
        if tenant.paused_until is None or tenant.paused_until < until:
            tenant.paused_until = until
        tenant.pause_reason = reason
        alerts.note_problem(session, ctx.tenant_pk, error.error_class, reason)
    log.warning("tenant %s paused for %.0fs: %s", ctx.tenant_key, seconds, reason)
    return seconds


def paused_for(ctx: TenantContext) -> float | None:
    """Seconds left in the tenant's pause, or None when it may write."""
    with ctx.sessions() as session:
        until = session.scalar(select(Tenant.paused_until).where(Tenant.id == ctx.tenant_pk))
    if until is None:
        return None
    left = (until - utcnow()).total_seconds()
    return left if left > 0 else None


def _resume_after_success(ctx: TenantContext) -> None:
    """A write went through: a past pause is over, and its alert (if any) may announce recovery."""
    with ctx.sessions() as session, session.begin():
        tenant = session.scalar(
            select(Tenant).where(Tenant.id == ctx.tenant_pk, Tenant.pause_reason.is_not(None)).with_for_update()
        )
        if tenant is None or (tenant.paused_until is not None and tenant.paused_until > utcnow()):
            return
        log.info("tenant %s resumed after: %s", ctx.tenant_key, tenant.pause_reason)
        tenant.paused_until = None
        tenant.pause_reason = None
        for error_class in (ErrorClass.DAY_LIMIT, ErrorClass.CONFIGURATION):
            alerts.note_recovery(session, ctx.tenant_pk, error_class)


# --- mapping -------------------------------------------------------------------------------------


# Each process keeps the tenant's codes this long before it reads the tenant row again: one mapping
# per order would otherwise pay a ledger round trip for a list that changes hourly at most.
ACCOUNTS_PROCESS_TTL_SECONDS = 30.0
_process_accounts: dict[tuple[str, int], tuple[float, frozenset[str]]] = {}


def valid_account_codes(ctx: TenantContext) -> frozenset[str] | None:
    """Xero's active account codes: cached in the process briefly, and on the tenant row for an hour."""
    key = (ctx.settings.database_url, ctx.tenant_pk)
    cached_here = _process_accounts.get(key)
    if cached_here is not None and time.monotonic() - cached_here[0] < ACCOUNTS_PROCESS_TTL_SECONDS:
        return cached_here[1]
    codes = _tenant_account_codes(ctx)
    if codes is not None:
        _process_accounts[key] = (time.monotonic(), codes)
    return codes


def _tenant_account_codes(ctx: TenantContext) -> frozenset[str] | None:
    """Xero's active account codes, cached on the tenant row for an hour.

    A failed read is remembered for ACCOUNTS_RETRY_AFTER (`accounts_fetched_at` set with no codes, or
    a stale list kept a little longer): otherwise, on a cold cache during a Xero outage, every
    mapping task would call Xero again and again, and spend the tenant's minute limit doing it.
    """
    now = utcnow()
    with ctx.sessions() as session:
        tenant = session.get(Tenant, ctx.tenant_pk)
        assert tenant is not None
        fetched_at = tenant.accounts_fetched_at
        cached = tenant.account_codes
        paused_reason = tenant.pause_reason
    if cached is not None and fetched_at is not None and now - fetched_at < ACCOUNTS_TTL:
        return frozenset(str(code) for code in cached)
    left = paused_for(ctx)
    if left is not None:
        # No Xero calls while paused: an hour-old chart is better than spending a parked tenant's calls.
        if cached is not None:
            return frozenset(str(code) for code in cached)
        raise TenantPaused(f"tenant paused ({paused_reason}); mapping waits", retry_after=left)
    if cached is None and fetched_at is not None and now - fetched_at < ACCOUNTS_RETRY_AFTER:
        wait = (fetched_at + ACCOUNTS_RETRY_AFTER - now).total_seconds()
        raise SyncError(
            ErrorClass.TRANSIENT, "Xero's chart of accounts could not be read just now", api="xero", retry_after=wait
        )
    try:
        accounts = ctx.xero.get_accounts()
    except SyncError:
        with ctx.sessions() as session, session.begin():
            tenant = session.get(Tenant, ctx.tenant_pk)
            assert tenant is not None
            # Stale codes stay usable a little longer; without any, the failure itself is remembered.
            tenant.accounts_fetched_at = (now - ACCOUNTS_TTL + ACCOUNTS_RETRY_AFTER) if cached is not None else now
        if cached is not None:
            log.warning("xero chart of accounts unavailable; mapping with the list from %s", fetched_at)
            return frozenset(str(code) for code in cached)
        raise
    codes = sorted(
        str(a["Code"]) for a in accounts if a.get("Code") and str(a.get("Status", "ACTIVE")).upper() == "ACTIVE"
    )
    with ctx.sessions() as session, session.begin():
        tenant = session.get(Tenant, ctx.tenant_pk)
        assert tenant is not None
        tenant.account_codes = codes
        tenant.accounts_fetched_at = utcnow()
    return frozenset(codes)


def map_document(ctx: TenantContext, doc_id: int) -> bool:
    """Map one pending document to its Xero payload; True when it is now ready to write."""
    accounts = valid_account_codes(ctx)
    with ctx.sessions() as session, session.begin():
        doc = session.scalar(select(SyncDocument).where(SyncDocument.id == doc_id).with_for_update())
        if doc is None or doc.state != DocumentState.PENDING:
            return False  # a duplicate message, or already handled
        sale_record = session.scalar(
            select(SaleRecord).where(SaleRecord.tenant_id == doc.tenant_id, SaleRecord.sale_id == doc.sale_id)
        )
        if sale_record is None or sale_record.snapshot is None:
            return False
        sale = Cin7Sale.model_validate(sale_record.snapshot)
        invoice = sale.invoice_by_task_id(doc.task_id)
        if invoice is None:
            # The invoice disappeared from the sale (Cin7 "Undo"): treat as voided.
            doc.cin7_status = "VOIDED"
        customer_record = session.scalar(
            select(CustomerRecord).where(
                CustomerRecord.tenant_id == doc.tenant_id, CustomerRecord.customer_id == (sale.customer_id or "")
            )
        )
        customer = Cin7Customer.model_validate(customer_record.snapshot) if customer_record else None
        synced = doc.xero_id is not None
        xero_status = XeroInvoiceStatus(doc.xero_status) if doc.xero_status else None
        payload: dict[str, Any] | None = None
        cin7_status = doc.cin7_status or "NOT AVAILABLE"
        if invoice is not None and cin7_status.upper() in ("AUTHORISED", "AUTHORIZED", "PAID"):
            try:
                mapped = map_invoice(sale, invoice, customer=customer, rules=ctx.rules, valid_accounts=accounts)
            except MappingError as exc:
                doc.attempts += 1
                record_dead_letter(
                    session,
                    doc,
                    stage="map",
                    error_class=ErrorClass.MAPPING,
                    messages=[p.message for p in exc.problems],
                    payload=None,
                )
                doc.mapped_source_hash = doc.source_hash
                return False
            payload = mapped.to_json()
        payload_hash = content_hash(payload) if payload is not None else None
        action = decide_invoice_action(
            cin7_status,
            synced=synced,
            xero_status=xero_status,
            xero_amount_paid=None,
            content_changed=payload_hash is not None and payload_hash != doc.synced_hash,
        )
        doc.mapped_source_hash = doc.source_hash
        doc.error_class = None
        # The map task counted this delivery in `attempts` to catch messages that kill workers; the
        # mapping finished, so the write starts its own count from zero.
        doc.attempts = 0
        match action:
            case InvoiceAction.SKIP:
                doc.state = DocumentState.IGNORED
                doc.action = None
                # e.g. a dead-lettered invoice that was then voided in Cin7: nothing needs a person now.
                resolve_dead_letters(session, doc)
                return False
            case InvoiceAction.NOTHING:
                doc.state = (
                    DocumentState.VOIDED
                    if doc.xero_status in (XeroInvoiceStatus.VOIDED, XeroInvoiceStatus.DELETED)
                    else DocumentState.SYNCED
                )
                doc.action = None
                return False
            case InvoiceAction.CONFLICT:
                doc.state = DocumentState.CONFLICT
                doc.error_class = ErrorClass.CONFLICT.value
                doc.last_error = f"Xero invoice is {doc.xero_status}; the Cin7 change ({cin7_status}) was not applied"
                return False
            case InvoiceAction.CREATE | InvoiceAction.UPDATE:
                assert payload is not None and payload_hash is not None
                doc.payload = payload
                doc.payload_hash = payload_hash
                doc.action = action.value
            case InvoiceAction.VOID | InvoiceAction.DELETE:
                assert doc.xero_id is not None
                doc.payload = void_payload(doc.xero_id, doc.document_number or "", action).to_json()
                doc.payload_hash = content_hash(doc.payload)
                doc.action = action.value
        doc.state = DocumentState.READY
        doc.enqueued_at = utcnow()
        return True


# --- writing -------------------------------------------------------------------------------------


@dataclass
class WriteOutcome:
    """What a write round did, for the task to report and schedule."""

    claimed: int = 0
    synced: int = 0
    dead: int = 0
    conflicts: int = 0
    retry_in: float | None = None
    # Documents whose Cin7 source changed while they were being written: map them again.
    to_map: list[int] = field(default_factory=list)
    # Invoice numbers Xero confirmed, so that an operator following one invoice finds its write task.
    written: list[str] = field(default_factory=list)
    contacts_pushed: int = 0


def _claim(ctx: TenantContext, first_id: int | None) -> tuple[str, list[int]]:
    """Claim up to a batch of ready rows for this tenant, `first_id` first."""
    token = uuid.uuid4().hex
    limit = ctx.settings.xero_batch_size
    with ctx.sessions() as session, session.begin():
        candidates: list[int] = []
        if first_id is not None:
            candidates.append(first_id)
        candidates.extend(
            session.scalars(
                select(SyncDocument.id)
                .where(SyncDocument.tenant_id == ctx.tenant_pk, SyncDocument.state == DocumentState.READY)
                .order_by(SyncDocument.id)
                .limit(limit)
            )
        )
        ids = list(dict.fromkeys(candidates))[:limit]
        if not ids:
            return token, []
        # Only rows still `ready` are taken: a concurrent writer that got there first keeps them.
        session.execute(
            update(SyncDocument)
            .where(SyncDocument.id.in_(ids), SyncDocument.state == DocumentState.READY)
            .values(state=DocumentState.WRITING, claim_token=token, claimed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    with ctx.sessions() as session:
        claimed = list(
            session.scalars(select(SyncDocument.id).where(SyncDocument.claim_token == token).order_by(SyncDocument.id))
        )
    return token, claimed


def ready_count(ctx: TenantContext) -> int:
    """How many documents wait for a writer."""
    with ctx.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(SyncDocument)
                .where(SyncDocument.tenant_id == ctx.tenant_pk, SyncDocument.state == DocumentState.READY)
            )
            or 0
        )


WRITE_LEASE = timedelta(seconds=120)


def _lease_length(ctx: TenantContext) -> timedelta:
    """The writer lease never outlives STUCK_AFTER_SECONDS.

    A writer SIGKILLed mid-batch leaves its lease behind; the sweep hands its rows back after
    STUCK_AFTER_SECONDS, and a lease that lasted longer would leave them ready with nobody allowed to
    write them. Correctness never depends on the lease (claims are per row); it only keeps batches full.
    """
    return min(WRITE_LEASE, timedelta(seconds=ctx.settings.stuck_after_seconds))


def _acquire_lease(ctx: TenantContext) -> str | None:
    """Become the tenant's writer, unless another live writer already is."""
    owner = uuid.uuid4().hex
    now = utcnow()
    with ctx.sessions() as session, session.begin():
        taken = session.execute(
            update(Tenant)
            .where(
                Tenant.id == ctx.tenant_pk,
                or_(Tenant.write_lease_until.is_(None), Tenant.write_lease_until < now),
            )
            .values(write_lease_owner=owner, write_lease_until=now + _lease_length(ctx))
            .execution_options(synchronize_session=False)
        )
    return owner if getattr(taken, "rowcount", 0) == 1 else None


def _renew_lease(ctx: TenantContext, owner: str) -> None:
    with ctx.sessions() as session, session.begin():
        session.execute(
            update(Tenant)
            .where(Tenant.id == ctx.tenant_pk, Tenant.write_lease_owner == owner)
            .values(write_lease_until=utcnow() + _lease_length(ctx))
            .execution_options(synchronize_session=False)
        )


def _release_lease(ctx: TenantContext, owner: str) -> None:
    with ctx.sessions() as session, session.begin():
        session.execute(
            update(Tenant)
            .where(Tenant.id == ctx.tenant_pk, Tenant.write_lease_owner == owner)
            .values(write_lease_owner=None, write_lease_until=None)
            .execution_options(synchronize_session=False)
        )


GATHER_POLL_SECONDS = 0.05
# A write message says "drain this tenant"; one pending is enough. The key expires so that a lost
# message cannot silence the tenant for long (the sweep also re-sends stale ready rows).
WRITE_PENDING_TTL_SECONDS = 60


def _write_pending_key(ctx: TenantContext) -> str:
    return f"cin7xero:write-pending:{ctx.tenant_key}"


def claim_write_message(ctx: TenantContext) -> bool:
    """True when the caller should send a write message (none is pending for the tenant)."""
    client = shared_redis(ctx.settings)
    if client is None:
        return True
    try:
        return bool(client.set(_write_pending_key(ctx), "1", nx=True, ex=WRITE_PENDING_TTL_SECONDS))
    except redis.RedisError:
        return True


def release_write_message(ctx: TenantContext) -> None:
    """A writer has started: rows made ready from now on need (and may send) a new message."""
    client = shared_redis(ctx.settings)
    if client is None:
        return
    try:
        client.delete(_write_pending_key(ctx))
    except redis.RedisError:
        log.warning("could not clear the pending-write flag; it expires in %ss", WRITE_PENDING_TTL_SECONDS)


def _ready_backlog(ctx: TenantContext) -> tuple[int, float]:
    """(documents waiting for a writer, seconds the longest-waiting of them has waited), in one query."""
    with ctx.sessions() as session:
        count, oldest = session.execute(
            select(func.count(), func.min(SyncDocument.enqueued_at)).where(
                SyncDocument.tenant_id == ctx.tenant_pk, SyncDocument.state == DocumentState.READY
            )
        ).one()
    age = 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
    return int(count or 0), age


# When a batch was last sent per tenant, for processes without Redis (the demo); with Redis the time
# is shared, since the writer lease moves between processes from one write message to the next.
_last_flush: dict[tuple[str, int], float] = {}


def _last_flush_key(ctx: TenantContext) -> str:
    return f"cin7xero:last-flush:{ctx.tenant_key}"


def _last_flush_at(ctx: TenantContext) -> float:
    """Wall-clock time of the tenant's last batch (0 when unknown)."""
    client = shared_redis(ctx.settings)
    if client is not None:
        try:
            value = client.get(_last_flush_key(ctx))
            return float(value) if value else 0.0
        except (redis.RedisError, ValueError):
            pass
    return _last_flush.get((ctx.settings.database_url, ctx.tenant_pk), 0.0)


def _gather(ctx: TenantContext, batch_size: int) -> None:
    """Flush when a batch is full; a part batch once its oldest row has waited XERO_BATCH_WAIT_SECONDS
    and the tenant's even share of Xero's minute (window / calls: 1 s) has passed since the last one.

    The Xero call slot is taken first: while the shared minute is spent, rows keep becoming ready and
    the batch claimed afterwards carries them all. The even pacing keeps a steady trickle from
    spending a call per handful of invoices, which would leave nothing of the minute (or of Xero's
    5000-call day) for a burst; a full batch never waits for it.
    """
    wait = ctx.settings.xero_batch_wait_seconds
    if ready_count(ctx) == 0:
        return
    ctx.xero.reserve_slot()
    interval = ctx.settings.xero_rate_window_seconds / ctx.settings.xero_calls_per_window
    pace_until = _last_flush_at(ctx) + interval
    deadline = max(time.time() + wait, pace_until)
    while time.time() < deadline:
        waiting, age = _ready_backlog(ctx)
        if waiting >= batch_size or (age >= wait and time.time() >= pace_until):
            break
        time.sleep(GATHER_POLL_SECONDS)


def _flushed(ctx: TenantContext) -> None:
    now = time.time()
    _last_flush[(ctx.settings.database_url, ctx.tenant_pk)] = now
    client = shared_redis(ctx.settings)
    if client is not None:
        try:
            client.set(_last_flush_key(ctx), repr(now), ex=3600)
        except redis.RedisError:
            log.debug("could not share the last flush time; pacing is per process until Redis is back")


def write_ready(ctx: TenantContext, first_id: int | None, *, max_batches: int = 40) -> WriteOutcome:
    """Drain the tenant's ready documents in batches, as its only writer for now.

    A write task that finds another writer draining returns at once: that writer re-checks for
    ready rows after it lets go, so a row made ready while it held the lease is never stranded.
    """
    outcome = WriteOutcome()
    batch_size = ctx.settings.xero_batch_size
    while True:
        owner = _acquire_lease(ctx)
        if owner is None:
            return outcome
        try:
            for _ in range(max_batches):
                if push_backlog(ctx)[1] > ctx.settings.contact_push_max_delay_seconds:
                    # Invoices never stopped coming: contacts still get their turn, a batch at a time.
                    _push_contacts(ctx, outcome, rounds=1, reschedule=False)
                _gather(ctx, batch_size)
                pause = paused_for(ctx)
                if pause is not None:
                    # Parked (day limit, revoked consent): rows stay ready; the sweep or a countdown
                    # brings a writer back when the pause ends.
                    outcome.retry_in = pause
                    break
                token, ids = _claim(ctx, first_id)
                first_id = None
                if not ids:
                    break
                outcome.claimed += len(ids)
                _flushed(ctx)
                synced_before = outcome.synced
                _write_batch(ctx, token, ids, outcome)
                if outcome.synced > synced_before:
                    _resume_after_success(ctx)
                if outcome.retry_in is not None:
                    break
                _renew_lease(ctx, owner)
            if outcome.retry_in is None and ready_count(ctx) == 0:
                # Quiet: now the contact details and numbers invoices could not carry, in full batches
                # (a part batch once it has waited a little, so that a quiet tenant is not left short).
                waiting, age = push_backlog(ctx)
                quiet = ctx.settings.contact_push_quiet_seconds
                if waiting >= PUSH_BATCH or (waiting and age >= quiet):
                    _push_contacts(ctx, outcome, rounds=20)
                elif waiting:
                    outcome.retry_in = quiet - age + GATHER_POLL_SECONDS
        finally:
            _release_lease(ctx, owner)
        if outcome.retry_in is not None or ready_count(ctx) == 0:
            return outcome


def _push_contacts(ctx: TenantContext, outcome: WriteOutcome, *, rounds: int, reschedule: bool = True) -> None:
    """Push contacts in batches while there is something to push and no invoice is waiting."""
    for _ in range(rounds):
        try:
            pushed = push_contacts(ctx)
        except SyncError as error:
            pause = pause_tenant(ctx, error)
            log.warning("contact push failed (%s): %s", error.error_class.value, error.message)
            if pause is not None:
                outcome.retry_in = pause
            elif error.error_class.retryable:
                outcome.retry_in = error.retry_after or ctx.settings.retry_base_seconds
            return
        outcome.contacts_pushed += pushed.pushed
        if pushed.pushed + pushed.unchanged + pushed.failed == 0 or ready_count(ctx) > 0:
            return
        waiting, age = push_backlog(ctx)
        if waiting < PUSH_BATCH and age < ctx.settings.contact_push_quiet_seconds:
            if waiting:
                outcome.retry_in = ctx.settings.contact_push_quiet_seconds - age + GATHER_POLL_SECONDS
            return
    if reschedule and push_backlog(ctx)[0]:
        # Rounds used up with contacts still waiting: a fresh write message carries on (and lets other
        # tenants' work in between), rather than leaving them to the next sweep.
        outcome.retry_in = GATHER_POLL_SECONDS


def sdk_body_size(payload: dict[str, Any]) -> int:
    """Bytes this element adds to the request body exactly as xero-python sends it.

    The SDK's JSON is larger than our canonical form (", " separators, /Date()/ dates, defaults),
    so the split measures what goes over the wire.
    """
    return len(json.dumps(from_sdk(to_sdk("Invoice", payload))).encode()) + len(", ")


ENVELOPE_BYTES = len(json.dumps({"Invoices": []}).encode())


def split_by_size(
    items: Sequence[tuple[SyncDocument, dict[str, Any]]],
    max_bytes: int,
    measure: Callable[[dict[str, Any]], int] = sdk_body_size,
) -> list[list[tuple[SyncDocument, dict[str, Any]]]]:
    """Split a batch so that no request body exceeds `max_bytes` (Xero caps a request at 3.5 MB).

    A single element larger than the cap still goes alone: Xero's own 413 then names it.
    """
    chunks: list[list[tuple[SyncDocument, dict[str, Any]]]] = []
    current: list[tuple[SyncDocument, dict[str, Any]]] = []
    size = ENVELOPE_BYTES
    for item in items:
        item_size = measure(item[1])
        if current and size + item_size > max_bytes:
            chunks.append(current)
            current, size = [], ENVELOPE_BYTES
        current.append(item)
        size += item_size
    if current:
        chunks.append(current)
    return chunks


def _contact_id_for(payload: dict[str, Any], contacts: dict[str, str]) -> str | None:
    number = (payload.get("Contact") or {}).get("ContactNumber")
    return contacts.get(str(number).lower()) if number else None


def _customer_of(payload: dict[str, Any]) -> str | None:
    number = (payload.get("Contact") or {}).get("ContactNumber")
    return str(number).lower() if number else None


def _with_contact(payload: dict[str, Any], contact_id: str) -> dict[str, Any]:
    return {**payload, "Contact": {"ContactID": contact_id}}


def _with_contact_name(payload: dict[str, Any], name: str) -> dict[str, Any]:
    # Name alone: Xero finds the contact by name or creates it. ContactNumber stays out, since
    # sources disagree on whether an unknown number inside an invoice creates or fails.
    return {**payload, "Contact": {"Name": name}}


def _write_batch(ctx: TenantContext, token: str, ids: Sequence[int], outcome: WriteOutcome) -> None:
    with ctx.sessions() as session:
        docs = list(
            session.scalars(
                select(SyncDocument).where(SyncDocument.id.in_(list(ids)), SyncDocument.claim_token == token)
            )
        )
    creates = [d for d in docs if d.action == InvoiceAction.CREATE and d.xero_id is None]
    updates = [d for d in docs if d not in creates]
    try:
        # Creates that may already be in Xero come first: what they created decides the contacts of
        # everyone else in the batch.
        creates = _resolve_uncertain_creates(ctx, token, creates, outcome)
        needing = [d for d in docs if d.action in (InvoiceAction.CREATE, InvoiceAction.UPDATE) and d.customer_id]
        customer_ids = sorted({d.customer_id for d in needing if d.customer_id})
        # A customer only new invoices need can have its contact created by the invoice itself.
        inline_allowed = {d.customer_id for d in creates if d.customer_id} - {
            d.customer_id for d in updates if d.customer_id
        }
        contact_result = ensure_contacts(ctx, customer_ids, inline_allowed=inline_allowed) if customer_ids else None
        result = contact_result or ContactResult()
        # Contact failures are permanent for the documents that need them.
        for doc in list(creates) + list(updates):
            if doc.action in (InvoiceAction.CREATE, InvoiceAction.UPDATE) and doc.customer_id in result.failures:
                failure = result.failures[doc.customer_id]
                _dead(ctx, doc, token, "contact", failure.error_class, failure.messages, doc.payload, outcome)
                if doc in creates:
                    creates.remove(doc)
                else:
                    updates.remove(doc)
        if creates:
            _write_creates(ctx, token, creates, result, outcome)
        if updates:
            _write_updates(ctx, token, updates, result.contact_ids, outcome)
    except SyncError as error:
        _retry_all(ctx, token, docs, error, outcome)


def _dead(
    ctx: TenantContext,
    doc: SyncDocument,
    token: str,
    stage: str,
    error_class: ErrorClass,
    messages: Sequence[str],
    payload: dict[str, Any] | None,
    outcome: WriteOutcome,
) -> None:
    with ctx.sessions() as session, session.begin():
        row = session.scalar(select(SyncDocument).where(SyncDocument.id == doc.id, SyncDocument.claim_token == token))
        if row is None:
            return
        row.attempts += 1
        # Xero answered for this element (or it was never sent): its outcome is known.
        row.write_uncertain = False
        record_dead_letter(session, row, stage=stage, error_class=error_class, messages=messages, payload=payload)
    outcome.dead += 1


def _retry_all(
    ctx: TenantContext, token: str, docs: Sequence[SyncDocument], error: SyncError, outcome: WriteOutcome
) -> None:
    """A whole call failed: every document in it waits (or, out of attempts or permanent, is dead).

    A day limit or a configuration problem parks the whole tenant instead: its documents wait for the
    pause without spending attempts, and nobody gets a dead letter per invoice for one broken connection.
    """
    wait = 0.0
    pause = pause_tenant(ctx, error)
    with ctx.sessions() as session, session.begin():
        for doc in docs:
            row = session.scalar(
                select(SyncDocument).where(SyncDocument.id == doc.id, SyncDocument.claim_token == token)
            )
            if row is None:
                continue
            if error.error_class.counts_as_attempt:
                row.attempts += 1
            row.claim_token = None
            row.last_error = error.message[:4000]
            row.error_class = error.error_class.value
            # We cannot know whether Xero committed before the failure: look it up before creating again.
            row.write_uncertain = row.write_uncertain or error.error_class is ErrorClass.TRANSIENT
            if pause is not None:
                row.state = DocumentState.RETRY
                row.next_attempt_at = utcnow() + timedelta(seconds=pause)
                wait = max(wait, pause)
                continue
            if not error.error_class.retryable or row.attempts >= ctx.settings.max_attempts:
                error_class = error.error_class if not error.error_class.retryable else ErrorClass.POISON
                messages = (
                    error.messages
                    if not error.error_class.retryable
                    else [f"gave up after {row.attempts} attempts; last error: {error.message}"]
                )
                record_dead_letter(
                    session, row, stage="write", error_class=error_class, messages=messages, payload=row.payload
                )
                outcome.dead += 1
                continue
            delay = (
                error.retry_after
                if error.retry_after is not None
                else backoff_seconds(row.attempts, ctx.settings.retry_base_seconds, ctx.settings.retry_cap_seconds)
            )
            wait = max(wait, delay)
            row.state = DocumentState.RETRY
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)
    log.warning("xero write failed (%s), retrying in %.1fs: %s", error.error_class.value, wait, error.message)
    outcome.retry_in = wait


def _adoptable(found: dict[str, Any], contact_id: str | None) -> bool:
    """An existing Xero invoice with our number is ours if it is an ACCREC for the same contact."""
    contact = (found.get("Contact") or {}).get("ContactID")
    return str(found.get("Type", "ACCREC")).upper() == "ACCREC" and (contact_id is None or contact == contact_id)


def _write_creates(
    ctx: TenantContext, token: str, docs: list[SyncDocument], contacts: ContactResult, outcome: WriteOutcome
) -> None:
    if not docs:
        return
    sendable: list[tuple[SyncDocument, dict[str, Any]]] = []
    for doc in docs:
        payload = doc.payload or {}
        contact_id = _contact_id_for(payload, contacts.contact_ids)
        inline = contacts.inline.get(_customer_of(payload) or "")
        if contact_id is not None:
            sendable.append((doc, _with_contact(payload, contact_id)))
        else:
            assert inline is not None, "ensure_contacts returns every customer, inline or as a failure"
            sendable.append((doc, _with_contact_name(payload, inline.name)))
    with ctx.sessions() as session, session.begin():
        # From here the outcome is unknown until we read the response. A contact name sent for a new
        # customer is kept with it: Xero may have created that contact even if we never hear so.
        for doc, payload in sendable:
            name = (payload.get("Contact") or {}).get("Name")
            doc.inline_contact_name = str(name)[:255] if name else None
            session.execute(
                update(SyncDocument)
                .where(SyncDocument.id == doc.id, SyncDocument.claim_token == token)
                .values(write_uncertain=True, inline_contact_name=doc.inline_contact_name)
                .execution_options(synchronize_session=False)
            )
    duplicates: list[tuple[SyncDocument, dict[str, Any]]] = []
    for chunk in split_by_size(sendable, ctx.settings.xero_max_request_bytes):
        body = [payload for _, payload in chunk]
        results = ctx.xero.create_invoices(body, idempotency_key(ctx.tenant_key, "PUT /Invoices", body))
        landed: list[tuple[SyncDocument, dict[str, Any]]] = []
        for (doc, payload), result in zip(chunk, _align(results, body), strict=True):
            if result is not None and result.ok:
                landed.append((doc, result.data))
            elif result is not None and any("must be unique" in m.lower() for m in result.messages):
                duplicates.append((doc, payload))
            else:
                messages = result.messages if result is not None else ["Xero returned no result for this element"]
                _dead(ctx, doc, token, "write", ErrorClass.VALIDATION, messages, payload, outcome)
        _link_created_contacts(ctx, landed, contacts)
        _synced_all(ctx, token, landed, outcome)
    if duplicates:
        # The number exists in Xero: ours from a lost response (adopt), or someone else's (dead letter).
        found = {
            str(inv.get("InvoiceNumber")): inv
            for inv in ctx.xero.get_invoices(numbers=[d.document_number or "" for d, _ in duplicates])
        }
        for doc, payload in duplicates:
            existing = found.get(doc.document_number or "")
            if existing is None or not _adopt_found(ctx, token, doc, existing, contacts.contact_ids, outcome):
                _dead(
                    ctx,
                    doc,
                    token,
                    "write",
                    ErrorClass.VALIDATION,
                    [f"Invoice number {doc.document_number} already exists in Xero for another contact"],
                    payload,
                    outcome,
                )


def _link_created_contacts(
    ctx: TenantContext, landed: Sequence[tuple[SyncDocument, dict[str, Any]]], contacts: ContactResult
) -> None:
    """Customers whose contact an invoice of this batch named: link them to the contact Xero used."""
    created: dict[str, tuple[InlineContact, dict[str, Any]]] = {}
    for doc, data in landed:
        inline = contacts.inline.get(_customer_of(doc.payload or {}) or "")
        contact = data.get("Contact") or {}
        if inline is not None and contact.get("ContactID") and inline.customer_id not in created:
            created[inline.customer_id] = (inline, contact)
    if created:
        linked = link_inline(ctx, list(created.values()))
        contacts.contact_ids.update(linked)
        for customer_id in linked:
            contacts.inline.pop(customer_id, None)


def _resolve_uncertain_creates(
    ctx: TenantContext, token: str, creates: list[SyncDocument], outcome: WriteOutcome
) -> list[SyncDocument]:
    """Look up creates whose earlier attempt may have reached Xero; adopt those that did.

    The idempotency key only covers six minutes; the ledger and this lookup cover the rest. A found
    invoice is ours when it is an ACCREC on the customer's linked contact or, for a customer whose
    contact that attempt named, on a contact with the very name it sent: the customer is then linked
    to that contact, as if the lost answer had arrived. Returns the creates still to send.
    """
    uncertain = [d for d in creates if d.write_uncertain and d.document_number]
    if not uncertain:
        return creates
    found = {
        str(inv.get("InvoiceNumber")): inv
        for inv in ctx.xero.get_invoices(numbers=[d.document_number or "" for d in uncertain])
        if str(inv.get("Type", "")).upper() == "ACCREC"
    }
    if not found:
        return creates
    customer_ids = sorted({d.customer_id for d in uncertain if d.customer_id})
    with ctx.sessions() as session:
        links = {
            link.cin7_customer_id: link.xero_contact_id
            for link in session.scalars(
                select(ContactLink).where(
                    ContactLink.tenant_id == ctx.tenant_pk, ContactLink.cin7_customer_id.in_(customer_ids)
                )
            )
        }
    remaining = list(creates)
    for doc in uncertain:
        existing = found.get(doc.document_number or "")
        if existing is not None and _adopt_found(ctx, token, doc, existing, links, outcome):
            remaining.remove(doc)
    return remaining


def _adopt_found(
    ctx: TenantContext,
    token: str,
    doc: SyncDocument,
    existing: dict[str, Any],
    links: dict[str, str],
    outcome: WriteOutcome,
) -> bool:
    """Adopt an invoice Xero already holds under our number, if it is ours.

    Ours means an ACCREC on the customer's linked contact or, for a customer whose contact the create
    named, on a contact with the very name it sent: the customer is then linked to that contact
    (`links` too), as if the lost answer had arrived.
    """
    customer_id = (doc.customer_id or "").lower()
    contact_id = links.get(customer_id)
    if contact_id is None:
        contact_id = _link_named_contact(ctx, doc, existing.get("Contact") or {})
        if contact_id is None:
            return False
        links[customer_id] = contact_id
    if not _adoptable(existing, contact_id):
        return False
    _adopt(ctx, token, doc, existing, outcome)
    return True


def _link_named_contact(ctx: TenantContext, doc: SyncDocument, contact: dict[str, Any]) -> str | None:
    """Link the document's customer to the contact its invoice is on, if that contact has the name
    the create sent and is no other customer's; its ContactID, or None."""
    if not (doc.customer_id and doc.inline_contact_name and contact.get("ContactID")):
        return None
    if normalise_name(str(contact.get("Name") or "")) != normalise_name(doc.inline_contact_name):
        return None
    with ctx.sessions() as session:
        holder = session.scalar(
            select(ContactLink.cin7_customer_id).where(
                ContactLink.tenant_id == ctx.tenant_pk,
                ContactLink.xero_contact_id == str(contact["ContactID"]),
            )
        )
    if holder is not None and holder != doc.customer_id.lower():
        # Xero put it on another customer's contact by name: not ours to adopt; it dead-letters for
        # a person as an invoice number that exists for another contact.
        log.error(
            "invoice %s is in Xero on the contact of customer %s, not of %s",
            doc.document_number,
            holder,
            doc.customer_id,
        )
        return None
    inline = InlineContact(doc.customer_id.lower(), doc.inline_contact_name, None, None)
    return link_inline(ctx, [(inline, contact)]).get(doc.customer_id.lower())


def _align(results: Sequence[Any], body: Sequence[dict[str, Any]]) -> list[Any]:
    """Xero answers elements in request order; check by InvoiceNumber and fall back to it."""
    by_number = {str(r.data.get("InvoiceNumber")): r for r in results if r.data.get("InvoiceNumber")}
    aligned: list[Any] = []
    for index, payload in enumerate(body):
        number = str(payload.get("InvoiceNumber"))
        if index < len(results) and str(results[index].data.get("InvoiceNumber")) == number:
            aligned.append(results[index])
        else:
            aligned.append(by_number.get(number))
    return aligned


def _adopt(ctx: TenantContext, token: str, doc: SyncDocument, existing: dict[str, Any], outcome: WriteOutcome) -> None:
    """Link an invoice Xero already holds; if its content differs from ours, update it next round."""
    with ctx.sessions() as session, session.begin():
        row = session.scalar(select(SyncDocument).where(SyncDocument.id == doc.id, SyncDocument.claim_token == token))
        if row is None:
            return
        row.xero_id = str(existing.get("InvoiceID"))
        row.xero_status = str(existing.get("Status") or "")
        row.write_uncertain = False
        row.claim_token = None
        row.action = InvoiceAction.UPDATE.value
        # Adopted content is unknown to us: send our version as an update (idempotent if equal).
        row.state = DocumentState.READY


def _totals(data: dict[str, Any]) -> dict[str, str]:
    return {key: str(Decimal(str(data.get(key) or 0))) for key in ("SubTotal", "TotalTax", "Total")}


def _synced(ctx: TenantContext, token: str, doc: SyncDocument, data: dict[str, Any], outcome: WriteOutcome) -> None:
    _synced_all(ctx, token, [(doc, data)], outcome)


def _synced_all(
    ctx: TenantContext, token: str, landed: Sequence[tuple[SyncDocument, dict[str, Any]]], outcome: WriteOutcome
) -> None:
    """Record what Xero confirmed, for a whole batch in one transaction."""
    if not landed:
        return
    by_id = {doc.id: data for doc, data in landed}
    with ctx.sessions() as session, session.begin():
        rows = list(
            session.scalars(
                select(SyncDocument).where(SyncDocument.id.in_(list(by_id)), SyncDocument.claim_token == token)
            )
        )
        for row in rows:
            data = by_id[row.id]
            row.xero_id = str(data.get("InvoiceID") or row.xero_id)
            row.xero_status = str(data.get("Status") or "")
            row.xero_totals = _totals(data)
            row.synced_hash = row.payload_hash
            row.write_uncertain = False
            row.claim_token = None
            row.synced_at = utcnow()
            row.last_error = None
            row.error_class = None
            row.attempts += 1
            if row.source_hash != row.mapped_source_hash:
                # Cin7 changed while we wrote: map the newer version.
                row.state = DocumentState.PENDING
                outcome.to_map.append(row.id)
            elif row.xero_status in (XeroInvoiceStatus.VOIDED, XeroInvoiceStatus.DELETED):
                row.state = DocumentState.VOIDED
            else:
                row.state = DocumentState.SYNCED
            outcome.synced += 1
            outcome.written.append(row.document_number or str(row.id))
        # Only documents that ever had a dead letter need their letters closed: one query finds them.
        with_letters = set(
            session.scalars(
                select(DeadLetter.document_id).where(
                    DeadLetter.document_id.in_([row.id for row in rows]), DeadLetter.resolved_at.is_(None)
                )
            )
        )
        for row in rows:
            if row.id in with_letters:
                resolve_dead_letters(session, row)


def _write_updates(
    ctx: TenantContext, token: str, docs: list[SyncDocument], contacts: dict[str, str], outcome: WriteOutcome
) -> None:
    # Xero must not be changed under a payment: read the current state of every invoice first.
    current = {str(inv.get("InvoiceID")): inv for inv in ctx.xero.get_invoices(ids=[d.xero_id or "" for d in docs])}
    sendable: list[tuple[SyncDocument, dict[str, Any]]] = []
    for doc in docs:
        existing = current.get(doc.xero_id or "")
        if existing is None:
            _dead(
                ctx,
                doc,
                token,
                "write",
                ErrorClass.VALIDATION,
                [f"Xero invoice {doc.xero_id} ({doc.document_number}) no longer exists"],
                doc.payload,
                outcome,
            )
            continue
        status = str(existing.get("Status") or "").upper()
        paid = Decimal(str(existing.get("AmountPaid") or 0)) + Decimal(str(existing.get("AmountCredited") or 0))
        action = InvoiceAction(doc.action or InvoiceAction.UPDATE)
        if status == "PAID" or paid > 0 or (action is InvoiceAction.UPDATE and status in ("VOIDED", "DELETED")):
            _conflict(ctx, token, doc, status, paid, outcome)
            continue
        if action in (InvoiceAction.VOID, InvoiceAction.DELETE):
            if status in ("VOIDED", "DELETED"):
                _synced(ctx, token, doc, existing, outcome)
                continue
            wanted = InvoiceAction.DELETE if status in ("DRAFT", "SUBMITTED") else InvoiceAction.VOID
            payload = void_payload(doc.xero_id or "", doc.document_number or "", wanted).to_json()
        else:
            contact_id = _contact_id_for(doc.payload or {}, contacts)
            assert contact_id is not None
            payload = {**_with_contact(doc.payload or {}, contact_id), "InvoiceID": doc.xero_id}
        sendable.append((doc, payload))
    if not sendable:
        return
    for chunk in split_by_size(sendable, ctx.settings.xero_max_request_bytes):
        body = [payload for _, payload in chunk]
        results = ctx.xero.update_invoices(body, idempotency_key(ctx.tenant_key, "POST /Invoices", body))
        landed: list[tuple[SyncDocument, dict[str, Any]]] = []
        for (doc, payload), result in zip(chunk, _align(results, body), strict=True):
            if result is not None and result.ok:
                landed.append((doc, result.data))
            else:
                messages = result.messages if result is not None else ["Xero returned no result for this element"]
                _dead(ctx, doc, token, "write", ErrorClass.VALIDATION, messages, payload, outcome)
        _synced_all(ctx, token, landed, outcome)


def _conflict(
    ctx: TenantContext, token: str, doc: SyncDocument, status: str, paid: Decimal, outcome: WriteOutcome
) -> None:
    with ctx.sessions() as session, session.begin():
        row = session.scalar(select(SyncDocument).where(SyncDocument.id == doc.id, SyncDocument.claim_token == token))
        if row is None:
            return
        row.state = DocumentState.CONFLICT
        row.error_class = ErrorClass.CONFLICT.value
        row.xero_status = status
        row.claim_token = None
        row.last_error = (
            f"Xero invoice {row.document_number} is {status} with {paid} paid/credited: "
            f"the Cin7 change ({row.action}) was not applied"
        )
    outcome.conflicts += 1

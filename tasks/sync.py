"""Celery tasks: thin wrappers that take ids, call pipeline functions, and enqueue the next step.

Every task here is idempotent against the ledger (a duplicate delivery finds its row already moved
on), so all of them ack late and are re-delivered if their worker dies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

import redis
from celery import Task
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError

from pipeline.app import TaskName, app, send
from pipeline.context import TenantContext, shared_redis, tenant_context
from pipeline.discovery import poll as discovery
from pipeline.errors import ErrorClass, SyncError, pause_seconds
from pipeline.ledger.models import DocumentState, SaleRecord, SaleState, SyncDocument, utcnow
from pipeline.operations import alerts
from pipeline.recovery.deadletters import mirror_dead_letter_queue, record_dead_letter, record_sale_dead_letter
from pipeline.recovery.sweep import release_due_retries, sweep
from pipeline.webhooks.server import resend_unsent_events
from pipeline.writer import write as documents

log = logging.getLogger(__name__)

# Waits up to this long are Celery countdowns; longer ones live in the ledger for the sweep.
MAX_COUNTDOWN_SECONDS = 120.0

# Our own counts (the ledger, and Redis for deliveries), not Celery's, bound attempts at Cin7/Xero;
# these retries cover the database itself being briefly unreachable.
_DB_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError, DBAPIError),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 10,
}
_IDEMPOTENT: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}


@app.task(name=TaskName.POLL.value, **_IDEMPOTENT, **_DB_RETRY)
def poll(tenant_key: str) -> dict[str, Any]:
    """Read changed customers and sales from Cin7 and fan out one fetch per changed sale."""
    ctx = tenant_context(tenant_key)
    customers = discovery.poll_customers(ctx)
    result = discovery.poll_sales(ctx)
    return {"customers": customers, "listed": result.listed, "changed": len(result.changed_sale_ids)}


def _poison_message(stage: str, deliveries: int) -> str:
    return (
        f"{stage} was started {deliveries} times without finishing: the message may be killing workers "
        "(see the worker logs around these attempts)"
    )


# --- counting deliveries -----------------------------------------------------------------------------
#
# A message whose task kills its worker never reaches an except clause; the only trace it leaves is a
# count taken before the work, which acks_late redelivery and the sweep keep raising until it is a
# dead letter. With Redis the count is an INCR on a key per sale or document that the finished work
# deletes (one round trip each way, no ledger transaction); without Redis (the demo) it is the row's
# `attempts` in a transaction of its own. Either way it is durable before the risky work starts: in
# the work's own transaction, the crash would roll it back.

# Longer than any run of redeliveries (the broker's visibility timeout and the sweep resend within
# hours), short enough that a count left by a message that vanished does not linger.
DELIVERY_COUNT_TTL_SECONDS = 86_400


def _delivery_key(ctx: TenantContext, kind: str, ident: str | int) -> str:
    return f"cin7xero:deliveries:{ctx.tenant_key}:{kind}:{ident}"


def _count_deliveries(client: redis.Redis | None, keys: Sequence[str]) -> list[int] | None:
    """Count one more delivery under each key; None when Redis cannot (the caller counts in the ledger)."""
    if client is None:
        return None
    try:
        pipe = client.pipeline(transaction=True)
        for key in keys:
            pipe.incr(key)
            pipe.expire(key, DELIVERY_COUNT_TTL_SECONDS)
        replies = pipe.execute()
    except redis.RedisError as exc:
        log.warning("delivery counts: Redis unavailable (%s); counting in the ledger", exc)
        return None
    return [int(n) for n in replies[::2]]


def _forget_deliveries(client: redis.Redis | None, keys: Sequence[str]) -> None:
    """The work finished (or failed in a way the ledger recorded): its deliveries stop counting."""
    if client is None or not keys:
        return
    try:
        client.delete(*keys)
    except redis.RedisError as exc:
        log.warning("delivery counts not reset (they expire in a day): %s", exc)


def _uncount_delivery(client: redis.Redis | None, key: str) -> None:
    if client is None:
        return
    try:
        if int(client.decr(key)) <= 0:
            client.delete(key)
    except redis.RedisError as exc:
        log.warning("delivery count not taken back: %s", exc)


def _sale_delivery(ctx: TenantContext, sale_id: str, deliveries: int | None) -> tuple[bool, bool]:
    """Record a delivery of a sale's fetch in the ledger: (counted in the sale row, now poison).

    `deliveries` is Redis's count including this one (callers come here only once it passes
    MAX_ATTEMPTS), or None without Redis: then the sale row counts, before any work.
    """
    with ctx.sessions() as session, session.begin():
        sale = session.scalar(
            select(SaleRecord)
            .where(SaleRecord.tenant_id == ctx.tenant_pk, SaleRecord.sale_id == sale_id.lower())
            .with_for_update()
        )
        if sale is None or sale.state != SaleState.DISCOVERED:
            # Its detail was stored: what keeps dying comes after the fetch, and is counted there.
            return False, False
        sale.attempts = sale.attempts + 1 if deliveries is None else max(sale.attempts, deliveries)
        count = sale.attempts if deliveries is None else deliveries
        if count <= ctx.settings.max_attempts:
            return deliveries is None, False
        record_sale_dead_letter(
            session, sale, error_class=ErrorClass.POISON, messages=[_poison_message("fetch", count)]
        )
        return deliveries is None, True


def _sale_failed(ctx: TenantContext, sale_id: str, error: SyncError, *, counted: bool) -> str:
    """Record a failed fetch; return what happens to the sale now: retry, paused or dead."""
    with ctx.sessions() as session, session.begin():
        sale = session.scalar(
            select(SaleRecord).where(SaleRecord.tenant_id == ctx.tenant_pk, SaleRecord.sale_id == sale_id.lower())
        )
        if sale is None:
            return "gone"
        if not counted:
            sale.attempts += 1
        if not error.error_class.counts_as_attempt:
            # Throttled or refused before Cin7 looked at the request: not this sale's failure.
            sale.attempts = max(0, sale.attempts - 1)
        sale.last_error = error.message[:4000]
        pause = pause_seconds(error)
        if pause is not None:
            # Refused credentials fail every sale alike: wait and alert once per window, rather than
            # a dead letter per sale that someone would have to requeue.
            sale.state = SaleState.RETRY
            sale.next_attempt_at = utcnow() + timedelta(seconds=pause)
            alerts.note_problem(session, ctx.tenant_pk, error.error_class, error.message)
            log.warning("fetch of sale %s waits %.0fs: %s", sale_id, pause, error.message)
            return "paused"
        if error.error_class.retryable and sale.attempts < ctx.settings.max_attempts:
            delay = error.retry_after or documents.backoff_seconds(
                sale.attempts, ctx.settings.retry_base_seconds, ctx.settings.retry_cap_seconds
            )
            sale.state = SaleState.RETRY
            sale.next_attempt_at = utcnow() + timedelta(seconds=delay)
            log.warning("fetch of sale %s failed (%s); retry in %.0fs", sale_id, error.error_class, delay)
            return "retry"
        record_sale_dead_letter(session, sale, error_class=error.error_class, messages=error.messages)
        return "dead"


@dataclass(frozen=True)
class _MapDelivery:
    """How one attempt at mapping a document was counted, so that it can be taken back or reset."""

    key: str
    in_redis: bool = False  # INCR'd under `key`
    in_ledger: bool = False  # the row's attempts were raised
    deliveries: int = 0  # the count in Redis after this one, for a dead letter's "attempts"


def _map_delivery_poisons(ctx: TenantContext, doc_id: int, deliveries: int | None) -> bool:
    """Record a delivery of a document's mapping in the ledger; True when it is now poison.

    `deliveries` is Redis's count including this one (callers come here only once it passes
    MAX_ATTEMPTS), or None without Redis: then the row's attempts count, before mapping.
    documents.map_document resets them when the mapping finishes, so only deliveries that died (or
    failed) in between add up.
    """
    with ctx.sessions() as session, session.begin():
        doc = session.scalar(select(SyncDocument).where(SyncDocument.id == doc_id).with_for_update())
        if doc is None or doc.state != DocumentState.PENDING:
            return False
        doc.attempts = doc.attempts + 1 if deliveries is None else max(doc.attempts, deliveries)
        count = doc.attempts if deliveries is None else deliveries
        if count <= ctx.settings.max_attempts:
            return False
        record_dead_letter(
            session,
            doc,
            stage="map",
            error_class=ErrorClass.POISON,
            messages=[_poison_message("mapping", count)],
            payload=None,
        )
        return True


def _uncount_map_delivery(ctx: TenantContext, client: redis.Redis | None, doc_id: int, delivery: _MapDelivery) -> None:
    """A delivery that only waited (tenant pause, rate limit) does not count towards poison."""
    if delivery.in_redis:
        _uncount_delivery(client, delivery.key)
    with ctx.sessions() as session, session.begin():
        doc = session.scalar(select(SyncDocument).where(SyncDocument.id == doc_id).with_for_update())
        if doc is not None and doc.state == DocumentState.PENDING:
            if delivery.in_ledger:
                doc.attempts = max(0, doc.attempts - 1)
            # The sweep sends it again once STUCK_AFTER_SECONDS have passed from here.
            doc.enqueued_at = utcnow()


class MapOutcome(NamedTuple):
    """What one attempt at mapping a document came to."""

    # ready: mapped and waiting for a writer; mapped: nothing to write (or already handled);
    # dead: a dead letter; retry: try again in `wait` seconds; paused: the tenant is parked.
    state: str
    wait: float | None = None

    @property
    def finished(self) -> bool:
        """The attempt ended for good: its delivery count may be reset."""
        return self.state in ("ready", "mapped", "dead")


def _map_once(
    ctx: TenantContext, client: redis.Redis | None, doc_id: int, delivery: _MapDelivery, *, retries: int
) -> MapOutcome:
    """Map one document and decide what its failure means (the map task and the fetch task share this)."""
    try:
        ready = documents.map_document(ctx, doc_id)
    except SyncError as error:
        if error.error_class.pauses_tenant:
            # The chart-of-accounts read met a day limit or a refused connection (or the tenant is
            # already parked): park the tenant, and let this document wait for the sweep.
            pause = documents.pause_tenant(ctx, error)
            _uncount_map_delivery(ctx, client, doc_id, delivery)
            return MapOutcome("paused", pause)
        if not error.error_class.counts_as_attempt:
            _uncount_map_delivery(ctx, client, doc_id, delivery)
        # Only the chart-of-accounts read talks to Xero here; it is retried like any call.
        if error.error_class.retryable and retries < ctx.settings.max_attempts:
            # Jittered, so that documents that failed together do not all come back together.
            wait = (error.retry_after or 0.0) + documents.backoff_seconds(
                retries + 1, ctx.settings.retry_base_seconds, ctx.settings.retry_cap_seconds
            )
            return MapOutcome("retry", min(MAX_COUNTDOWN_SECONDS, wait))
        with ctx.sessions() as session, session.begin():
            doc = session.get(SyncDocument, doc_id)
            if doc is not None and doc.state == DocumentState.PENDING:
                # As the ledger count would have said: how many deliveries it took.
                doc.attempts = max(doc.attempts, delivery.deliveries)
                record_dead_letter(
                    session, doc, stage="map", error_class=error.error_class, messages=error.messages, payload=None
                )
        return MapOutcome("dead")
    return MapOutcome("ready" if ready else "mapped")


@app.task(name=TaskName.MAP_DOCUMENT.value, bind=True, **_IDEMPOTENT, **_DB_RETRY)
def map_document(self: Task, tenant_key: str, doc_id: int) -> bool:
    """Map one document; when it is ready, ask a writer to take it."""
    ctx = tenant_context(tenant_key)
    client = shared_redis(ctx.settings)
    key = _delivery_key(ctx, "document", doc_id)
    deliveries = _count_deliveries(client, [key])
    if deliveries is None:
        if _map_delivery_poisons(ctx, doc_id, None):
            return False
        delivery = _MapDelivery(key, in_ledger=True)
    else:
        if deliveries[0] > ctx.settings.max_attempts and _map_delivery_poisons(ctx, doc_id, deliveries[0]):
            _forget_deliveries(client, [key])
            return False
        delivery = _MapDelivery(key, in_redis=True, deliveries=deliveries[0])
    outcome = _map_once(ctx, client, doc_id, delivery, retries=self.request.retries)
    if outcome.state == "retry":
        raise self.retry(countdown=outcome.wait)
    if outcome.finished and delivery.in_redis:
        _forget_deliveries(client, [key])
    ready = outcome.state == "ready"
    if ready and documents.claim_write_message(ctx):
        # One pending write message per tenant: the writer drains every ready row anyway.
        send(TaskName.WRITE_DOCUMENT, tenant_key, doc_id)
    return ready


@app.task(name=TaskName.FETCH_SALE.value, bind=True, **_IDEMPOTENT, **_DB_RETRY)
def fetch_sale(self: Task, tenant_key: str, sale_id: str) -> dict[str, Any]:
    """Read one sale's detail, record its invoices, map each changed one here, and wake a writer.

    Returns the sale and each of its invoices by number with where it stands, e.g.
    {"sale": "...", "invoices": {"INV-123": "ready"}}: Flower shows it for every fetch_sale task, which
    is how an operator following one invoice finds the task that carried it.
    """
    ctx = tenant_context(tenant_key)
    client = shared_redis(ctx.settings)
    sale_key = _delivery_key(ctx, "sale", sale_id.lower())
    result: dict[str, Any] = {"sale": sale_id, "invoices": {}}
    deliveries = _count_deliveries(client, [sale_key])
    if deliveries is None:
        counted, poison = _sale_delivery(ctx, sale_id, None)
        if poison:
            return {**result, "fetch": "poison"}
    else:
        counted = False
        if deliveries[0] > ctx.settings.max_attempts and _sale_delivery(ctx, sale_id, deliveries[0])[1]:
            _forget_deliveries(client, [sale_key])
            return {**result, "fetch": "poison"}
    try:
        fetched = discovery.fetch_sale(ctx, sale_id)
    except SyncError as error:
        outcome = _sale_failed(ctx, sale_id, error, counted=counted)
        if deliveries is not None:
            _forget_deliveries(client, [sale_key])
        return {**result, "fetch": f"{outcome} ({error.error_class.value})"}
    # Documents are counted in Redis only when this message may have been delivered before (it kept
    # killing workers while mapping them): a first delivery cannot be poison yet.
    recount = deliveries is None or deliveries[0] > 1
    states, finished = _map_fetched(ctx, client, fetched, redis_counts=deliveries is not None, recount=recount)
    result["invoices"] = states
    if deliveries is not None:
        _forget_deliveries(client, [sale_key, *finished])
    return result


def _invoice_name(invoice: discovery.FetchedInvoice) -> str:
    return invoice.number or f"document {invoice.doc_id}"


def _map_fetched(
    ctx: TenantContext,
    client: redis.Redis | None,
    fetched: Sequence[discovery.FetchedInvoice],
    *,
    redis_counts: bool,
    recount: bool,
) -> tuple[dict[str, str], list[str]]:
    """Map the fetched invoices that need it, in this task; return each invoice's state and the delivery
    keys of the documents whose mapping finished.

    What cannot be mapped now (a retryable failure, a short tenant pause) goes on as a map_document
    message with a countdown, which carries on with that task's retries.
    """
    states = {_invoice_name(invoice): invoice.state for invoice in fetched}
    to_map = [invoice for invoice in fetched if invoice.needs_map]
    keys = {invoice.doc_id: _delivery_key(ctx, "document", invoice.doc_id) for invoice in to_map}
    counts: dict[int, int] = {}
    if redis_counts and recount and to_map:
        counted = _count_deliveries(client, list(keys.values()))
        counts = dict(zip(keys, counted, strict=True)) if counted is not None else {}
    finished: list[str] = []
    ready: list[int] = []
    unmapped: list[int] = []
    for invoice in to_map:
        key = keys[invoice.doc_id]
        if redis_counts:
            deliveries = counts.get(invoice.doc_id)
            if (
                deliveries is not None
                and deliveries > ctx.settings.max_attempts
                and _map_delivery_poisons(ctx, invoice.doc_id, deliveries)
            ):
                states[_invoice_name(invoice)] = "poison"
                finished.append(key)
                continue
            delivery = _MapDelivery(key, in_redis=deliveries is not None, deliveries=deliveries or 0)
        else:
            if _map_delivery_poisons(ctx, invoice.doc_id, None):
                states[_invoice_name(invoice)] = "poison"
                continue
            delivery = _MapDelivery(key, in_ledger=True)
        outcome = _map_once(ctx, client, invoice.doc_id, delivery, retries=0)
        if outcome.state == "retry" or (
            outcome.state == "paused" and outcome.wait is not None and outcome.wait <= MAX_COUNTDOWN_SECONDS
        ):
            send(TaskName.MAP_DOCUMENT, ctx.tenant_key, invoice.doc_id, countdown=outcome.wait)
        if outcome.finished:
            finished.append(key)
        if outcome.state == "ready":
            ready.append(invoice.doc_id)
        elif outcome.state == "mapped":
            unmapped.append(invoice.doc_id)
        states[_invoice_name(invoice)] = outcome.state
    if ready and documents.claim_write_message(ctx):
        # One pending write message per tenant: the writer drains every ready row anyway.
        send(TaskName.WRITE_DOCUMENT, ctx.tenant_key, ready[0])
    if unmapped:
        # Mapped to nothing to write: say what it became (synced, voided, ignored, conflict, dead).
        with ctx.sessions() as session:
            for number, doc_id, state in session.execute(
                select(SyncDocument.document_number, SyncDocument.id, SyncDocument.state).where(
                    SyncDocument.id.in_(unmapped)
                )
            ):
                states[number or f"document {doc_id}"] = str(state)
    return states, finished


@app.task(name=TaskName.WRITE_DOCUMENT.value, **_IDEMPOTENT, **_DB_RETRY)
def write_document(tenant_key: str, doc_id: int | None) -> dict[str, Any]:
    """Write this document to Xero together with whatever else is ready for the tenant."""
    ctx = tenant_context(tenant_key)
    documents.release_write_message(ctx)
    release_due_retries(ctx)
    outcome = documents.write_ready(ctx, doc_id)
    for remap_id in outcome.to_map:
        send(TaskName.MAP_DOCUMENT, tenant_key, remap_id)
    if outcome.retry_in is not None and outcome.retry_in <= MAX_COUNTDOWN_SECONDS:
        send(TaskName.WRITE_DOCUMENT, tenant_key, None, countdown=outcome.retry_in)
    # The invoice numbers let an operator who follows one invoice in Flower find the batch that wrote it.
    return {
        "claimed": outcome.claimed,
        "synced": outcome.synced,
        "dead": outcome.dead,
        "conflicts": outcome.conflicts,
        "contacts_pushed": outcome.contacts_pushed,
        "written": outcome.written,
    }


@app.task(name=TaskName.SWEEP.value, **_IDEMPOTENT, **_DB_RETRY)
def sweep_ledger(tenant_key: str) -> dict[str, int]:
    """Re-send what the broker lost, release due retries, reclaim rows of dead writers."""
    ctx = tenant_context(tenant_key)
    result = sweep(ctx)
    for sale_id in result.sales:
        send(TaskName.FETCH_SALE, tenant_key, sale_id)
    for doc_id in result.to_map:
        send(TaskName.MAP_DOCUMENT, tenant_key, doc_id)
    if result.to_write or result.released or result.contacts_to_push:
        send(TaskName.WRITE_DOCUMENT, tenant_key, result.to_write[0] if result.to_write else None)
    unsent_events = resend_unsent_events(ctx)
    for event_id in unsent_events:
        send(TaskName.WEBHOOK_EVENT, tenant_key, event_id)
    with ctx.sessions() as session:
        open_letters = mirror_dead_letter_queue(session, ctx.tenant_pk)
    return {
        "sales": len(result.sales),
        "map": len(result.to_map),
        "write": len(result.to_write),
        "contacts_to_push": result.contacts_to_push,
        "reclaimed": result.reclaimed,
        "webhook_events": len(unsent_events),
        "dead_letters": open_letters,
    }

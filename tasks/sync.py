"""Celery tasks: thin wrappers that take ids, call pipeline functions, and enqueue the next step.

Every task here is idempotent against the ledger (a duplicate delivery finds its row already moved
on), so all of them ack late and are re-delivered if their worker dies.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError

from pipeline import alerts, discovery, documents
from pipeline.app import TaskName, app, send
from pipeline.context import TenantContext, tenant_context
from pipeline.deadletters import mirror_dead_letter_queue, record_dead_letter, record_sale_dead_letter
from pipeline.errors import ErrorClass, SyncError, pause_seconds
from pipeline.ledger.models import DocumentState, SaleRecord, SaleState, SyncDocument, utcnow
from pipeline.sweep import release_due_retries, sweep
from pipeline.webhooks import resend_unsent_events

log = logging.getLogger(__name__)

# Waits up to this long are Celery countdowns; longer ones live in the ledger for the sweep.
MAX_COUNTDOWN_SECONDS = 120.0

# The ledger, not Celery, counts attempts at Cin7/Xero; these retries cover the database itself
# being briefly unreachable.
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


def _count_sale_delivery(ctx: TenantContext, sale_id: str) -> tuple[bool, bool]:
    """Count this delivery against the sale before any work: (counted, now poison).

    A message whose task kills its worker never reaches an except clause; the only trace it leaves
    is this count, which acks_late redelivery and the sweep keep raising until it is a dead letter.
    """
    with ctx.sessions() as session, session.begin():
        sale = session.scalar(
            select(SaleRecord)
            .where(SaleRecord.tenant_id == ctx.tenant_pk, SaleRecord.sale_id == sale_id.lower())
            .with_for_update()
        )
        if sale is None or sale.state != SaleState.DISCOVERED:
            return False, False
        sale.attempts += 1
        if sale.attempts <= ctx.settings.max_attempts:
            return True, False
        record_sale_dead_letter(
            session, sale, error_class=ErrorClass.POISON, messages=[_poison_message("fetch", sale.attempts)]
        )
        return True, True


@app.task(name=TaskName.FETCH_SALE.value, bind=True, **_IDEMPOTENT, **_DB_RETRY)
def fetch_sale(self: Task, tenant_key: str, sale_id: str) -> int:
    """Read one sale's detail, record its invoices, and send each changed one to mapping."""
    ctx = tenant_context(tenant_key)
    counted, poison = _count_sale_delivery(ctx, sale_id)
    if poison:
        return 0
    try:
        doc_ids = discovery.fetch_sale(ctx, sale_id)
    except SyncError as error:
        _sale_failed(ctx, sale_id, error, counted=counted)
        return 0
    for doc_id in doc_ids:
        send(TaskName.MAP_DOCUMENT, tenant_key, doc_id)
    return len(doc_ids)


def _sale_failed(ctx: TenantContext, sale_id: str, error: SyncError, *, counted: bool) -> None:
    with ctx.sessions() as session, session.begin():
        sale = session.scalar(
            select(SaleRecord).where(SaleRecord.tenant_id == ctx.tenant_pk, SaleRecord.sale_id == sale_id.lower())
        )
        if sale is None:
            return
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
            return
        if error.error_class.retryable and sale.attempts < ctx.settings.max_attempts:
            delay = error.retry_after or documents.backoff_seconds(
                sale.attempts, ctx.settings.retry_base_seconds, ctx.settings.retry_cap_seconds
            )
            sale.state = SaleState.RETRY
            sale.next_attempt_at = utcnow() + timedelta(seconds=delay)
            log.warning("fetch of sale %s failed (%s); retry in %.0fs", sale_id, error.error_class, delay)
        else:
            record_sale_dead_letter(session, sale, error_class=error.error_class, messages=error.messages)


def _count_map_delivery(ctx: TenantContext, doc_id: int) -> bool:
    """Count this delivery against the document before mapping; True when it is now poison.

    documents.map_document resets the count when the mapping finishes, so only deliveries that died
    (or failed) in between add up.
    """
    with ctx.sessions() as session, session.begin():
        doc = session.scalar(select(SyncDocument).where(SyncDocument.id == doc_id).with_for_update())
        if doc is None or doc.state != DocumentState.PENDING:
            return False
        doc.attempts += 1
        if doc.attempts <= ctx.settings.max_attempts:
            return False
        record_dead_letter(
            session,
            doc,
            stage="map",
            error_class=ErrorClass.POISON,
            messages=[_poison_message("mapping", doc.attempts)],
            payload=None,
        )
        return True


def _uncount_map_delivery(ctx: TenantContext, doc_id: int) -> None:
    """A delivery that only waited for the tenant's pause does not count towards poison."""
    with ctx.sessions() as session, session.begin():
        doc = session.scalar(select(SyncDocument).where(SyncDocument.id == doc_id).with_for_update())
        if doc is not None and doc.state == DocumentState.PENDING:
            doc.attempts = max(0, doc.attempts - 1)
            # The sweep sends it again once STUCK_AFTER_SECONDS have passed from here.
            doc.enqueued_at = utcnow()


@app.task(name=TaskName.MAP_DOCUMENT.value, bind=True, **_IDEMPOTENT, **_DB_RETRY)
def map_document(self: Task, tenant_key: str, doc_id: int) -> bool:
    """Map one document; when it is ready, ask a writer to take it."""
    ctx = tenant_context(tenant_key)
    if _count_map_delivery(ctx, doc_id):
        return False
    try:
        ready = documents.map_document(ctx, doc_id)
    except SyncError as error:
        if error.error_class.pauses_tenant:
            # The chart-of-accounts read met a day limit or a refused connection (or the tenant is
            # already parked): park the tenant, and let this document wait for the sweep.
            documents.pause_tenant(ctx, error)
            _uncount_map_delivery(ctx, doc_id)
            return False
        if not error.error_class.counts_as_attempt:
            _uncount_map_delivery(ctx, doc_id)
        # Only the chart-of-accounts read talks to Xero here; it is retried like any call.
        if error.error_class.retryable and self.request.retries < ctx.settings.max_attempts:
            # Jittered, so that documents that failed together do not all come back together.
            wait = (error.retry_after or 0.0) + documents.backoff_seconds(
                self.request.retries + 1, ctx.settings.retry_base_seconds, ctx.settings.retry_cap_seconds
            )
            raise self.retry(countdown=min(MAX_COUNTDOWN_SECONDS, wait)) from error
        with ctx.sessions() as session, session.begin():
            doc = session.get(SyncDocument, doc_id)
            if doc is not None and doc.state == DocumentState.PENDING:
                record_dead_letter(
                    session, doc, stage="map", error_class=error.error_class, messages=error.messages, payload=None
                )
        return False
    if ready and documents.claim_write_message(ctx):
        # One pending write message per tenant: the writer drains every ready row anyway.
        send(TaskName.WRITE_DOCUMENT, tenant_key, doc_id)
    return ready


@app.task(name=TaskName.WRITE_DOCUMENT.value, **_IDEMPOTENT, **_DB_RETRY)
def write_document(tenant_key: str, doc_id: int | None) -> dict[str, int]:
    """Write this document to Xero together with whatever else is ready for the tenant."""
    ctx = tenant_context(tenant_key)
    documents.release_write_message(ctx)
    release_due_retries(ctx)
    outcome = documents.write_ready(ctx, doc_id)
    for remap_id in outcome.to_map:
        send(TaskName.MAP_DOCUMENT, tenant_key, remap_id)
    if outcome.retry_in is not None and outcome.retry_in <= MAX_COUNTDOWN_SECONDS:
        send(TaskName.WRITE_DOCUMENT, tenant_key, None, countdown=outcome.retry_in)
    return {"claimed": outcome.claimed, "synced": outcome.synced, "dead": outcome.dead, "conflicts": outcome.conflicts}


@app.task(name=TaskName.SWEEP.value, **_IDEMPOTENT, **_DB_RETRY)
def sweep_ledger(tenant_key: str) -> dict[str, int]:
    """Re-send what the broker lost, release due retries, reclaim rows of dead writers."""
    ctx = tenant_context(tenant_key)
    result = sweep(ctx)
    for sale_id in result.sales:
        send(TaskName.FETCH_SALE, tenant_key, sale_id)
    for doc_id in result.to_map:
        send(TaskName.MAP_DOCUMENT, tenant_key, doc_id)
    if result.to_write or result.released:
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
        "reclaimed": result.reclaimed,
        "webhook_events": len(unsent_events),
        "dead_letters": open_letters,
    }

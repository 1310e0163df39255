"""The mapping stage as the workers run it: count the delivery, map, and act on the outcome.

The fetch task maps its sale's invoices here, right after it recorded them (one message per changed
sale); the map task comes here for what could not be mapped then, for documents that changed while
they were written, and for what the sweep re-sends. What must wait goes on as a countdown message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import redis
from sqlalchemy import select

from pipeline import app
from pipeline.app import FETCH_TASKS, TaskName
from pipeline.context import TenantContext, shared_redis
from pipeline.discovery import fetch
from pipeline.discovery.fetch import FetchedInvoice
from pipeline.discovery.purchases import fetch_purchase
from pipeline.errors import SyncError
from pipeline.ledger.models import DocumentState, ParentKind, SyncDocument
from pipeline.mapping import document
from pipeline.operations.pauses import pause_tenant
from pipeline.policy import MAX_COUNTDOWN_SECONDS, Next, counts_as_attempt, decide_for, pauses_tenant
from pipeline.recovery.deadletters import record_dead_letter
from pipeline.recovery.deliveries import (
    MapDelivery,
    count_deliveries,
    count_map_delivery,
    delivery_key,
    forget_deliveries,
    map_delivery_poisons,
    sale_delivery,
    uncount_map_delivery,
)
from pipeline.writer.claim import claim_write_message

log = logging.getLogger(__name__)


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


def map_once(
    ctx: TenantContext, client: redis.Redis | None, doc_id: int, delivery: MapDelivery, *, retries: int
) -> MapOutcome:
    """Map one document and decide, by the error policy, what its failure means."""
    try:
        ready = document.map_document(ctx, doc_id)
    except SyncError as error:
        if pauses_tenant(error.error_class):
            # The chart-of-accounts read met a day limit or a refused connection (or the tenant is
            # already parked): park the tenant, and let this document wait for the sweep.
            pause = pause_tenant(ctx, error)
            uncount_map_delivery(ctx, client, doc_id, delivery)
            return MapOutcome("paused", pause)
        if not counts_as_attempt(error.error_class):
            uncount_map_delivery(ctx, client, doc_id, delivery)
        # Only the chart-of-accounts read talks to Xero here; it is retried like any call.
        decision = decide_for(error, retries + 1, ctx.settings)
        if decision.next in (Next.COUNTDOWN, Next.LEDGER_RETRY):
            return MapOutcome("retry", min(MAX_COUNTDOWN_SECONDS, decision.delay))
        with ctx.sessions() as session, session.begin():
            doc = session.get(SyncDocument, doc_id)
            if doc is not None and doc.state == DocumentState.PENDING:
                # As the ledger count would have said: how many deliveries it took.
                doc.attempts = max(doc.attempts, delivery.deliveries)
                record_dead_letter(
                    session,
                    doc,
                    stage="map",
                    error_class=decision.error_class,
                    messages=list(decision.messages),
                    payload=None,
                )
        return MapOutcome("dead")
    return MapOutcome("ready" if ready else "mapped")


def wake_writer(ctx: TenantContext, doc_id: int) -> None:
    """Send a write message unless one is already pending: the writer drains every ready row anyway."""
    if claim_write_message(ctx):
        app.send(TaskName.WRITE_DOCUMENT, ctx.tenant_key, doc_id)


def map_message(ctx: TenantContext, doc_id: int, *, retries: int) -> MapOutcome:
    """What a map_document message does: count it, map, and wake a writer when the row is ready.

    A retry comes back as the outcome's `wait`: the task turns it into its own countdown retry.
    """
    client = shared_redis(ctx.settings)
    delivery = count_map_delivery(ctx, client, doc_id)
    if delivery is None:
        return MapOutcome("poison")
    outcome = map_once(ctx, client, doc_id, delivery, retries=retries)
    if outcome.finished and delivery.in_redis:
        forget_deliveries(client, [delivery.key])
    if outcome.state == "ready":
        wake_writer(ctx, doc_id)
    return outcome


def _document_name(kind: str, number: str | None, doc_id: int) -> str:
    """How a fetch task's result names a document: an invoice by its number, the others with their kind
    (a sale's payments share their invoice's number, so they are told apart by ledger id).
    """
    if kind == "invoice":
        return number or f"document {doc_id}"
    label = kind.replace("_", " ")
    return f"{label} {number} #{doc_id}" if kind != "credit_note" and number else f"{label} {number or doc_id}"


def _invoice_name(invoice: FetchedInvoice) -> str:
    return _document_name(invoice.kind, invoice.number, invoice.doc_id)


def _map_fetched_one(
    ctx: TenantContext,
    client: redis.Redis | None,
    invoice: FetchedInvoice,
    delivery: MapDelivery,
) -> MapOutcome:
    outcome = map_once(ctx, client, invoice.doc_id, delivery, retries=0)
    if outcome.state == "retry" or (
        outcome.state == "paused" and outcome.wait is not None and outcome.wait <= MAX_COUNTDOWN_SECONDS
    ):
        app.send(TaskName.MAP_DOCUMENT, ctx.tenant_key, invoice.doc_id, countdown=outcome.wait)
    return outcome


def map_fetched(
    ctx: TenantContext,
    client: redis.Redis | None,
    fetched: Sequence[FetchedInvoice],
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
    keys = {invoice.doc_id: delivery_key(ctx, "document", invoice.doc_id) for invoice in to_map}
    counts: dict[int, int] = {}
    if redis_counts and recount and to_map:
        counted = count_deliveries(client, list(keys.values()))
        counts = dict(zip(keys, counted, strict=True)) if counted is not None else {}
    finished: list[str] = []
    ready: list[int] = []
    unmapped: list[int] = []
    for invoice in to_map:
        key = keys[invoice.doc_id]
        deliveries = counts.get(invoice.doc_id) if redis_counts else None
        if redis_counts:
            if (
                deliveries is not None
                and deliveries > ctx.settings.max_attempts
                and map_delivery_poisons(ctx, invoice.doc_id, deliveries)
            ):
                states[_invoice_name(invoice)] = "poison"
                finished.append(key)
                continue
            delivery = MapDelivery(key, in_redis=deliveries is not None, deliveries=deliveries or 0)
        else:
            if map_delivery_poisons(ctx, invoice.doc_id, None):
                states[_invoice_name(invoice)] = "poison"
                continue
            delivery = MapDelivery(key, in_ledger=True)
        outcome = _map_fetched_one(ctx, client, invoice, delivery)
        if outcome.finished:
            finished.append(key)
        if outcome.state == "ready":
            ready.append(invoice.doc_id)
        elif outcome.state == "mapped":
            unmapped.append(invoice.doc_id)
        states[_invoice_name(invoice)] = outcome.state
    if ready:
        wake_writer(ctx, ready[0])
    if unmapped:
        # Mapped to nothing to write: say what it became (synced, voided, ignored, conflict, dead).
        with ctx.sessions() as session:
            for kind, number, doc_id, state in session.execute(
                select(SyncDocument.kind, SyncDocument.document_number, SyncDocument.id, SyncDocument.state).where(
                    SyncDocument.id.in_(unmapped)
                )
            ):
                states[_document_name(kind, number, doc_id)] = str(state)
    return states, finished


def fetch_and_map(ctx: TenantContext, sale_id: str, *, kind: ParentKind = ParentKind.SALE) -> dict[str, Any]:
    """What a fetch_sale message does: read one sale's detail, record and map its invoices, wake a writer.

    Returns the sale and each of its invoices by number with where it stands, e.g.
    {"sale": "...", "invoices": {"INV-123": "ready"}}: Flower shows it for every fetch_sale task, which
    is how an operator following one invoice finds the task that carried it.
    """
    client = shared_redis(ctx.settings)
    sale_key = delivery_key(ctx, "sale", sale_id.lower())
    result: dict[str, Any] = {"sale": sale_id, "invoices": {}}
    deliveries = count_deliveries(client, [sale_key])
    if deliveries is None:
        counted, poison = sale_delivery(ctx, sale_id, None)
        if poison:
            return {**result, "fetch": "poison"}
    else:
        counted = False
        if deliveries[0] > ctx.settings.max_attempts and sale_delivery(ctx, sale_id, deliveries[0])[1]:
            forget_deliveries(client, [sale_key])
            return {**result, "fetch": "poison"}
    try:
        fetched = fetch_purchase(ctx, sale_id) if kind is ParentKind.PURCHASE else fetch.fetch_sale(ctx, sale_id)
    except SyncError as error:
        failure = fetch.record_fetch_failure(ctx, sale_id, error, counted=counted)
        if deliveries is not None:
            forget_deliveries(client, [sale_key])
        if failure.countdown is not None:
            app.send(FETCH_TASKS[kind], ctx.tenant_key, sale_id, countdown=failure.countdown)
        return {**result, "fetch": f"{failure.state} ({error.error_class.value})"}
    # Documents are counted in Redis only when this message may have been delivered before (it kept
    # killing workers while mapping them): a first delivery cannot be poison yet.
    recount = deliveries is None or deliveries[0] > 1
    states, finished = map_fetched(ctx, client, fetched, redis_counts=deliveries is not None, recount=recount)
    result["invoices"] = states
    if deliveries is not None:
        forget_deliveries(client, [sale_key, *finished])
    return result

"""The mapping stage as the workers run it: count the delivery, map, and act on the outcome.

The fetch task maps its sale's invoices here, right after it recorded them (one message per changed
sale); the map task comes here for what could not be mapped then, for documents that changed while
they were written, and for what the sweep re-sends. What must wait goes on as a countdown message.
"""

from __future__ import annotations

import hashlib
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
from pipeline.kinds import ParentRead
from pipeline.ledger.models import DocumentState, ParentKind, SyncDocument
from pipeline.mapping import document
from pipeline.operations.pauses import pause_tenant
from pipeline.policy import MAX_COUNTDOWN_SECONDS, Next, counts_as_attempt, decide_for, pauses_tenant
from pipeline.ratelimit import RateLimitTimeout
from pipeline.recovery.deadletters import record_dead_letter
from pipeline.recovery.deliveries import (
    MapDelivery,
    count_deliveries,
    count_map_delivery,
    delivery_key,
    forget_deliveries,
    map_delivery_poisons,
    sale_delivery,
    uncount_delivery,
    uncount_map_delivery,
)
from pipeline.writer import drain
from pipeline.writer.claim import claim_write_message

log = logging.getLogger(__name__)


class MapOutcome(NamedTuple):
    """What one attempt at mapping a document came to."""

    # ready: mapped and waiting for a writer; mapped: nothing to write (or already handled);
    # dead: a dead letter; retry: try again in `wait` seconds; paused: the tenant is parked.
    state: str
    wait: float | None = None
    #: The document's state once mapped ("mapped": what it became instead of ready).
    settled: DocumentState | None = None

    @property
    def finished(self) -> bool:
        """The attempt ended for good: its delivery count may be reset."""
        return self.state in ("ready", "mapped", "dead")


def map_batch(
    ctx: TenantContext,
    client: redis.Redis | None,
    deliveries: dict[int, MapDelivery],
    *,
    retries: int,
    read: ParentRead | None = None,
) -> dict[int, MapOutcome]:
    """Map documents in one transaction and decide, by the error policy, what a failure means for each."""
    try:
        settled = document.map_documents(ctx, list(deliveries), read=read)
    except SyncError as error:
        # Only the reference read talks to Xero or Cin7 here, before any document is touched: every
        # document of the batch fails alike.
        pause = pause_tenant(ctx, error) if pauses_tenant(error.error_class) else None
        return {
            doc_id: _map_failed(ctx, client, doc_id, delivery, error, retries=retries, pause=pause)
            for doc_id, delivery in deliveries.items()
        }
    return {
        doc_id: MapOutcome(
            "ready" if settled.get(doc_id) == DocumentState.READY else "mapped", settled=settled.get(doc_id)
        )
        for doc_id in deliveries
    }


def map_once(
    ctx: TenantContext, client: redis.Redis | None, doc_id: int, delivery: MapDelivery, *, retries: int
) -> MapOutcome:
    """Map one document and decide, by the error policy, what its failure means."""
    return map_batch(ctx, client, {doc_id: delivery}, retries=retries)[doc_id]


def _map_failed(
    ctx: TenantContext,
    client: redis.Redis | None,
    doc_id: int,
    delivery: MapDelivery,
    error: SyncError,
    *,
    retries: int,
    pause: float | None,
) -> MapOutcome:
    if pauses_tenant(error.error_class):
        # The reference read met a day limit or a refused connection (or the tenant is already
        # parked): the tenant is parked, and this document waits for the sweep.
        uncount_map_delivery(ctx, client, doc_id, delivery)
        return MapOutcome("paused", pause)
    if not counts_as_attempt(error.error_class):
        uncount_map_delivery(ctx, client, doc_id, delivery)
    # Only the reference read talks to Xero here; it is retried like any call.
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


def wake_writer(ctx: TenantContext, doc_id: int) -> None:
    """Send a write message unless one is already pending: the writer drains every ready row anyway."""
    if claim_write_message(ctx):
        app.send(TaskName.WRITE_DOCUMENT, ctx.tenant_key, doc_id)


# Documents a writer maps per transaction after its writes (a drain can wake hundreds of payments).
WOKEN_BATCH = 100


def write_and_map(ctx: TenantContext, doc_id: int | None) -> dict[str, Any]:
    """What a write_document message does: drain the tenant's ready rows, and map here what the writes
    woke (a payment whose invoice is now in Xero), rather than as one map_document message each.
    """
    return drain.write_message(ctx, doc_id, remap=map_woken)


def map_woken(ctx: TenantContext, doc_ids: Sequence[int]) -> None:
    """Map documents that a write woke, in batches; wake a writer for those now ready.

    A batch that fails goes on as one map_document message per document, where the error policy and
    the delivery counts judge each on its own: one bad payment does not hold back the rest.
    """
    ready: list[int] = []
    for start in range(0, len(doc_ids), WOKEN_BATCH):
        chunk = list(doc_ids[start : start + WOKEN_BATCH])
        try:
            settled = document.map_documents(ctx, chunk)
        except Exception:  # whatever it was, each document's own message classifies it (and counts it)
            log.warning(
                "mapping %d woken documents together failed; each goes on as its own message", len(chunk), exc_info=True
            )
            drain.send_to_map(ctx, chunk)
            continue
        ready.extend(doc_id for doc_id, state in settled.items() if state == DocumentState.READY)
    if ready:
        wake_writer(ctx, ready[0])


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


def map_fetched(
    ctx: TenantContext,
    client: redis.Redis | None,
    fetched: Sequence[FetchedInvoice],
    *,
    redis_counts: bool,
    recount: bool,
    read: ParentRead | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Map the fetched invoices that need it, in this task and one transaction; return each invoice's
    state and the delivery keys of the documents whose mapping finished.

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
    deliveries: dict[int, MapDelivery] = {}
    for invoice in to_map:
        key = keys[invoice.doc_id]
        if redis_counts:
            count = counts.get(invoice.doc_id)
            if (
                count is not None
                and count > ctx.settings.max_attempts
                and map_delivery_poisons(ctx, invoice.doc_id, count)
            ):
                states[_invoice_name(invoice)] = "poison"
                finished.append(key)
                continue
            deliveries[invoice.doc_id] = MapDelivery(key, in_redis=count is not None, deliveries=count or 0)
        else:
            if map_delivery_poisons(ctx, invoice.doc_id, None):
                states[_invoice_name(invoice)] = "poison"
                continue
            deliveries[invoice.doc_id] = MapDelivery(key, in_ledger=True)
    outcomes = map_batch(ctx, client, deliveries, retries=0, read=read) if deliveries else {}
    by_id = {invoice.doc_id: invoice for invoice in to_map}
    for doc_id, outcome in outcomes.items():
        if outcome.state == "retry" or (
            outcome.state == "paused" and outcome.wait is not None and outcome.wait <= MAX_COUNTDOWN_SECONDS
        ):
            app.send(TaskName.MAP_DOCUMENT, ctx.tenant_key, doc_id, countdown=outcome.wait)
        if outcome.finished:
            finished.append(keys[doc_id])
        # Mapped to nothing to write: say what it became (waiting, synced, voided, ignored, conflict, dead).
        mapped_to = outcome.settled if outcome.state == "mapped" else None
        states[_invoice_name(by_id[doc_id])] = str(mapped_to) if mapped_to is not None else outcome.state
    ready = [doc_id for doc_id, outcome in outcomes.items() if outcome.state == "ready"]
    # Not pending when its turn came (a duplicate delivery): what the ledger has now.
    unmapped = [doc_id for doc_id, outcome in outcomes.items() if outcome.state == "mapped" and not outcome.settled]
    if ready:
        wake_writer(ctx, ready[0])
    if unmapped:
        with ctx.sessions() as session:
            for kind, number, doc_id, state in session.execute(
                select(SyncDocument.kind, SyncDocument.document_number, SyncDocument.id, SyncDocument.state).where(
                    SyncDocument.id.in_(unmapped)
                )
            ):
                states[_document_name(kind, number, doc_id)] = str(state)
    return states, finished


def fetch_and_map(
    ctx: TenantContext, sale_id: str, *, kind: ParentKind = ParentKind.SALE, wait: bool = True
) -> dict[str, Any]:
    """What a fetch_sale message does: read one sale's detail, record and map its invoices, wake a writer.

    Returns the sale and each of its invoices by number with where it stands, e.g.
    {"sale": "...", "invoices": {"INV-123": "ready"}}: Flower shows it for every fetch_sale task, which
    is how an operator following one invoice finds the task that carried it. `wait=False` (a group's
    sale, counted in Redis): {"sale": ..., "fetch": "busy"}, with nothing read or counted, unless Cin7's
    budget has a slot free now.
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
    read: ParentRead | None = None
    try:
        if kind is ParentKind.PURCHASE:
            fetched = fetch_purchase(ctx, sale_id)
        else:
            # Only a delivery counted in Redis can be taken back as if it never came.
            fetched, read = fetch.read_sale(ctx, sale_id, wait=wait or deliveries is None)
    except RateLimitTimeout:
        assert deliveries is not None
        uncount_delivery(client, sale_key)
        return {**result, "fetch": "busy"}
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
    states, finished = map_fetched(
        ctx, client, fetched, redis_counts=deliveries is not None, recount=recount, read=read
    )
    result["invoices"] = states
    if deliveries is not None:
        forget_deliveries(client, [sale_key, *finished])
    return result


def _group_key(ctx: TenantContext, sale_ids: Sequence[str]) -> str:
    digest = hashlib.sha256(",".join(sorted(sale_id.lower() for sale_id in sale_ids)).encode()).hexdigest()[:32]
    return delivery_key(ctx, "sales", digest)


def fetch_and_map_group(ctx: TenantContext, sale_ids: Sequence[str]) -> dict[str, Any]:
    """What a fetch_sales message does: fetch_and_map for each of a poll's changed sales, in one task.

    One Celery message for several sales costs a fraction of one each, and each sale keeps its own
    delivery count and its own transactions. The result names every invoice by number with its state,
    and each sale with how its fetch went ("fetched", or why not), e.g. {"invoices": {"INV-123":
    "ready"}, "sales": {"...": "fetched"}}: Flower still shows which task carried which invoice.

    Two things send sales on as one fetch_sale message each instead:
    - Cin7's budget has no slot free at once: the group does not wait for one, since a waiting group
      would hold its worker from a webhook's sale; the single messages wait their turn like any other.
    - The group was delivered before without finishing (its worker died): one of its sales may be what
      kills workers, and alone each one's own count finds it, without poisoning the others.
    """
    client = shared_redis(ctx.settings)
    # Every invoice of the group by number, first: Flower shows a result's repr cut to a length
    # (tasks.sync.FETCH_SALES_RESULT_REPR), and the numbers are what an operator searches for.
    invoices: dict[str, str] = {}
    sales: dict[str, str] = {}
    group_key = _group_key(ctx, sale_ids)
    counted = count_deliveries(client, [group_key]) if len(sale_ids) > 1 else None
    if counted is None or counted[0] > 1:
        if counted is not None:
            log.warning("a group of %d sales was delivered again: each goes on alone", len(sale_ids))
        for sale_id in sale_ids:
            app.send(TaskName.FETCH_SALE, ctx.tenant_key, sale_id)
        forget_deliveries(client, [group_key])
        return {"invoices": invoices, "sales": dict.fromkeys(sale_ids, "sent on alone")}
    for index, sale_id in enumerate(sale_ids):
        result = fetch_and_map(ctx, sale_id, wait=False)
        if result.get("fetch") == "busy":
            for waiting in sale_ids[index:]:
                app.send(TaskName.FETCH_SALE, ctx.tenant_key, waiting)
                sales[waiting] = "sent on alone (Cin7's minute is busy)"
            break
        invoices.update(result["invoices"])
        sales[sale_id] = str(result.get("fetch", "fetched"))
    forget_deliveries(client, [group_key])
    return {"invoices": invoices, "sales": sales}

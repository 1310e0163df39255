"""Acting on one recorded event: it only says which sales or customers changed; read them as a poll would."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline import app
from pipeline.app import FETCH_TASKS, TaskName
from pipeline.context import TenantContext
from pipeline.discovery.poll import store_customers
from pipeline.errors import SyncError
from pipeline.ledger.models import ParentKind, SaleRecord, SaleState, SyncDocument, WebhookEvent, utcnow
from pipeline.ledger.ops import insert_ignore
from pipeline.policy import Next, decide_for
from pipeline.recovery.deadletters import record_row_dead_letter
from pipeline.webhooks.events import EventState, ci_get, event_kind, guid_or_none

log = logging.getLogger(__name__)

# A Customer/Updated event naming more customers than this is read by a poll (a page per 1000), so that
# one event never makes more than this many Cin7 calls per attempt.
MAX_CUSTOMERS_PER_EVENT = 10


@dataclass
class EventOutcome:
    """What processing one event did; the task sends a fetch for each sale id."""

    state: str
    sale_ids: list[str] = field(default_factory=list)
    #: What the ids are: sales, or purchases (`ledger.models.ParentKind`).
    parent_kind: str = "sale"
    customers: int = 0
    error: str | None = None
    #: Too many customers to read one by one: the caller sends a poll instead.
    poll: bool = False


def _sale_ids_for(session: Session, ctx: TenantContext, event: WebhookEvent) -> list[str]:
    if event.sale_id:
        return [event.sale_id]
    items = event.payload if isinstance(event.payload, list) else [event.payload]
    first = items[0] if items and isinstance(items[0], Mapping) else {}
    sale_id = guid_or_none(ci_get(first, "SaleID")) or guid_or_none(ci_get(first, "SaleTaskID"))
    if sale_id:
        return [sale_id]
    if event_kind(event.event_type) == "purchase":
        return _purchase_ids_for(session, ctx, first)
    # Only a number: find the sale through what the ledger already knows.
    number = ci_get(first, "DocumentNumber", "InvoiceNumber", "CreditNoteNumber")
    if isinstance(number, str | int):
        found = session.scalar(
            select(SyncDocument.sale_id).where(
                SyncDocument.tenant_id == ctx.tenant_pk, SyncDocument.document_number == str(number).strip()
            )
        )
        if found:
            return [found]
    order = ci_get(first, "OrderNumber", "SaleOrderNumber")
    if isinstance(order, str | int):
        found = session.scalar(
            select(SaleRecord.sale_id).where(
                SaleRecord.tenant_id == ctx.tenant_pk, SaleRecord.order_number == str(order).strip()
            )
        )
        if found:
            return [found]
    return []


def _purchase_ids_for(session: Session, ctx: TenantContext, first: Mapping[str, Any]) -> list[str]:
    """A purchase event without an id: the purchase the ledger knows by its order number."""
    order = ci_get(first, "OrderNumber", "PurchaseOrderNumber")
    if not isinstance(order, str | int):
        return []
    found = session.scalar(
        select(SaleRecord.sale_id).where(
            SaleRecord.tenant_id == ctx.tenant_pk,
            SaleRecord.kind == ParentKind.PURCHASE.value,
            SaleRecord.order_number == str(order).strip(),
        )
    )
    return [found] if found else []


def mark_sales_discovered(
    session: Session, tenant_pk: int, sale_ids: list[str], kind: ParentKind = ParentKind.SALE
) -> None:
    """Flag sales (or purchases) for a fresh detail read, like a poll that saw them change (the sweep
    re-sends lost fetches).
    """
    now = utcnow()
    insert_ignore(
        session,
        SaleRecord,
        [
            {
                "tenant_id": tenant_pk,
                "sale_id": sale_id,
                "kind": kind.value,
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
        for detail in ci_get(item, "CustomerDetailsList") or []:
            if not isinstance(detail, Mapping):
                continue
            customer = ci_get(detail, "Customer")
            guid = guid_or_none(ci_get(customer, "ID", "CustomerID")) if isinstance(customer, Mapping) else None
            guid = guid or guid_or_none(ci_get(detail, "CustomerID", "ID"))
            if guid and guid not in ids:
                ids.append(guid)
        guid = guid_or_none(ci_get(item, "CustomerID"))
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
        return _customer_event(ctx, event_id, _customer_ids(payload))
    with ctx.sessions() as session, session.begin():
        event = session.get(WebhookEvent, event_id, with_for_update=True)
        if event is None or event.state in (EventState.DONE, EventState.IGNORED):
            return EventOutcome(state=event.state if event is not None else "missing")
        if kind not in ("sale", "purchase") or (kind == "purchase" and not ctx.settings.sync_purchases):
            _finish(session, event_id, EventState.IGNORED, f"event type {event.event_type!r} is not handled")
            return EventOutcome(state=EventState.IGNORED)
        parent = ParentKind.PURCHASE if kind == "purchase" else ParentKind.SALE
        sale_ids = _sale_ids_for(session, ctx, event)
        if not sale_ids:
            _finish(session, event_id, EventState.IGNORED, f"no {parent.value} found for this event")
            return EventOutcome(state=EventState.IGNORED, error=f"no {parent.value} found")
        mark_sales_discovered(session, ctx.tenant_pk, sale_ids, parent)
        if event.sale_id is None:
            event.sale_id = sale_ids[0]
        _finish(session, event_id, EventState.DONE, None)
    return EventOutcome(state=EventState.DONE, sale_ids=sale_ids, parent_kind=parent.value)


def _customer_event(ctx: TenantContext, event_id: int, customer_ids: list[str]) -> EventOutcome:
    if not customer_ids:
        with ctx.sessions() as session, session.begin():
            _finish(session, event_id, EventState.IGNORED, "no customer id in the payload")
        return EventOutcome(state=EventState.IGNORED)
    if len(customer_ids) > MAX_CUSTOMERS_PER_EVENT:
        # One call per customer would let one event spend Cin7's minute; the poll reads them in pages.
        with ctx.sessions() as session, session.begin():
            _finish(session, event_id, EventState.DONE, f"{len(customer_ids)} customers: read by a poll")
        return EventOutcome(state=EventState.DONE, poll=True)
    rows = [row for row in (ctx.cin7.get_customer(cid) for cid in customer_ids) if row is not None]
    with ctx.sessions() as session, session.begin():
        store_customers(session, ctx.tenant_pk, rows)
        _finish(session, event_id, EventState.DONE, None)
    return EventOutcome(state=EventState.DONE, customers=len(rows))


def _finish(session: Session, event_id: int, state: str, error: str | None) -> None:
    event = session.get(WebhookEvent, event_id)
    if event is not None:
        event.state = state
        event.error = error
        event.processed_at = utcnow()


def mark_event_failed(ctx: TenantContext, event_id: int, message: str) -> None:
    """Give up on an event (the poll is the safety net), keeping the reason.

    A customer event that failed for good is a dead letter naming its customers: their details may be
    stale in the ledger until they next change in Cin7. A sale event only flags sales, and the poll
    reads the same sales again.
    """
    with ctx.sessions() as session, session.begin():
        _finish(session, event_id, EventState.DONE, message[:4000])
        event = session.get(WebhookEvent, event_id)
        if event is None or event_kind(event.event_type) != "customer":
            return
        customer_ids = _customer_ids(event.payload)
        record_row_dead_letter(
            session,
            ctx.tenant_pk,
            kind="customer",
            record_id=f"event:{event_id}",
            number=", ".join(customer_ids)[:255] or None,
            reasons=[f"webhook {event.event_type} for {len(customer_ids)} customers could not be read: {message}"],
            row={"event_id": event_id, "customer_ids": customer_ids},
            stage="webhook",
        )


def event_message(ctx: TenantContext, event_id: int, *, retries: int) -> tuple[dict[str, Any], float | None]:
    """What a webhook_event message does: act on the event, fan out its fetches, or say when to retry.

    Returns the task's result and, when the error policy says to try again soon, the countdown. An
    event that cannot be processed is recorded as failed: the poll reads the same data later.
    """
    try:
        outcome = process_event(ctx, event_id)
    except SyncError as error:
        decision = decide_for(error, retries + 1, ctx.settings, pauses_tenant=False)
        if decision.next is Next.COUNTDOWN:
            return {"event": event_id, "state": "retry"}, decision.delay
        log.warning("webhook event %s failed: %s", event_id, error.message)
        mark_event_failed(ctx, event_id, error.message)
        return {"event": event_id, "state": "failed"}, None
    for sale_id in outcome.sale_ids:
        app.send(FETCH_TASKS[outcome.parent_kind], ctx.tenant_key, sale_id)
    if outcome.poll:
        app.send(TaskName.POLL, ctx.tenant_key)
    result = {"event": event_id, "state": outcome.state, "sales": len(outcome.sale_ids), "customers": outcome.customers}
    return result, None

"""The durable inbox: a delivery is recorded in the ledger under a dedupe key before it is enqueued.

A broker that is down loses nothing: the event stays recorded, and the sweep sends what was not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update

from pipeline import app
from pipeline.app import TaskName
from pipeline.context import TenantContext
from pipeline.ledger.models import WebhookEvent, utcnow
from pipeline.ledger.ops import dialect_insert
from pipeline.webhooks.events import EventState, ParsedEvent

log = logging.getLogger(__name__)


# A delivery identical to one received less than this long ago is a repeat (Cin7 retries for about
# 76 minutes after a failed delivery, but a delivery we answered with 200 is not retried). An older
# identical body is a new event (e.g. an invoice undone and authorised again) and is processed again:
# re-processing is harmless, absorbing a real change would only delay it until the next poll.
DEDUPE_WINDOW_SECONDS = 900.0


# A `received` event older than this was never handed to the broker: the sweep sends it.
UNSENT_AFTER_SECONDS = 15.0


# Celery's default publish retry waits ~0.6 s per failure; a webhook answer must not.


@dataclass(frozen=True)
class Receipt:
    """What the receiver did with one delivery."""

    event_id: int | None  # None: a repeat of an event already recorded
    state: str
    event_type: str
    duplicate: bool


def record_event(ctx: TenantContext, parsed: ParsedEvent, payload: Any) -> Receipt:
    """Record a delivery durably (committed on return); a repeat within the dedupe window is absorbed."""
    now = utcnow()
    state = EventState.RECEIVED if parsed.kind is not None else EventState.IGNORED
    error = None if parsed.kind is not None else f"event type {parsed.event_type!r} is not handled"
    if parsed.kind in ("sale", "purchase") and parsed.sale_id is None and not parsed.document_ids:
        state, error = EventState.IGNORED, f"{parsed.kind} event without an id or document number"
    if parsed.kind == "purchase" and not ctx.settings.sync_purchases:
        state, error = EventState.IGNORED, "a purchase event, and SYNC_PURCHASES is off"
    values = {
        "tenant_id": ctx.tenant_pk,
        "event_type": parsed.event_type,
        "dedupe_key": parsed.dedupe_key,
        "sale_id": parsed.sale_id,
        "payload": payload,
        "state": state,
        "received_at": now,
        "enqueued_at": None,
        "processed_at": None,
        "error": error,
    }
    with ctx.sessions() as session, session.begin():
        statement = (
            dialect_insert(session, WebhookEvent)
            .values(values)
            .on_conflict_do_update(
                index_elements=["tenant_id", "dedupe_key"],
                set_={k: v for k, v in values.items() if k not in ("tenant_id", "dedupe_key")},
                where=(WebhookEvent.received_at < now - timedelta(seconds=DEDUPE_WINDOW_SECONDS))
                & WebhookEvent.state.in_([EventState.DONE, EventState.IGNORED]),
            )
            .returning(WebhookEvent.id)
        )
        event_id = session.scalar(statement)
    if state == EventState.IGNORED and event_id is not None:
        log.info("webhook %s recorded as ignored (%s)", parsed.event_type, error)
    return Receipt(event_id, state, parsed.event_type, duplicate=event_id is None)


def publish_event(tenant_key: str, event_id: int) -> None:
    """Send the event's task, failing fast (not after Celery's default retries) when the broker is down."""
    app.send_fast(TaskName.WEBHOOK_EVENT, tenant_key, event_id)


def mark_enqueued(ctx: TenantContext, event_ids: Iterable[int]) -> None:
    """Stamp events whose message went out (unless the task has already finished them)."""
    ids = list(event_ids)
    if not ids:
        return
    with ctx.sessions() as session, session.begin():
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_(ids), WebhookEvent.state == EventState.RECEIVED)
            .values(state=EventState.ENQUEUED, enqueued_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def resend_unsent_events(ctx: TenantContext, older_than_seconds: float = UNSENT_AFTER_SECONDS) -> list[int]:
    """Events the broker never got (`received` for a while) or lost (`enqueued` and stuck).

    They are marked `enqueued` in the same transaction; the caller sends `TaskName.WEBHOOK_EVENT`
    (tenant key, event id) for each id after this returns. Sending twice is harmless.
    """
    now = utcnow()
    unsent_before = now - timedelta(seconds=older_than_seconds)
    lost_before = now - timedelta(seconds=ctx.settings.stuck_after_seconds)
    with ctx.sessions() as session, session.begin():
        events = list(
            session.scalars(
                select(WebhookEvent)
                .where(
                    WebhookEvent.tenant_id == ctx.tenant_pk,
                    or_(
                        (WebhookEvent.state == EventState.RECEIVED) & (WebhookEvent.received_at < unsent_before),
                        (WebhookEvent.state == EventState.ENQUEUED) & (WebhookEvent.enqueued_at < lost_before),
                    ),
                )
                .order_by(WebhookEvent.id)
                .limit(1000)
                .with_for_update(skip_locked=True)
            )
        )
        for event in events:
            event.state = EventState.ENQUEUED
            event.enqueued_at = now
        ids = [event.id for event in events]
    if ids:
        log.info("webhooks: re-sending %d events the broker did not take", len(ids))
    return ids


def delete_expired_events(ctx: TenantContext, *, batch: int = 1000) -> int:
    """Delete handled events (done, ignored) received more than WEBHOOK_EVENT_RETENTION_DAYS ago, a
    batch at a time; events still on their way are kept whatever their age. Returns how many went.
    """
    cutoff = utcnow() - timedelta(days=ctx.settings.webhook_event_retention_days)
    with ctx.sessions() as session, session.begin():
        expired = (
            select(WebhookEvent.id)
            .where(
                WebhookEvent.tenant_id == ctx.tenant_pk,
                WebhookEvent.state.in_([EventState.DONE, EventState.IGNORED]),
                WebhookEvent.received_at < cutoff,
            )
            .order_by(WebhookEvent.id)
            .limit(batch)
        )
        ids = list(session.scalars(expired))
        if ids:
            session.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(ids)))
    if ids:
        log.info("webhooks: deleted %d events past their retention", len(ids))
    return len(ids)

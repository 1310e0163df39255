"""Celery task for Cin7 webhook events: a thin wrapper around `pipeline.webhooks.server.process_event`.

Idempotent (a finished event is left alone, and what it triggers is a fetch that compares content
hashes), so it acks late and is re-delivered if its worker dies.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from sqlalchemy.exc import DBAPIError, OperationalError

from pipeline.app import TaskName, app, send
from pipeline.context import tenant_context
from pipeline.errors import SyncError
from pipeline.webhooks import server as webhooks
from pipeline.writer.write import backoff_seconds

log = logging.getLogger(__name__)

# Waits up to this long are Celery countdowns (the event is also re-sent by the sweep if lost).
MAX_COUNTDOWN_SECONDS = 120.0

_DB_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError, DBAPIError),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 10,
}
_IDEMPOTENT: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}


@app.task(name=TaskName.WEBHOOK_EVENT.value, bind=True, **_IDEMPOTENT, **_DB_RETRY)
def webhook_event(self: Task, tenant_key: str, event_id: int) -> dict[str, Any]:
    """Act on one recorded webhook: re-read what it names from Cin7 (sales via `FETCH_SALE`)."""
    ctx = tenant_context(tenant_key)
    try:
        outcome = webhooks.process_event(ctx, event_id)
    except SyncError as error:
        retries = int(self.request.retries or 0)
        if error.error_class.retryable and retries < ctx.settings.max_attempts:
            delay = error.retry_after or backoff_seconds(
                retries + 1, ctx.settings.retry_base_seconds, ctx.settings.retry_cap_seconds
            )
            raise self.retry(countdown=min(MAX_COUNTDOWN_SECONDS, delay)) from error
        # The poll re-reads the same data later: record why and stop.
        log.warning("webhook event %s failed: %s", event_id, error.message)
        webhooks.mark_event_failed(ctx, event_id, error.message)
        return {"event": event_id, "state": "failed"}
    for sale_id in outcome.sale_ids:
        send(TaskName.FETCH_SALE, tenant_key, sale_id)
    return {"event": event_id, "state": outcome.state, "sales": len(outcome.sale_ids), "customers": outcome.customers}

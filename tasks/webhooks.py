"""Celery task for Cin7 webhook events: unpacks the ids and hands the event to the pipeline.

Idempotent (a finished event is left alone, and what it triggers is a fetch that compares content
hashes), so it acks late and is re-delivered if its worker dies.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from pipeline.app import TaskName, app
from pipeline.context import tenant_context
from pipeline.webhooks.process import event_message
from tasks.options import DB_RETRY, IDEMPOTENT


@app.task(name=TaskName.WEBHOOK_EVENT.value, bind=True, **IDEMPOTENT, **DB_RETRY)
def webhook_event(self: Task, tenant_key: str, event_id: int) -> dict[str, Any]:
    """Act on one recorded webhook: re-read what it names from Cin7 (sales via `FETCH_SALE`)."""
    result, retry_in = event_message(tenant_context(tenant_key), event_id, retries=int(self.request.retries or 0))
    if retry_in is not None:
        raise self.retry(countdown=retry_in)
    return result

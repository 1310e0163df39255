"""Celery task for alerts: the periodic flush that beat fires every 30 seconds per tenant."""

from __future__ import annotations

from pipeline.app import TaskName, app
from pipeline.context import tenant_context
from pipeline.operations.alert_flush import flush_alerts


# Safe to redeliver: what is due was claimed in the ledger before sending, so a second run finds
# nothing left to send.
@app.task(name=TaskName.FLUSH_ALERTS.value, acks_late=True, reject_on_worker_lost=True)
def flush_alerts_task(tenant_key: str) -> int:
    """Send the tenant's due alerts and recovery notices; returns how many went out."""
    return len(flush_alerts(tenant_context(tenant_key)))

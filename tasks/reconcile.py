"""Celery task: the scheduled (beat) and on-demand reconciliation of Cin7 against Xero."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, ProgrammingError

from pipeline.app import TaskName, app
from pipeline.context import tenant_context
from pipeline.reconcile.run import run_reconciliation
from pipeline.reconcile.window import parse_day

log = logging.getLogger(__name__)


# Acked on receipt: a reconciliation lost with its worker is simply the next scheduled one, and
# redelivering a long read after a crash would only repeat it.
@app.task(
    name=TaskName.RECONCILE.value,
    acks_late=False,
    autoretry_for=(OperationalError, DBAPIError),
    dont_autoretry_for=(DataError, IntegrityError, ProgrammingError),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=3,
)
def reconcile(
    tenant_key: str, since: str | None = None, until: str | None = None, heal: bool = False
) -> dict[str, Any]:
    """Compare Cin7 and Xero for the window (default: the last RECONCILE_LOOKBACK_DAYS days)."""
    ctx = tenant_context(tenant_key)
    result = run_reconciliation(ctx, since=parse_day(since), until=parse_day(until), heal_findings=heal)
    log.info("reconciliation %d for %s: %d discrepancies", result.run_id, tenant_key, result.summary["total"])
    return {"run_id": result.run_id, "report": str(result.report_html), **result.summary}

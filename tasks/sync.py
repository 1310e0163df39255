"""Celery tasks of the sync path: each unpacks ids, calls one pipeline function and returns its result.

Every task here is idempotent against the ledger (a duplicate delivery finds its row already moved
on), so all of them ack late and are re-delivered if their worker dies. Delivery counting, the error
policy and what is enqueued next live in the pipeline, not here.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from pipeline.app import TaskName, app
from pipeline.context import tenant_context
from pipeline.discovery.poll import poll_message
from pipeline.ledger.models import ParentKind
from pipeline.mapping.stage import fetch_and_map, fetch_and_map_group, map_message, write_and_map
from pipeline.recovery.sweep import sweep_message
from tasks.options import DB_RETRY, IDEMPOTENT


@app.task(name=TaskName.POLL.value, bind=True, **IDEMPOTENT, **DB_RETRY)
def poll(self: Task, tenant_key: str) -> dict[str, Any]:
    """Read changed customers and sales from Cin7 and fan out one fetch per changed sale."""
    result, countdown = poll_message(tenant_context(tenant_key), retries=self.request.retries)
    if countdown is not None:
        raise self.retry(countdown=countdown, max_retries=None)
    return result


@app.task(name=TaskName.FETCH_SALE.value, **IDEMPOTENT, **DB_RETRY)
def fetch_sale(tenant_key: str, sale_id: str) -> dict[str, Any]:
    """Read one sale's detail, record its invoices, map each changed one here, and wake a writer."""
    return fetch_and_map(tenant_context(tenant_key), sale_id)


# Flower shows a task's result as its repr cut to this many characters (Celery's default is 1024): ten
# sales' invoice numbers and states, and the sales' ids, fit.
FETCH_SALES_RESULT_REPR = 4096


@app.task(name=TaskName.FETCH_SALES.value, resultrepr_maxsize=FETCH_SALES_RESULT_REPR, **IDEMPOTENT, **DB_RETRY)
def fetch_sales(tenant_key: str, sale_ids: list[str]) -> dict[str, Any]:
    """Fetch and map several of a poll's changed sales in one task; each invoice by number in the result."""
    return fetch_and_map_group(tenant_context(tenant_key), sale_ids)


@app.task(name=TaskName.FETCH_PURCHASE.value, **IDEMPOTENT, **DB_RETRY)
def fetch_purchase(tenant_key: str, purchase_id: str) -> dict[str, Any]:
    """Read one purchase's detail, record its bills, map each changed one here, and wake a writer."""
    return fetch_and_map(tenant_context(tenant_key), purchase_id, kind=ParentKind.PURCHASE)


@app.task(name=TaskName.MAP_DOCUMENT.value, bind=True, **IDEMPOTENT, **DB_RETRY)
def map_document(self: Task, tenant_key: str, doc_id: int) -> bool:
    """Map one document; when it is ready, ask a writer to take it."""
    outcome = map_message(tenant_context(tenant_key), doc_id, retries=self.request.retries)
    if outcome.state == "retry":
        raise self.retry(countdown=outcome.wait)
    return outcome.state == "ready"


@app.task(name=TaskName.WRITE_DOCUMENT.value, **IDEMPOTENT, **DB_RETRY)
def write_document(tenant_key: str, doc_id: int | None) -> dict[str, Any]:
    """Write this document to Xero together with whatever else is ready for the tenant."""
    return write_and_map(tenant_context(tenant_key), doc_id)


@app.task(name=TaskName.SWEEP.value, **IDEMPOTENT, **DB_RETRY)
def sweep_ledger(tenant_key: str) -> dict[str, int]:
    """Re-send what the broker lost, release due retries, reclaim rows of dead writers."""
    return sweep_message(tenant_context(tenant_key))

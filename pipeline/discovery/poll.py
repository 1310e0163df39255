"""Cin7 -> ledger: find changed sales, read their detail, and record one row per invoice.

The ledger is written and committed before anything is enqueued; a message lost after the commit is
found again by the sweep (pipeline.recovery.sweep), never by trusting the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mappings import Cin7Sale, Cin7SaleListRow, content_hash, parse_cin7_datetime
from pipeline.context import TenantContext
from pipeline.errors import ErrorClass, SyncError
from pipeline.ledger.models import (
    CustomerRecord,
    DocumentState,
    PollCursor,
    SaleRecord,
    SaleState,
    SyncDocument,
    utcnow,
)
from pipeline.ledger.ops import dialect_insert, insert_ignore

log = logging.getLogger(__name__)

SALES_STREAM = "sales"
CUSTOMERS_STREAM = "customers"


def _cursor(session: Session, tenant_pk: int, stream: str) -> PollCursor:
    insert_ignore(
        session,
        PollCursor,
        [{"tenant_id": tenant_pk, "stream": stream, "updated_at": utcnow()}],
        ["tenant_id", "stream"],
    )
    cursor = session.scalar(
        select(PollCursor).where(PollCursor.tenant_id == tenant_pk, PollCursor.stream == stream).with_for_update()
    )
    assert cursor is not None
    return cursor


@dataclass
class PollResult:
    """What one poll saw and did."""

    listed: int = 0
    changed_sale_ids: list[str] = field(default_factory=list)
    customers: int = 0
    watermark: datetime | None = None


def poll_customers(ctx: TenantContext) -> int:
    """Refresh customer snapshots changed since the last read, a page of up to 1000 at a time."""
    with ctx.sessions() as session, session.begin():
        cursor = _cursor(session, ctx.tenant_pk, CUSTOMERS_STREAM)
        since = (
            cursor.watermark - timedelta(seconds=ctx.settings.cin7_poll_overlap_seconds) if cursor.watermark else None
        )
    seen = 0
    newest = since
    for page in ctx.cin7.iter_customer_pages(since):
        with ctx.sessions() as session, session.begin():
            store_customers(session, ctx.tenant_pk, page)
        seen += len(page)
        for row in page:
            modified = parse_cin7_datetime(row.get("LastModifiedOn"))
            if modified is not None and (newest is None or modified > newest):
                newest = modified
    with ctx.sessions() as session, session.begin():
        cursor = _cursor(session, ctx.tenant_pk, CUSTOMERS_STREAM)
        if newest is not None and (cursor.watermark is None or newest > cursor.watermark):
            cursor.watermark = newest
        cursor.last_polled_at = utcnow()
    return seen


def store_customers(session: Session, tenant_pk: int, rows: Iterable[dict[str, Any]]) -> None:
    """Upsert customer snapshots by (tenant, customer id)."""
    by_id = {str(row["ID"]).lower(): row for row in rows if row.get("ID")}
    if not by_id:
        return
    existing = {
        record.customer_id: record
        for record in session.scalars(
            select(CustomerRecord).where(
                CustomerRecord.tenant_id == tenant_pk, CustomerRecord.customer_id.in_(list(by_id))
            )
        )
    }
    fresh = []
    for customer_id, row in by_id.items():
        modified = parse_cin7_datetime(row.get("LastModifiedOn"))
        record = existing.get(customer_id)
        if record is None:
            fresh.append(
                {
                    "tenant_id": tenant_pk,
                    "customer_id": customer_id,
                    "snapshot": row,
                    "last_modified_on": modified,
                    "fetched_at": utcnow(),
                }
            )
        else:
            record.snapshot = row
            record.last_modified_on = modified
            record.fetched_at = utcnow()
    insert_ignore(session, CustomerRecord, fresh, ["tenant_id", "customer_id"])


def poll_sales(ctx: TenantContext) -> PollResult:
    """Read saleList since the watermark (minus an overlap) and record every changed sale.

    Each page is committed before its sales are enqueued, and the watermark moves only after every
    page is stored: a poll that dies halfway re-reads from the old watermark next time, and rows it
    already recorded are recognised by their unchanged `Updated`.
    """
    result = PollResult()
    with ctx.sessions() as session, session.begin():
        cursor = _cursor(session, ctx.tenant_pk, SALES_STREAM)
        if cursor.watermark is None:
            since = utcnow() - timedelta(days=ctx.settings.cin7_initial_lookback_days)
        else:
            # Rows sharing the watermark's timestamp may still be committing in Cin7 as we read.
            since = cursor.watermark - timedelta(seconds=ctx.settings.cin7_poll_overlap_seconds)
    newest: datetime | None = None
    from pipeline.app import TaskName, send

    for page in ctx.cin7.iter_sale_pages(since):
        rows = [Cin7SaleListRow.model_validate(row) for row in page]
        result.listed += len(rows)
        with ctx.sessions() as session, session.begin():
            changed = record_listed_sales(session, ctx.tenant_pk, rows)
        for row in rows:
            if row.updated is not None and (newest is None or row.updated > newest):
                newest = row.updated
        for sale_id in changed:
            send(TaskName.FETCH_SALE, ctx.tenant_key, sale_id)
        result.changed_sale_ids.extend(changed)
        if changed:
            with ctx.sessions() as session, session.begin():
                mark_sales_enqueued(session, ctx.tenant_pk, changed)
    with ctx.sessions() as session, session.begin():
        cursor = _cursor(session, ctx.tenant_pk, SALES_STREAM)
        if newest is not None and (cursor.watermark is None or newest > cursor.watermark):
            cursor.watermark = newest
        cursor.last_polled_at = utcnow()
        result.watermark = cursor.watermark
    return result


def record_listed_sales(session: Session, tenant_pk: int, rows: Sequence[Cin7SaleListRow]) -> list[str]:
    """Insert new sales and flag changed ones; return the ids whose detail must be read."""
    by_id = {row.sale_id: row for row in rows if row.sale_id}
    if not by_id:
        return []
    insert_ignore(
        session,
        SaleRecord,
        [
            {
                "tenant_id": tenant_pk,
                "sale_id": sale_id,
                "order_number": row.order_number,
                "state": SaleState.DISCOVERED.value,
                "discovered_at": utcnow(),
                "updated_at": utcnow(),
                "attempts": 0,
                "source": "cin7core",
            }
            for sale_id, row in by_id.items()
        ],
        ["tenant_id", "sale_id"],
    )
    changed: list[str] = []
    for record in session.scalars(
        select(SaleRecord)
        .where(SaleRecord.tenant_id == tenant_pk, SaleRecord.sale_id.in_(list(by_id)))
        .with_for_update()
    ):
        row = by_id[record.sale_id]
        if record.listed_updated is not None and row.updated is not None and row.updated <= record.listed_updated:
            continue
        if record.listed_updated is not None and row.updated is None:
            continue
        record.listed_updated = row.updated
        record.order_number = row.order_number
        record.state = SaleState.DISCOVERED
        record.attempts = 0
        record.next_attempt_at = None
        changed.append(record.sale_id)
    return changed


def mark_sales_enqueued(session: Session, tenant_pk: int, sale_ids: Sequence[str]) -> None:
    """Stamp when the fetch message went out, so the sweep can tell a lost one."""
    for record in session.scalars(
        select(SaleRecord).where(SaleRecord.tenant_id == tenant_pk, SaleRecord.sale_id.in_(list(sale_ids)))
    ):
        record.enqueued_at = utcnow()


def _invoice_source(detail: dict[str, Any], invoice: dict[str, Any], customer: dict[str, Any] | None) -> str:
    """Hash of everything the invoice's mapping reads: header, this invoice, and the customer's terms."""
    header_keys = (
        "CustomerID",
        "Customer",
        "CustomerReference",
        "TaxCalculation",
        "TaxRule",
        "Terms",
        "CustomerCurrency",
        "BaseCurrency",
        "CurrencyRate",
    )
    order = detail.get("Order") or {}
    return content_hash(
        {
            "header": {key: detail.get(key) for key in header_keys},
            "order_number": order.get("SaleOrderNumber"),
            "invoice": invoice,
            "customer_terms": (customer or {}).get("PaymentTerm"),
            "customer_revenue_account": (customer or {}).get("RevenueAccount"),
        }
    )


@dataclass(frozen=True)
class FetchedInvoice:
    """One invoice of a fetched sale, as the ledger has it after the fetch."""

    doc_id: int
    number: str | None
    state: str  # `pending` when it needs (re)mapping

    @property
    def needs_map(self) -> bool:
        """The invoice is new or changed (or still unmapped): map it."""
        return self.state == DocumentState.PENDING


def fetch_sale(ctx: TenantContext, sale_id: str) -> list[FetchedInvoice]:
    """Read one sale's detail and record its invoices; return every invoice of the sale and its state.

    One ledger transaction in the usual case: the customer's snapshot is read, and the sale row and
    its invoice rows written, together. Only a customer missing from the bulk snapshot needs a Cin7
    call, made outside any transaction before the rows are written.
    """
    sale_id = sale_id.lower()
    detail = ctx.cin7.get_sale(sale_id)
    try:
        sale = Cin7Sale.model_validate(detail)
    except ValidationError as exc:
        raise SyncError(ErrorClass.MAPPING, f"Cin7 sale {sale_id} does not parse: {exc}", api="cin7") from exc
    with ctx.sessions() as session, session.begin():
        customer_row = _customer_snapshot(session, ctx.tenant_pk, sale.customer_id)
        if customer_row is not None or not sale.customer_id:
            return record_fetched_sale(session, ctx.tenant_pk, sale_id, detail, sale, customer_row)
    # Not in the bulk snapshot yet (created since the last customer poll): one call, then cached.
    customer_row = ctx.cin7.get_customer(sale.customer_id)
    with ctx.sessions() as session, session.begin():
        if customer_row is not None:
            store_customers(session, ctx.tenant_pk, [customer_row])
        return record_fetched_sale(session, ctx.tenant_pk, sale_id, detail, sale, customer_row)


def _customer_snapshot(session: Session, tenant_pk: int, customer_id: str | None) -> dict[str, Any] | None:
    snapshot = session.scalar(
        select(CustomerRecord.snapshot).where(
            CustomerRecord.tenant_id == tenant_pk, CustomerRecord.customer_id == (customer_id or "")
        )
    )
    return dict(snapshot) if snapshot is not None else None


# Built once per backend: building an upsert per sale costs more CPU than executing it.
_SALE_SET = ("snapshot", "fetched_updated", "fetched_at", "state", "last_error", "updated_at")
_statements: dict[tuple[str, str, bool], Any] = {}


def _sale_upsert(session: Session, *, keep_order_number: bool) -> Any:
    """INSERT the sale row, or on conflict update what a fetch learns (and the order number, unless
    the detail had no Order block: then the one saleList gave stays)."""
    key = (session.get_bind().dialect.name, "sale", keep_order_number)
    statement = _statements.get(key)
    if statement is None:
        insert = dialect_insert(session, SaleRecord)
        columns = _SALE_SET if keep_order_number else (*_SALE_SET, "order_number")
        statement = _statements[key] = insert.on_conflict_do_update(
            index_elements=["tenant_id", "sale_id"], set_={column: insert.excluded[column] for column in columns}
        )
    return statement


def _document_insert(session: Session) -> Any:
    """INSERT invoice rows that are new; RETURNING says which (one multi-row statement for many)."""
    key = (session.get_bind().dialect.name, "document", False)
    statement = _statements.get(key)
    if statement is None:
        statement = _statements[key] = (
            dialect_insert(session, SyncDocument)
            .on_conflict_do_nothing(index_elements=["tenant_id", "kind", "sale_id", "task_id"])
            .returning(SyncDocument.task_id, SyncDocument.id)
        )
    return statement


def record_fetched_sale(
    session: Session,
    tenant_pk: int,
    sale_id: str,
    detail: dict[str, Any],
    sale: Cin7Sale,
    customer_row: dict[str, Any] | None,
) -> list[FetchedInvoice]:
    """Store the sale's detail snapshot and one row per invoice; return each invoice and its state."""
    now = utcnow()
    sale_values: dict[str, Any] = {
        "tenant_id": tenant_pk,
        "sale_id": sale_id,
        "discovered_at": now,
        "attempts": 0,
        "source": "cin7core",
        "snapshot": detail,
        "fetched_updated": sale.last_modified_on,
        "fetched_at": now,
        "state": SaleState.FETCHED.value,
        "last_error": None,
        "updated_at": now,
        "order_number": sale.order.sale_order_number if sale.order is not None else None,
    }
    # One statement for the sale row, new or not; it locks the row as SELECT ... FOR UPDATE did.
    session.execute(_sale_upsert(session, keep_order_number=sale.order is None), sale_values)
    raw_invoices = {str(inv.get("TaskID", "")).lower(): inv for inv in detail.get("Invoices") or []}
    # By task id; a task id listed twice is recorded as its last version, as one row.
    versions: dict[str, dict[str, Any]] = {}
    for invoice in sale.invoices:
        if not invoice.task_id:
            continue
        versions[invoice.task_id] = {
            "document_number": invoice.invoice_number,
            "customer_id": sale.customer_id,
            "cin7_status": str(invoice.status) if invoice.status is not None else None,
            "cin7_modified_at": sale.last_modified_on,
            "source_hash": _invoice_source(detail, raw_invoices.get(invoice.task_id, {}), customer_row),
        }
    if not versions:
        return []
    # New invoices are inserted as they end up (pending, to be mapped) and come back from RETURNING;
    # only invoices the ledger already had need reading (locked) and comparing.
    inserted = session.execute(
        _document_insert(session),
        [
            {
                "tenant_id": tenant_pk,
                "kind": "invoice",
                "sale_id": sale.id,
                "task_id": task_id,
                **version,
                "state": DocumentState.PENDING.value,
                "attempts": 0,
                "next_attempt_at": None,
                "enqueued_at": now,
                "discovered_at": now,
                "updated_at": now,
                "write_uncertain": False,
            }
            for task_id, version in versions.items()
        ],
    )
    fetched = {
        task_id: FetchedInvoice(int(doc_id), versions[task_id]["document_number"], DocumentState.PENDING.value)
        for task_id, doc_id in inserted
    }
    existing = [task_id for task_id in versions if task_id not in fetched]
    if existing:
        for doc in session.scalars(
            select(SyncDocument)
            .where(
                SyncDocument.tenant_id == tenant_pk,
                SyncDocument.kind == "invoice",
                SyncDocument.sale_id == sale.id,
                SyncDocument.task_id.in_(existing),
            )
            .with_for_update()
        ):
            fetched[doc.task_id] = _update_document(doc, **versions[doc.task_id])
    return [fetched[task_id] for task_id in versions if task_id in fetched]


def _update_document(
    doc: SyncDocument,
    *,
    document_number: str | None,
    customer_id: str | None,
    cin7_status: str | None,
    cin7_modified_at: datetime | None,
    source_hash: str,
) -> FetchedInvoice:
    """Record a new read of an invoice the ledger has; its state is `pending` when it needs (re)mapping."""
    doc.document_number = document_number
    doc.customer_id = customer_id
    doc.cin7_status = cin7_status
    doc.cin7_modified_at = cin7_modified_at
    if doc.source_hash == source_hash and doc.state != DocumentState.PENDING:
        return FetchedInvoice(doc.id, doc.document_number, str(doc.state))
    changed = doc.source_hash != source_hash
    doc.source_hash = source_hash
    if doc.state == DocumentState.WRITING:
        # The writer notices the newer source when it finishes (mapped_source_hash differs).
        return FetchedInvoice(doc.id, doc.document_number, str(doc.state))
    if changed:
        # A new version starts afresh; the same one read again keeps counting the mappings that
        # died (without Redis that count is this column, and a redelivered fetch maps it again).
        doc.attempts = 0
    doc.state = DocumentState.PENDING
    doc.next_attempt_at = None
    doc.enqueued_at = utcnow()
    return FetchedInvoice(doc.id, doc.document_number, str(doc.state))

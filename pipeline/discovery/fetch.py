"""Fetch: read one changed sale's detail from Cin7 and record one ledger row per document of it.

Invoices, credit notes, payments, refunds and allocations each get a row carrying a hash of everything
its mapping reads (`discovery.versions`), so an unchanged one needs nothing; a document Cin7 no longer
lists is marked gone and mapped again. The rows are committed before anything is enqueued.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mappings import Cin7Customer, Cin7Sale
from pipeline.context import TenantContext
from pipeline.discovery.poll import store_customers
from pipeline.discovery.rows import named_unstorable, validation_reasons
from pipeline.discovery.versions import Versions, document_versions
from pipeline.errors import ErrorClass, SyncError
from pipeline.kinds import ParentRead
from pipeline.ledger.models import (
    CustomerRecord,
    DocumentState,
    ParentKind,
    SaleRecord,
    SaleState,
    SyncDocument,
    utcnow,
)
from pipeline.ledger.ops import dialect_insert
from pipeline.operations import alerts
from pipeline.policy import Next, counts_as_attempt, decide_for, pause_seconds
from pipeline.recovery.deadletters import record_sale_dead_letter
from pipeline.source.cin7core.client import Cin7Client

log = logging.getLogger(__name__)

_statements: dict[tuple[str, str, bool], Any] = {}
# The source hash of a document Cin7 no longer lists.
GONE = "gone"
# Every kind a sale's detail holds.
KINDS = ("invoice", "credit_note", "payment", "refund", "allocation")


@dataclass(frozen=True)
class FetchedInvoice:
    """One invoice of a fetched sale, as the ledger has it after the fetch."""

    doc_id: int
    number: str | None
    state: str  # `pending` when it needs (re)mapping
    kind: str = "invoice"

    @property
    def needs_map(self) -> bool:
        """The invoice is new or changed (or still unmapped): map it."""
        return self.state == DocumentState.PENDING


class FetchedParent(NamedTuple):
    """What a fetch recorded (every document of the parent and its state) and the parent it parsed."""

    documents: list[FetchedInvoice]
    read: ParentRead


def fetch_sale(ctx: TenantContext, sale_id: str) -> list[FetchedInvoice]:
    """Read one sale's detail and record its invoices; return every invoice of the sale and its state."""
    return read_sale(ctx, sale_id).documents


def read_sale(ctx: TenantContext, sale_id: str, *, wait: bool = True) -> FetchedParent:
    """Read one sale's detail and record its invoices; return them with the sale and customer as parsed.

    One ledger transaction in the usual case: the customer's snapshot is read, and the sale row and
    its invoice rows written, together. Only a customer missing from the bulk snapshot needs a Cin7
    call, made outside any transaction before the rows are written. `wait=False`: RateLimitTimeout,
    with nothing read or recorded, unless Cin7's budget has a slot free now.
    """
    sale_id = sale_id.lower()
    detail = ctx.cin7.get_sale(sale_id, wait=wait)
    try:
        sale = Cin7Sale.model_validate(detail)
    except ValidationError as exc:
        reasons = "; ".join(validation_reasons(exc))
        raise SyncError(ErrorClass.MAPPING, f"Cin7 sale {sale_id} does not parse: {reasons}", api="cin7") from exc
    unstorable = _unstorable_text(sale)
    if unstorable:
        # Refused here, by name, rather than by the database as a DataError for the whole transaction.
        raise SyncError(
            ErrorClass.MAPPING, f"Cin7 sale {sale_id} cannot be recorded: {'; '.join(unstorable)}", api="cin7"
        )
    with ctx.sessions() as session, session.begin():
        customer_row = customer_snapshot(session, ctx.tenant_pk, sale.customer_id)
        if customer_row is not None or not sale.customer_id:
            documents = record_fetched_sale(session, ctx.tenant_pk, sale_id, detail, sale, customer_row)
            return FetchedParent(documents, _sale_read(sale_id, sale, customer_row))
    # Not in the bulk snapshot yet (created since the last customer poll): one call, then cached.
    customer_row = ctx.cin7.get_customer(sale.customer_id)
    with ctx.sessions() as session, session.begin():
        if customer_row is not None:
            store_customers(session, ctx.tenant_pk, [customer_row])
        documents = record_fetched_sale(session, ctx.tenant_pk, sale_id, detail, sale, customer_row)
    return FetchedParent(documents, _sale_read(sale_id, sale, customer_row))


def _sale_read(sale_id: str, sale: Cin7Sale, customer_row: dict[str, Any] | None) -> ParentRead:
    """The sale and its customer as the mapping would read them back from the rows just written."""
    # A snapshot the ledger keeps but the model refuses is the mapping's to report, by document.
    try:
        customer = Cin7Customer.model_validate(customer_row) if customer_row is not None else None
    except ValidationError:
        return ParentRead(sale_id, sale, None, party_known=False)
    return ParentRead(sale_id, sale, customer)


def _unstorable_text(sale: Cin7Sale) -> list[str]:
    """The sale's fields that the ledger's columns cannot hold (too long, or a NUL character)."""
    fields: list[tuple[str, str | None, int]] = [
        ("CustomerID", sale.customer_id, 64),
        ("Order.SaleOrderNumber", sale.order.sale_order_number if sale.order is not None else None, 64),
    ]
    for index, invoice in enumerate(sale.invoices):
        fields += [
            (f"Invoices[{index}].TaskID", invoice.task_id, 64),
            (f"Invoices[{index}].InvoiceNumber", invoice.invoice_number, 255),
            (f"Invoices[{index}].Status", str(invoice.status) if invoice.status is not None else None, 24),
        ]
    for index, note in enumerate(sale.credit_notes):
        fields += [
            (f"CreditNotes[{index}].TaskID", note.task_id, 64),
            (f"CreditNotes[{index}].CreditNoteNumber", note.credit_note_number, 255),
            (f"CreditNotes[{index}].Status", str(note.status) if note.status is not None else None, 24),
        ]
        fields += [(f"CreditNotes[{index}].Refunds[{i}].ID", r.id, 64) for i, r in enumerate(note.refunds)]
    for index, invoice in enumerate(sale.invoices):
        fields += [(f"Invoices[{index}].Payments[{i}].ID", p.id, 64) for i, p in enumerate(invoice.payments)]
    return named_unstorable(fields)


def customer_snapshot(session: Session, tenant_pk: int, customer_id: str | None) -> dict[str, Any] | None:
    """The customer's snapshot from the bulk customer poll, if the ledger has it."""
    snapshot = session.scalar(
        select(CustomerRecord.snapshot).where(
            CustomerRecord.tenant_id == tenant_pk, CustomerRecord.customer_id == (customer_id or "")
        )
    )
    return dict(snapshot) if snapshot is not None else None


# Built once per backend: building an upsert per sale costs more CPU than executing it.
_SALE_SET = ("snapshot", "fetched_updated", "fetched_at", "state", "last_error", "updated_at")


def _sale_upsert(session: Session, *, keep_order_number: bool) -> Any:
    """INSERT the sale row, or on conflict update what a fetch learns (and the order number, unless
    the detail had no Order block: then the one saleList gave stays).
    """
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
            .on_conflict_do_nothing(index_elements=["tenant_id", "source", "kind", "sale_id", "task_id"])
            .returning(SyncDocument.kind, SyncDocument.task_id, SyncDocument.id)
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
    return record_fetched(
        session,
        tenant_pk,
        Fetched(
            parent_id=sale_id,
            kind=ParentKind.SALE,
            detail=detail,
            modified_at=sale.last_modified_on,
            order_number=sale.order.sale_order_number if sale.order is not None else None,
            versions=document_versions(detail, sale, customer_row),
            document_kinds=KINDS,
        ),
    )


@dataclass(frozen=True)
class Fetched:
    """One read of a parent document (a sale or a purchase): what the ledger records of it."""

    parent_id: str
    kind: ParentKind
    detail: dict[str, Any]
    modified_at: datetime | None
    #: None when the detail does not say (then the number the listing gave stays).
    order_number: str | None
    versions: Versions
    #: Every document kind such a parent holds: its rows Cin7 no longer lists are marked gone.
    document_kinds: tuple[str, ...]


def record_fetched(session: Session, tenant_pk: int, read: Fetched) -> list[FetchedInvoice]:
    """Store the parent's detail snapshot and one row per document; return each document and its state."""
    now = utcnow()
    sale_id = read.parent_id
    sale_values: dict[str, Any] = {
        "tenant_id": tenant_pk,
        "sale_id": sale_id,
        "kind": read.kind.value,
        "discovered_at": now,
        "attempts": 0,
        "source": Cin7Client.name,
        "snapshot": read.detail,
        "fetched_updated": read.modified_at,
        "fetched_at": now,
        "state": SaleState.FETCHED.value,
        "last_error": None,
        "updated_at": now,
        "order_number": read.order_number,
    }
    # One statement for the parent row, new or not; it locks the row as SELECT ... FOR UPDATE did.
    session.execute(_sale_upsert(session, keep_order_number=read.order_number is None), sale_values)
    versions = read.versions
    # New documents are inserted as they end up (pending, to be mapped) and come back from RETURNING;
    # the sale's other rows are read (locked) and compared, including those Cin7 no longer lists.
    inserted: Any = (
        session.execute(
            _document_insert(session),
            [
                {
                    "tenant_id": tenant_pk,
                    "source": Cin7Client.name,
                    "kind": kind,
                    "sale_id": sale_id,
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
                for (kind, task_id), version in versions.items()
            ],
        )
        if versions
        else []
    )
    fetched = {
        (kind, task_id): FetchedInvoice(
            int(doc_id), versions[(kind, task_id)]["document_number"], DocumentState.PENDING.value, kind
        )
        for kind, task_id, doc_id in inserted
    }
    if len(fetched) < len(versions) or _may_have_gone(session, tenant_pk, sale_id, len(fetched)):
        for doc in session.scalars(
            select(SyncDocument)
            .where(
                SyncDocument.tenant_id == tenant_pk,
                SyncDocument.source == Cin7Client.name,
                SyncDocument.kind.in_(read.document_kinds),
                SyncDocument.sale_id == sale_id,
            )
            .with_for_update()
        ):
            key = (doc.kind, doc.task_id)
            if key in fetched:
                continue
            version = versions.get(key)
            if version is not None:
                fetched[key] = _update_document(doc, **version)
            elif doc.source_hash != GONE:
                # Cin7 no longer lists it (a payment deleted, an invoice undone): map it as gone.
                fetched[key] = _update_document(
                    doc,
                    document_number=doc.document_number,
                    document_date=doc.document_date,
                    customer_id=doc.customer_id,
                    cin7_status=doc.cin7_status,
                    cin7_modified_at=read.modified_at,
                    source_hash=GONE,
                )
    return [fetched[key] for key in [*versions, *(k for k in fetched if k not in versions)] if key in fetched]


def _may_have_gone(session: Session, tenant_pk: int, sale_id: str, inserted: int) -> bool:
    """Whether the sale has rows beyond the ones just inserted (only then can one have vanished)."""
    count = session.scalar(
        select(func.count())
        .select_from(SyncDocument)
        .where(SyncDocument.tenant_id == tenant_pk, SyncDocument.sale_id == sale_id)
    )
    return int(count or 0) > inserted


def _update_document(
    doc: SyncDocument,
    *,
    document_number: str | None,
    document_date: date | None,
    customer_id: str | None,
    cin7_status: str | None,
    cin7_modified_at: datetime | None,
    source_hash: str,
) -> FetchedInvoice:
    """Record a new read of a document the ledger has; its state is `pending` when it needs (re)mapping."""
    doc.document_number = document_number
    doc.document_date = document_date
    doc.customer_id = customer_id
    doc.cin7_status = cin7_status
    doc.cin7_modified_at = cin7_modified_at
    if doc.source_hash == source_hash and doc.state != DocumentState.PENDING:
        return FetchedInvoice(doc.id, doc.document_number, str(doc.state), doc.kind)
    changed = doc.source_hash != source_hash
    doc.source_hash = source_hash
    if doc.state == DocumentState.WRITING:
        # The writer notices the newer source when it finishes (mapped_source_hash differs).
        return FetchedInvoice(doc.id, doc.document_number, str(doc.state), doc.kind)
    if changed:
        # A new version starts afresh; the same one read again keeps counting the mappings that
        # died (without Redis that count is this column, and a redelivered fetch maps it again).
        doc.attempts = 0
    doc.state = DocumentState.PENDING
    doc.next_attempt_at = None
    doc.enqueued_at = utcnow()
    return FetchedInvoice(doc.id, doc.document_number, str(doc.state), doc.kind)


@dataclass(frozen=True)
class FetchFailure:
    """What a failed fetch came to: retry (with a countdown when `countdown` is set), paused, dead, or gone."""

    state: str
    countdown: float | None = None


def record_fetch_failure(ctx: TenantContext, sale_id: str, error: SyncError, *, counted: bool) -> FetchFailure:
    """Record a failed fetch as the error policy says: a countdown retry, a ledger retry, or a dead letter.

    A short wait is a countdown message and the sale row is stamped as sent then, so the sweep only
    re-sends it if that message is lost. Refused credentials or a day limit fail every sale alike:
    they wait (and alert once per window), rather than a dead letter per sale that someone would
    have to requeue.
    """
    with ctx.sessions() as session, session.begin():
        sale = session.scalar(
            select(SaleRecord).where(SaleRecord.tenant_id == ctx.tenant_pk, SaleRecord.sale_id == sale_id.lower())
        )
        if sale is None:
            return FetchFailure("gone")
        if not counted:
            sale.attempts += 1
        if not counts_as_attempt(error.error_class):
            # Throttled or refused before Cin7 looked at the request: not this sale's failure.
            sale.attempts = max(0, sale.attempts - 1)
        sale.last_error = error.message[:4000]
        decision = decide_for(error, sale.attempts, ctx.settings, pauses_tenant=False)
        if decision.next is Next.COUNTDOWN:
            sale.state = SaleState.DISCOVERED
            sale.enqueued_at = utcnow() + timedelta(seconds=decision.delay)
            log.warning("fetch of sale %s failed (%s); retry in %.1fs", sale_id, error.error_class, decision.delay)
            return FetchFailure("retry", decision.delay)
        if decision.next is Next.LEDGER_RETRY:
            sale.state = SaleState.RETRY
            sale.next_attempt_at = utcnow() + timedelta(seconds=decision.delay)
            if pause_seconds(error) is not None:
                alerts.note_problem(session, ctx.tenant_pk, error.error_class, error.message)
                log.warning("fetch of sale %s waits %.0fs: %s", sale_id, decision.delay, error.message)
                return FetchFailure("paused")
            log.warning("fetch of sale %s failed (%s); retry in %.0fs", sale_id, error.error_class, decision.delay)
            return FetchFailure("retry")
        record_sale_dead_letter(session, sale, error_class=decision.error_class, messages=list(decision.messages))
        return FetchFailure("dead")

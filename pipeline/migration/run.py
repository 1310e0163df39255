"""`cin7xero migrate run`: the cutover, through the live sync's own pipeline, workers and ledger.

The run records the window's documents as ledger rows (from the details the plan kept), links what
Xero already has (adopted: no write), holds conflicts for a person, and hands the rest to the mapping
stage; the writer takes live documents before migrated ones and migrated ones in date order. Every
step is idempotent on the ledger's natural key, so a run killed at any point and started again picks up
where it was and writes nothing twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mappings import Cin7Purchase, Cin7Sale, content_hash
from pipeline import app
from pipeline.app import TaskName
from pipeline.context import TenantContext
from pipeline.discovery.fetch import customer_snapshot, record_fetched_sale
from pipeline.discovery.purchases import record_fetched_purchase
from pipeline.errors import ErrorClass
from pipeline.ledger.models import IN_FLIGHT_STATES, DocumentState, MigrationRun, SyncDocument, Tenant, utcnow
from pipeline.migration.fates import Decided
from pipeline.migration.plan import decide, migration_row
from pipeline.migration.plan_rows import Fate
from pipeline.reconcile.window import Window

log = logging.getLogger(__name__)


@dataclass
class Started:
    """What starting (or resuming) a cutover did."""

    migration_id: int
    recorded: int = 0
    adopted: int = 0
    conflicts: int = 0
    enqueued: int = 0


def start_cutover(ctx: TenantContext, window: Window, *, update_conflicts: bool = False) -> Started:
    """Record the window's documents and send them to be mapped; safe to call again at any point."""
    migration_id = migration_row(ctx, window, update_conflicts=update_conflicts)
    with ctx.sessions() as session, session.begin():
        row = session.get(MigrationRun, migration_id)
        assert row is not None
        update_conflicts = row.update_conflicts
        row.state = "running"
        row.started_at = row.started_at or utcnow()
    started = Started(migration_id)

    def record(parent: Cin7Sale | Cin7Purchase, detail: dict[str, Any], decided: list[Decided]) -> None:
        _record_parent(ctx, migration_id, parent, detail, decided, update_conflicts=update_conflicts, started=started)

    decide(ctx, window, migration_id, on_parent=record)
    log.info(
        "migration %d: %d documents recorded, %d adopted, %d conflicts, %d sent to be mapped",
        migration_id,
        started.recorded,
        started.adopted,
        started.conflicts,
        started.enqueued,
    )
    return started


# Rows a migration may (re)decide: nothing of theirs has been sent to Xero.
_NOT_YET_WRITTEN = (DocumentState.PENDING, DocumentState.IGNORED, DocumentState.LOCKED)
# An allocation follows its credit note into the migration; a payment of an adopted document is looked for.
_ALLOCATION_NOTE = {"allocation": "credit_note", "supplier_allocation": "supplier_credit_note"}
_PAYMENT_OF = {"payment": "invoice", "bill_payment": "bill"}


def _record(session: Session, tenant_pk: int, parent: Cin7Sale | Cin7Purchase, detail: dict[str, Any]) -> str:
    """Record the parent's detail and document rows as a fetch does; its ledger id."""
    if isinstance(parent, Cin7Sale):
        customer = customer_snapshot(session, tenant_pk, parent.customer_id)
        record_fetched_sale(session, tenant_pk, parent.id, detail, parent, customer)
        return parent.id
    supplier = customer_snapshot(session, tenant_pk, parent.supplier_id)
    record_fetched_purchase(session, tenant_pk, detail, parent, supplier)
    return parent.id.lower()


def _record_parent(
    ctx: TenantContext,
    migration_id: int,
    parent: Cin7Sale | Cin7Purchase,
    detail: dict[str, Any],
    decided: list[Decided],
    *,
    update_conflicts: bool,
    started: Started,
) -> None:
    """Record one sale's or purchase's documents for the migration, in one transaction, as the plan
    decided them.
    """
    by_key = {(d.row.kind, d.row.task_id): d for d in decided}
    with ctx.sessions() as session, session.begin():
        parent_id = _record(session, ctx.tenant_pk, parent, detail)
        docs = list(
            session.scalars(
                select(SyncDocument)
                .where(SyncDocument.tenant_id == ctx.tenant_pk, SyncDocument.sale_id == parent_id)
                .with_for_update()
            )
        )
        adopted: set[tuple[str, str]] = set()
        for doc in docs:
            found = by_key.get((doc.kind, doc.task_id))
            if found is None and doc.kind in _ALLOCATION_NOTE:
                found = by_key.get((_ALLOCATION_NOTE[doc.kind], doc.task_id))
            if found is None:
                continue
            if doc.migration_id is None:
                doc.migration_id = migration_id
                started.recorded += 1
            if doc.xero_id is None and doc.state in _NOT_YET_WRITTEN:
                # Recorded before (the live sync left it to the migration, or found it locked): the
                # migration decides now, from what Xero holds.
                doc.state = DocumentState.PENDING
                _link_existing(doc, found, update_conflicts=update_conflicts, started=started)
                if found.row.fate is Fate.ADOPT and doc.kind in _PAYMENT_OF.values():
                    adopted.add((doc.kind, doc.document_number or ""))
        for doc in docs:
            paid = (_PAYMENT_OF.get(doc.kind, ""), doc.document_number or "")
            if doc.kind in _PAYMENT_OF and paid in adopted and doc.xero_id is None:
                # Xero's copy may already carry this payment (typed with the invoice): look before paying.
                doc.write_uncertain = True
        pending = [doc.id for doc in docs if doc.migration_id == migration_id and doc.state == DocumentState.PENDING]
        for doc in docs:
            if doc.id in pending:
                doc.enqueued_at = utcnow()
    # Sent sale by sale as recorded, so the writers start at once; they take the oldest first anyway.
    for doc_id in pending:
        app.send(TaskName.MAP_DOCUMENT, ctx.tenant_key, doc_id)
    started.enqueued += len(pending)


def _link_existing(doc: SyncDocument, decided: Decided, *, update_conflicts: bool, started: Started) -> None:
    """Point the row at the Xero document the plan found: adopted as it is, or held as a conflict."""
    row = decided.row
    if row.fate is Fate.ADOPT and decided.payload is not None:
        doc.xero_id = row.xero_id
        doc.xero_status = decided.xero_status or "AUTHORISED"
        # What Xero holds is what we would send: the mapping finds nothing to write.
        doc.synced_hash = content_hash(decided.payload)
        started.adopted += 1
    elif row.fate is Fate.CONFLICT:
        doc.xero_id = row.xero_id
        doc.xero_status = decided.xero_status or "AUTHORISED"
        if not update_conflicts:
            doc.state = DocumentState.CONFLICT
            doc.error_class = ErrorClass.CONFLICT.value
            doc.last_error = f"Xero already has {row.number} with other values: {row.reason} (--update-conflicts)"
        started.conflicts += 1


@dataclass
class Progress:
    """Where a migration stands: its documents by state, and what holds it up."""

    migration_id: int
    window: str
    state: str
    states: Counter[str] = field(default_factory=Counter)
    paused_until: datetime | None = None
    pause_reason: str | None = None
    #: The last plan's summary (counts, cost) and where its report is.
    plan: dict[str, Any] | None = None
    report_dir: str | None = None

    @property
    def total(self) -> int:
        """Documents the migration holds."""
        return sum(self.states.values())

    @property
    def in_flight(self) -> int:
        """Documents still on their way."""
        return sum(self.states.get(state.value, 0) for state in IN_FLIGHT_STATES)

    @property
    def settled(self) -> bool:
        """Every document synced, adopted, locked, skipped, in conflict or dead-lettered."""
        return self.in_flight == 0


def progress(ctx: TenantContext, migration_id: int | None = None) -> Progress | None:
    """The given migration's progress, or the tenant's latest one's; None when there is none."""
    with ctx.sessions() as session:
        query = select(MigrationRun).where(MigrationRun.tenant_id == ctx.tenant_pk)
        if migration_id is not None:
            query = query.where(MigrationRun.id == migration_id)
        row = session.scalar(query.order_by(MigrationRun.id.desc()))
        if row is None:
            return None
        found = Progress(
            row.id, f"{row.window_from}..{row.window_until}", row.state, plan=row.plan, report_dir=row.report_dir
        )
        for state, count in session.execute(
            select(SyncDocument.state, func.count())
            .where(SyncDocument.migration_id == row.id)
            .group_by(SyncDocument.state)
        ):
            found.states[str(state)] = int(count)
        tenant = session.get(Tenant, ctx.tenant_pk)
        if tenant is not None and tenant.paused_until is not None and tenant.paused_until > utcnow():
            found.paused_until, found.pause_reason = tenant.paused_until, tenant.pause_reason
    return found


def finish(ctx: TenantContext, migration_id: int) -> None:
    """Mark the migration done (every document settled)."""
    with ctx.sessions() as session, session.begin():
        row = session.get(MigrationRun, migration_id)
        if row is not None:
            row.state = "done"
            row.finished_at = utcnow()

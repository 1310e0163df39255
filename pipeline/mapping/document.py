"""Map one pending ledger document to its Xero payload and decide what the write will do.

The mapping itself is pure (`mappings/`); this reads the snapshot and the customer from the ledger,
asks the document's kind to map it, and records the payload, its hash and the action on the row.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mappings import (
    Cin7Customer,
    Cin7InvoiceStatus,
    Cin7Purchase,
    Cin7Sale,
    Cin7Supplier,
    InvoiceAction,
    MappingError,
    XeroInvoiceStatus,
    content_hash,
)
from pipeline import app
from pipeline.app import TaskName
from pipeline.context import TenantContext
from pipeline.errors import ErrorClass
from pipeline.kinds import AnyKind, InXero, MappedDocument, Parent, Party, PlanInput, kind_of
from pipeline.ledger.models import (
    CustomerRecord,
    DocumentState,
    MigrationRun,
    ParentKind,
    SaleRecord,
    SyncDocument,
    utcnow,
)
from pipeline.ledger.ops import wake_waiting
from pipeline.mapping import dependencies
from pipeline.mapping.reference import org_reference
from pipeline.operations.alerts import note_problem
from pipeline.recovery.deadletters import record_dead_letter, resolve_dead_letters


def map_document(ctx: TenantContext, doc_id: int) -> bool:
    """Map one pending document to its Xero payload; True when it is now ready to write.

    A document that settles without a write (nothing to do, or skipped) may be what others of its sale
    wait for: they are sent to be mapped once this commits.
    """
    woken: list[int] = []
    ready = _map_document(ctx, doc_id, woken)
    if not ready and _wait_is_over(ctx, doc_id):
        woken.append(doc_id)
    for waiting_id in woken:
        app.send(TaskName.MAP_DOCUMENT, ctx.tenant_key, waiting_id)
    return ready


def _wait_is_over(ctx: TenantContext, doc_id: int) -> bool:
    """A document just recorded as waiting whose dependencies were met meanwhile goes back to pending.

    Its mapping read the invoice as not yet in Xero; if the invoice's write committed after that read
    but before this row's WAITING did, the writer's wake-up found nothing to wake. Looking again after
    our own commit closes that gap: whichever commits second sees the other.
    """
    with ctx.sessions() as session, session.begin():
        doc = session.scalar(select(SyncDocument).where(SyncDocument.id == doc_id).with_for_update())
        if doc is None or doc.state != DocumentState.WAITING:
            return False
        loaded = _parent_and_party(session, doc)
        if loaded is None:
            return False
        needs = kind_of(doc.kind).dependencies(loaded[0], doc.task_id, cin7_status=doc.cin7_status)
        if dependencies.unmet(session, doc, needs).reason is not None:
            return False
        doc.state = DocumentState.PENDING
        doc.enqueued_at = utcnow()
        return True


def _map_document(ctx: TenantContext, doc_id: int, woken: list[int]) -> bool:
    reference = org_reference(ctx)
    with ctx.sessions() as session, session.begin():
        doc = session.scalar(select(SyncDocument).where(SyncDocument.id == doc_id).with_for_update())
        if doc is None or doc.state != DocumentState.PENDING:
            return False  # a duplicate message, or already handled
        loaded = _parent_and_party(session, doc)
        if loaded is None:
            return False
        parent, party = loaded
        kind = kind_of(doc.kind)
        if _before_cutover(ctx, doc) or _held_conflict(session, doc):
            return False
        waits = dependencies.unmet(session, doc, kind.dependencies(parent, doc.task_id, cin7_status=doc.cin7_status))
        if waits.reason is not None and waits.locked_by is not None:
            doc.state = DocumentState.LOCKED
            doc.last_error = f"{waits.locked_by} is dated on or before Xero's lock date, so this is not written either"
            doc.mapped_source_hash = doc.source_hash
            return False
        if waits.reason is not None:
            # Not a failure: the document is woken when what it waits for is written (writer.outcomes).
            doc.state = DocumentState.WAITING
            doc.last_error = waits.reason
            doc.mapped_source_hash = doc.source_hash
            return False
        try:
            mapped = kind.plan(
                PlanInput(
                    parent,
                    doc.task_id,
                    cin7_status=doc.cin7_status,
                    party=party,
                    rules=ctx.rules,
                    reference=reference,
                    in_xero=InXero(
                        synced=doc.xero_id is not None,
                        xero_status=doc.xero_status,
                        synced_hash=doc.synced_hash,
                        parents=waits.parents,
                    ),
                )
            )
        except MappingError as exc:
            doc.attempts += 1
            record_dead_letter(
                session,
                doc,
                stage="map",
                error_class=ErrorClass.MAPPING,
                messages=[p.message for p in exc.problems],
                payload=None,
            )
            doc.mapped_source_hash = doc.source_hash
            return False
        if mapped.cin7_status != (doc.cin7_status or "NOT AVAILABLE"):
            # The document disappeared from the sale (Cin7 "Undo"): it is recorded as voided.
            doc.cin7_status = mapped.cin7_status
        doc.mapped_source_hash = doc.source_hash
        doc.error_class = None
        # The map task counted this delivery in `attempts` to catch messages that kill workers; the
        # mapping finished, so the write starts its own count from zero.
        doc.attempts = 0
        if mapped.action in _WRITES and reference.locked(doc.document_date):
            doc.state = DocumentState.LOCKED
            doc.action = None
            doc.last_error = (
                f"dated {doc.document_date}, on or before Xero's lock date {reference.lock_date}: not written "
                "(Xero refuses changes in a locked period; a person decides)"
            )
            # What waits for it (its payments) is held for the same reason: they learn so now.
            woken.extend(wake_waiting(session, doc.tenant_id, [doc.sale_id]))
            return False
        return _apply(session, doc, kind, mapped, woken)


_WRITES = (InvoiceAction.CREATE, InvoiceAction.UPDATE, InvoiceAction.VOID, InvoiceAction.DELETE)


def _held_conflict(session: Session, doc: SyncDocument) -> bool:
    """A migrated document Xero already had with other values stays a conflict for a person, however
    often its sale is read again, unless the migration was run with --update-conflicts.
    """
    if doc.migration_id is None or doc.xero_id is None or doc.synced_at is not None or doc.synced_hash is not None:
        return False
    if session.scalar(select(MigrationRun.update_conflicts).where(MigrationRun.id == doc.migration_id)):
        return False
    doc.state = DocumentState.CONFLICT
    doc.error_class = ErrorClass.CONFLICT.value
    doc.mapped_source_hash = doc.source_hash
    doc.last_error = doc.last_error or f"Xero already has {doc.document_number} with other values (--update-conflicts)"
    return True


def _before_cutover(ctx: TenantContext, doc: SyncDocument) -> bool:
    """A document dated before SYNC_START_DATE is the migration's, not the live sync's: recorded, not sent."""
    start = ctx.settings.sync_start_date
    if doc.migration_id is not None or start is None or doc.document_date is None or doc.document_date >= start:
        return False
    doc.state = DocumentState.IGNORED
    doc.action = None
    doc.mapped_source_hash = doc.source_hash
    doc.last_error = f"dated {doc.document_date}, before SYNC_START_DATE {start}: left to cin7xero migrate"
    return True


def _apply(session: Session, doc: SyncDocument, kind: AnyKind, mapped: MappedDocument, woken: list[int]) -> bool:
    """Record what the mapping decided; True when the document is now ready for a writer."""
    action, payload = mapped.action, mapped.payload
    match action:
        case InvoiceAction.SKIP:
            doc.state = DocumentState.IGNORED
            doc.action = None
            _note_unknown_status(session, doc)
            # e.g. a dead-lettered invoice that was then voided in Cin7: nothing needs a person now.
            resolve_dead_letters(session, doc)
            woken.extend(wake_waiting(session, doc.tenant_id, [doc.sale_id]))
            return False
        case InvoiceAction.NOTHING:
            doc.state = (
                DocumentState.VOIDED
                if doc.xero_status in (XeroInvoiceStatus.VOIDED, XeroInvoiceStatus.DELETED)
                else DocumentState.SYNCED
            )
            doc.action = None
            woken.extend(wake_waiting(session, doc.tenant_id, [doc.sale_id]))
            return False
        case InvoiceAction.CONFLICT:
            doc.state = DocumentState.CONFLICT
            doc.error_class = ErrorClass.CONFLICT.value
            doc.last_error = (
                f"Xero {doc.kind.replace('_', ' ')} is {doc.xero_status}; "
                f"the Cin7 change ({mapped.cin7_status}) was not applied"
            )
            return False
        case InvoiceAction.CREATE | InvoiceAction.UPDATE:
            assert payload is not None
            doc.payload = payload
            doc.payload_hash = content_hash(payload)
            doc.action = action.value
        case InvoiceAction.VOID | InvoiceAction.DELETE:
            assert doc.xero_id is not None
            # The kind's planned payload, where taking the document off needs more than its id.
            doc.payload = {**(payload or {}), **kind.void_payload(doc.xero_id, doc.document_number or "", action)}
            doc.payload_hash = content_hash(doc.payload)
            doc.action = action.value
    doc.state = DocumentState.READY
    doc.enqueued_at = utcnow()
    return True


def _parent_and_party(session: Session, doc: SyncDocument) -> tuple[Parent, Party | None] | None:
    """The document's parent snapshot (sale or purchase) and its party's (customer or supplier), or None
    when the parent was never fetched.
    """
    record = session.scalar(
        select(SaleRecord).where(SaleRecord.tenant_id == doc.tenant_id, SaleRecord.sale_id == doc.sale_id)
    )
    if record is None or record.snapshot is None:
        return None
    purchase = kind_of(doc.kind).parent_kind == ParentKind.PURCHASE
    parent: Parent = (
        Cin7Purchase.model_validate(record.snapshot) if purchase else Cin7Sale.model_validate(record.snapshot)
    )
    party_id = parent.supplier_id if isinstance(parent, Cin7Purchase) else parent.customer_id
    party_record = session.scalar(
        select(CustomerRecord).where(
            CustomerRecord.tenant_id == doc.tenant_id, CustomerRecord.customer_id == (party_id or "").lower()
        )
    )
    if party_record is None:
        return parent, None
    party: Party = (
        Cin7Supplier.model_validate(party_record.snapshot)
        if purchase
        else Cin7Customer.model_validate(party_record.snapshot)
    )
    return parent, party


def _note_unknown_status(session: Session, doc: SyncDocument) -> None:
    """A status Cin7 added that we do not know is skipped on the record, with one alert, never in silence."""
    status = doc.cin7_status
    if not status or Cin7InvoiceStatus.parse(status) is not None:
        return
    doc.last_error = f"unknown Cin7 status {status!r}: not sent to Xero"
    note_problem(
        session,
        doc.tenant_id,
        ErrorClass.MAPPING,
        f"{doc.kind} {doc.document_number}: unknown Cin7 status {status!r}; not sent to Xero "
        "(reconciliation lists every such invoice)",
    )

"""Map one pending ledger document to its Xero payload and decide what the write will do.

The mapping itself is pure (`mappings/`); this reads the snapshot and the customer from the ledger,
asks the document's kind to map it, and records the payload, its hash and the action on the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
    OrgReference,
    XeroInvoiceStatus,
    content_hash,
)
from pipeline import app
from pipeline.app import TaskName
from pipeline.context import TenantContext
from pipeline.errors import ErrorClass
from pipeline.kinds import AnyKind, InXero, MappedDocument, Parent, ParentRead, Party, PlanInput, kind_of
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


@dataclass
class _Batch:
    """What one mapping transaction has read, shared by its documents."""

    #: The documents this transaction found pending (and locked): only it can move them on.
    mapping: set[int]
    loaded: dict[tuple[str, bool], tuple[Parent, Party | None] | None] = field(default_factory=dict)
    siblings: dict[tuple[str, str], list[SyncDocument]] = field(default_factory=dict)
    woken: list[int] = field(default_factory=list)
    #: Documents recorded as waiting on a row this transaction did not itself move (see _waits_over).
    recheck: list[int] = field(default_factory=list)

    @classmethod
    def knowing(cls, mapping: set[int], read: ParentRead | None) -> _Batch:
        """A batch that starts with the parent the caller has just read, if any."""
        batch = cls(mapping=mapping)
        if read is not None and read.party_known:
            batch.loaded[(read.parent_id, isinstance(read.parent, Cin7Purchase))] = (read.parent, read.party)
        return batch


def map_document(ctx: TenantContext, doc_id: int) -> bool:
    """Map one pending document to its Xero payload; True when it is now ready to write."""
    return map_documents(ctx, [doc_id]).get(doc_id) == DocumentState.READY


def map_documents(
    ctx: TenantContext, doc_ids: Sequence[int], *, read: ParentRead | None = None
) -> dict[int, DocumentState | None]:
    """Map pending documents in one transaction; each id → the state the mapping left it in (`ready`
    when it is now to be written), or None when it was not pending (a duplicate, or already handled).

    A fetch maps all its sale's changed documents here at once: one lock, one read of the sale's rows,
    and the snapshots it already parsed. A document that settles without a write (nothing to do, or
    skipped) may be what others of its sale wait for: they are sent to be mapped once this commits.
    """
    if not doc_ids:
        return {}
    reference = org_reference(ctx)
    settled: dict[int, DocumentState | None] = dict.fromkeys(doc_ids)
    with ctx.sessions() as session, session.begin():
        docs = session.scalars(
            select(SyncDocument)
            .where(SyncDocument.id.in_(sorted(set(doc_ids))))
            .order_by(SyncDocument.id)
            .with_for_update()
        ).all()
        batch = _Batch.knowing({doc.id for doc in docs if doc.state == DocumentState.PENDING}, read)
        # In the order the caller gave (a sale's invoice before its payments), each seeing the last.
        by_id = {doc.id: doc for doc in docs}
        for doc_id in doc_ids:
            doc = by_id.get(doc_id)
            if doc is not None and doc.id in batch.mapping:
                _map_one(ctx, session, doc, reference, batch)
                settled[doc_id] = DocumentState(doc.state)
    woken = batch.woken + _waits_over(ctx, batch.recheck, read)
    for waiting_id in woken:
        app.send(TaskName.MAP_DOCUMENT, ctx.tenant_key, waiting_id)
    return settled


def _waits_over(ctx: TenantContext, doc_ids: Sequence[int], read: ParentRead | None) -> list[int]:
    """Documents just recorded as waiting whose dependencies were met meanwhile go back to pending.

    Their mapping read what they wait for as not yet in Xero; if its write committed after that read
    but before their WAITING did, the writer's wake-up found nothing to wake. Looking again after our
    own commit closes that gap: whichever commits second sees the other. A document that waits only on
    rows the same transaction mapped needs no second look: no writer could take those before it
    committed, so their writes' wake-ups come after it.
    """
    if not doc_ids:
        return []
    over: list[int] = []
    with ctx.sessions() as session, session.begin():
        batch = _Batch.knowing(set(), read)
        for doc in session.scalars(
            select(SyncDocument).where(SyncDocument.id.in_(sorted(doc_ids))).order_by(SyncDocument.id).with_for_update()
        ):
            if doc.state != DocumentState.WAITING:
                continue
            loaded = _parent_and_party(session, doc, batch)
            if loaded is None:
                continue
            needs = kind_of(doc.kind).dependencies(loaded[0], doc.task_id, cin7_status=doc.cin7_status)
            if dependencies.unmet(session, doc, needs).reason is not None:
                continue
            doc.state = DocumentState.PENDING
            doc.enqueued_at = utcnow()
            over.append(doc.id)
    return over


def _map_one(ctx: TenantContext, session: Session, doc: SyncDocument, reference: OrgReference, batch: _Batch) -> None:
    loaded = _parent_and_party(session, doc, batch)
    if loaded is None:
        return
    parent, party = loaded
    kind = kind_of(doc.kind)
    if _before_cutover(ctx, doc) or _held_conflict(session, doc):
        return
    needs = kind.dependencies(parent, doc.task_id, cin7_status=doc.cin7_status)
    # An invoice depends on nothing: the sale's other rows are read only for what does.
    waits = dependencies.unmet(session, doc, needs, rows=_siblings(session, doc, batch) if needs else None)
    if waits.reason is not None and waits.locked_by is not None:
        doc.state = DocumentState.LOCKED
        doc.last_error = f"{waits.locked_by} is dated on or before Xero's lock date, so this is not written either"
        doc.mapped_source_hash = doc.source_hash
        return
    if waits.reason is not None:
        # Not a failure: the document is woken when what it waits for is written (writer.outcomes).
        doc.state = DocumentState.WAITING
        doc.last_error = waits.reason
        doc.mapped_source_hash = doc.source_hash
        if not set(waits.waiting_on) <= batch.mapping:
            batch.recheck.append(doc.id)
        return
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
        return
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
        batch.woken.extend(wake_waiting(session, doc.tenant_id, [doc.sale_id]))
        return
    _apply(session, doc, kind, mapped, batch.woken)


def _siblings(session: Session, doc: SyncDocument, batch: _Batch) -> list[SyncDocument]:
    """Every ledger row of the document's sale, read once per transaction (the rows it maps are among
    them, as the session holds them, so a payment sees its invoice just mapped).
    """
    key = (doc.source, doc.sale_id)
    rows = batch.siblings.get(key)
    if rows is None:
        rows = batch.siblings[key] = list(
            session.scalars(
                select(SyncDocument).where(
                    SyncDocument.tenant_id == doc.tenant_id,
                    SyncDocument.source == doc.source,
                    SyncDocument.sale_id == doc.sale_id,
                )
            )
        )
    return rows


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


def _apply(session: Session, doc: SyncDocument, kind: AnyKind, mapped: MappedDocument, woken: list[int]) -> None:
    """Record what the mapping decided (`ready` when the document is now for a writer)."""
    action, payload = mapped.action, mapped.payload
    match action:
        case InvoiceAction.SKIP:
            doc.state = DocumentState.IGNORED
            doc.action = None
            _note_unknown_status(session, doc)
            # e.g. a dead-lettered invoice that was then voided in Cin7: nothing needs a person now.
            resolve_dead_letters(session, doc)
            woken.extend(wake_waiting(session, doc.tenant_id, [doc.sale_id]))
            return
        case InvoiceAction.NOTHING:
            doc.state = (
                DocumentState.VOIDED
                if doc.xero_status in (XeroInvoiceStatus.VOIDED, XeroInvoiceStatus.DELETED)
                else DocumentState.SYNCED
            )
            doc.action = None
            woken.extend(wake_waiting(session, doc.tenant_id, [doc.sale_id]))
            return
        case InvoiceAction.CONFLICT:
            doc.state = DocumentState.CONFLICT
            doc.error_class = ErrorClass.CONFLICT.value
            doc.last_error = (
                f"Xero {doc.kind.replace('_', ' ')} is {doc.xero_status}; "
                f"the Cin7 change ({mapped.cin7_status}) was not applied"
            )
            return
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


def _parent_and_party(session: Session, doc: SyncDocument, batch: _Batch) -> tuple[Parent, Party | None] | None:
    """The document's parent snapshot (sale or purchase) and its party's (customer or supplier), or None
    when the parent was never fetched; read and parsed once per transaction.
    """
    purchase = kind_of(doc.kind).parent_kind == ParentKind.PURCHASE
    key = (doc.sale_id, purchase)
    if key in batch.loaded:
        return batch.loaded[key]
    loaded = batch.loaded[key] = _read_parent_and_party(session, doc, purchase=purchase)
    return loaded


def _read_parent_and_party(
    session: Session, doc: SyncDocument, *, purchase: bool
) -> tuple[Parent, Party | None] | None:
    record = session.scalar(
        select(SaleRecord).where(SaleRecord.tenant_id == doc.tenant_id, SaleRecord.sale_id == doc.sale_id)
    )
    if record is None or record.snapshot is None:
        return None
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

"""Writing payments, refunds and allocations: adopt what a lost answer made, take off, then create.

These have no number for Xero to refuse a second one by, so exactly-once rests on the ledger: a create
is marked uncertain before it is sent, and an uncertain one is looked up (the document it applies to,
date, amount, account, reference) and adopted before anything is sent again. The Idempotency-Key covers
the quick retries in between. A changed one is taken off and made again; one that Xero has reconciled
against a bank line is a conflict, left for a person.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update

from mappings import InvoiceAction
from pipeline.context import TenantContext
from pipeline.errors import ErrorClass
from pipeline.idempotency import idempotency_key
from pipeline.kinds import AppliedKind
from pipeline.ledger.models import SyncDocument
from pipeline.writer.batches import send_in_chunks
from pipeline.writer.outcomes import WriteOutcome, record_conflict, record_dead, record_synced_all

log = logging.getLogger(__name__)

DELETED = "DELETED"


def write_applied(
    ctx: TenantContext, kind: AppliedKind, token: str, docs: list[SyncDocument], outcome: WriteOutcome
) -> None:
    """Write one kind's claimed rows: deletes and replacements first, then every create in one call."""
    to_create = [d for d in docs if d.action in (InvoiceAction.CREATE, InvoiceAction.UPDATE)]
    to_undo = [d for d in docs if d.action in (InvoiceAction.DELETE, InvoiceAction.UPDATE) and d.xero_id]
    undone = _take_off(ctx, kind, token, to_undo, outcome)
    to_create = [d for d in to_create if d.action == InvoiceAction.CREATE or d.id in undone]
    to_create = _adopt_uncertain(ctx, kind, token, to_create, outcome)
    if to_create:
        _create(ctx, kind, token, to_create, outcome)


def _take_off(
    ctx: TenantContext, kind: AppliedKind, token: str, docs: Sequence[SyncDocument], outcome: WriteOutcome
) -> set[int]:
    """Delete what Cin7 removed or changed; the ids of the rows whose old record is now gone from Xero."""
    gone: set[int] = set()
    deleted: list[tuple[SyncDocument, dict[str, Any]]] = []
    for doc in docs:
        xero_id = doc.xero_id or ""
        payload = doc.payload or {}
        current = kind.current(ctx.xero, xero_id, payload)
        if current is not None and str(current.get("Status") or "").upper() != DELETED:
            refusal = kind.refusal(current)
            if refusal is not None:
                record_conflict(ctx, token, doc, refusal, outcome)
                continue
            kind.undo(ctx.xero, xero_id, payload, idempotency_key(ctx.tenant_key, f"DELETE {kind.name}", xero_id))
        gone.add(doc.id)
        if doc.action == InvoiceAction.DELETE:
            deleted.append((doc, {kind.id_field: xero_id, "Status": DELETED}))
    record_synced_all(ctx, token, deleted, outcome)
    if gone - {doc.id for doc, _ in deleted}:
        # Replacements: the old record is gone, so the row no longer points at it.
        with ctx.sessions() as session, session.begin():
            session.execute(
                update(SyncDocument)
                .where(SyncDocument.id.in_(sorted(gone - {doc.id for doc, _ in deleted})))
                .where(SyncDocument.claim_token == token)
                .values(xero_id=None, xero_status=DELETED)
                .execution_options(synchronize_session=False)
            )
    return gone


def _adopt_uncertain(
    ctx: TenantContext, kind: AppliedKind, token: str, docs: list[SyncDocument], outcome: WriteOutcome
) -> list[SyncDocument]:
    """Adopt what an earlier attempt whose answer was lost already made; the rows still to create."""
    uncertain = [d for d in docs if d.write_uncertain and d.payload]
    if not uncertain:
        return docs
    candidates = kind.lookup(ctx.xero, [d.payload or {} for d in uncertain])
    ids = [found_id for found in candidates if (found_id := kind.xero_id(found))]
    with ctx.sessions() as session:
        # Never adopt a record another row already stands for (two equal payments on one invoice).
        taken = set(
            session.scalars(
                select(SyncDocument.xero_id).where(
                    SyncDocument.tenant_id == ctx.tenant_pk,
                    SyncDocument.kind == kind.name,
                    SyncDocument.xero_id.in_(ids),
                )
            )
        )
    adopted: list[tuple[SyncDocument, dict[str, Any]]] = []
    for doc in uncertain:
        for found in candidates:
            found_id = kind.xero_id(found)
            if found_id and found_id not in taken and kind.matches(found, doc.payload or {}):
                taken.add(found_id)
                adopted.append((doc, {**found, "Status": found.get("Status") or "AUTHORISED"}))
                log.info("%s %s: adopted %s made by an attempt whose answer was lost", kind.name, doc.id, found_id)
                break
    record_synced_all(ctx, token, adopted, outcome)
    done = {doc.id for doc, _ in adopted}
    return [d for d in docs if d.id not in done]


def _create(ctx: TenantContext, kind: AppliedKind, token: str, docs: list[SyncDocument], outcome: WriteOutcome) -> None:
    """Create in as few calls as the request size allows; each element's answer goes to its own row."""
    with ctx.sessions() as session, session.begin():
        # From here the outcome is unknown until the answer is read: a retry looks Xero up first.
        session.execute(
            update(SyncDocument)
            .where(SyncDocument.id.in_([d.id for d in docs]), SyncDocument.claim_token == token)
            .values(write_uncertain=True)
            .execution_options(synchronize_session=False)
        )
    sendable = [(doc, doc.payload or {}) for doc in docs]
    for sent in send_in_chunks(ctx, kind, sendable, "PUT", kind.create):
        landed: list[tuple[SyncDocument, dict[str, Any]]] = []
        for doc, payload, result in sent:
            if result is not None and result.ok and kind.xero_id(result.data):
                landed.append((doc, {**result.data, "Status": result.data.get("Status") or "AUTHORISED"}))
            else:
                messages = result.messages if result is not None else ["Xero returned no result for this element"]
                record_dead(ctx, doc, token, "write", ErrorClass.VALIDATION, messages, payload, outcome)
        record_synced_all(ctx, token, landed, outcome)

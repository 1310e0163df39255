"""Updates, voids and deletes: one POST per batch, after a read that refuses to touch paid documents."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mappings import (
    InvoiceAction,
)
from pipeline.context import TenantContext
from pipeline.errors import ErrorClass
from pipeline.kinds import DocumentKind
from pipeline.ledger.models import (
    SyncDocument,
)
from pipeline.writer.batches import contact_id_for, send_in_chunks, with_contact
from pipeline.writer.outcomes import WriteOutcome, record_conflict, record_dead, record_synced, record_synced_all


def write_updates(
    ctx: TenantContext,
    kind: DocumentKind,
    token: str,
    docs: list[SyncDocument],
    contacts: dict[str, str],
    outcome: WriteOutcome,
) -> None:
    """Update, void or delete documents of one kind; what Xero now holds decides (paid is a conflict)."""
    # Xero must not be changed under a payment: read the current state of every document first.
    current = {
        kind.xero_id(found) or "": found for found in kind.find_by_ids(ctx.xero, [d.xero_id or "" for d in docs])
    }
    sendable: list[tuple[SyncDocument, dict[str, Any]]] = []
    for doc in docs:
        existing = current.get(doc.xero_id or "")
        if existing is None:
            record_dead(
                ctx,
                doc,
                token,
                "write",
                ErrorClass.VALIDATION,
                [f"Xero {kind.name} {doc.xero_id} ({doc.document_number}) no longer exists"],
                doc.payload,
                outcome,
            )
            continue
        wanted = kind.recheck(InvoiceAction(doc.action or InvoiceAction.UPDATE), existing)
        if wanted is InvoiceAction.CONFLICT:
            status = str(existing.get("Status") or "").upper()
            reason = (
                f"Xero {kind.name.replace('_', ' ')} {doc.document_number} is {status} with {_paid(existing)} "
                f"paid/credited: the Cin7 change ({doc.action}) was not applied"
            )
            record_conflict(ctx, token, doc, reason, outcome, xero_status=status)
            continue
        if wanted is InvoiceAction.NOTHING:
            record_synced(ctx, token, doc, existing, outcome)
            continue
        if wanted in (InvoiceAction.VOID, InvoiceAction.DELETE):
            payload = kind.void_payload(doc.xero_id or "", doc.document_number or "", wanted)
        else:
            contact_id = contact_id_for(doc.payload or {}, contacts)
            assert contact_id is not None
            payload = {**with_contact(doc.payload or {}, contact_id), kind.id_field: doc.xero_id}
        sendable.append((doc, payload))
    for sent in send_in_chunks(ctx, kind, sendable, "POST", kind.update):
        landed: list[tuple[SyncDocument, dict[str, Any]]] = []
        for doc, payload, result in sent:
            if result is not None and result.ok:
                landed.append((doc, result.data))
            else:
                messages = result.messages if result is not None else ["Xero returned no result for this element"]
                record_dead(ctx, doc, token, "write", ErrorClass.VALIDATION, messages, payload, outcome)
        record_synced_all(ctx, token, landed, outcome)


def _paid(existing: dict[str, Any]) -> Decimal:
    return Decimal(str(existing.get("AmountPaid") or 0)) + Decimal(str(existing.get("AmountCredited") or 0))

"""Order between documents of one sale: a payment waits for its invoice, a refund for its credit note.

Waiting is a ledger state, not a retry: nothing polls it. Whenever a document of a sale is written (or
settles without a write), the sale's waiting documents go back to `pending` and are mapped again; the
sweep wakes any whose wake-up was lost. A document that waits on one that will not sync stays visible
as waiting, with the reason naming what it waits for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.kinds import Dependency
from pipeline.ledger.models import DocumentState, SyncDocument

# What a document's Xero status must be for another to be applied to it.
OPEN_IN_XERO = frozenset({"AUTHORISED", "PAID"})
GONE_FROM_XERO = frozenset({"DELETED", "VOIDED"})


@dataclass
class Waits:
    """The unmet dependencies of a document (`reason` None when all are met) and the Xero ids of the met."""

    reason: str | None = None
    parents: dict[tuple[str, str], str] = field(default_factory=dict)
    #: What it waits for is held for Xero's lock date: it never will be in Xero, so neither will this.
    locked_by: str | None = None
    #: The ledger ids of the rows it waits for (None: a row not recorded yet).
    waiting_on: list[int | None] = field(default_factory=list)


def _label(kind: str, row: SyncDocument | None, task_id: str) -> str:
    name = kind.replace("_", " ")
    return f"{name} {row.document_number}" if row is not None and row.document_number else f"{name} {task_id}"


def _why_not_in_xero(row: SyncDocument | None) -> str:
    if row is None:
        return "not recorded yet"
    match row.state:
        case DocumentState.DEAD:
            return f"dead-lettered: {(row.last_error or '').strip()[:200]}"
        case DocumentState.CONFLICT:
            return "in conflict"
        case DocumentState.IGNORED:
            return f"not synced: {row.last_error}" if row.last_error else f"not synced (Cin7 status {row.cin7_status})"
        case DocumentState.LOCKED:
            return "dated on or before Xero's lock date"
        case DocumentState.WAITING:
            return "itself waiting"
        case _:
            return f"{row.state}" + (f", Xero status {row.xero_status}" if row.xero_status else "")


def unmet(
    session: Session, doc: SyncDocument, needs: Sequence[Dependency], *, rows: Sequence[SyncDocument] | None = None
) -> Waits:
    """Check each dependency against the ledger rows of the document's sale (`rows` when the caller
    has already read them all).
    """
    waits = Waits()
    if not needs:
        return waits
    kinds = {need.kind for need in needs}
    if rows is None:
        rows = session.scalars(
            select(SyncDocument).where(
                SyncDocument.tenant_id == doc.tenant_id,
                SyncDocument.source == doc.source,
                SyncDocument.sale_id == doc.sale_id,
                SyncDocument.kind.in_(sorted(kinds)),
            )
        ).all()
    by_key = {(row.kind, row.task_id): row for row in rows if row.kind in kinds}
    reasons: list[str] = []
    for need in needs:
        if need.task_id == "*":
            matching = [
                r for (kind, _), r in by_key.items() if kind == need.kind and r.document_number == doc.document_number
            ]
            for found in matching:
                reasons.append(_check(waits, need, found))
                if reasons[-1]:
                    waits.waiting_on.append(found.id)
        else:
            needed = by_key.get((need.kind, need.task_id))
            if need.need == "in_xero" and needed is not None and needed.state == DocumentState.LOCKED:
                waits.locked_by = _label(need.kind, needed, need.task_id)
            reasons.append(_check(waits, need, needed))
            if reasons[-1]:
                waits.waiting_on.append(needed.id if needed is not None else None)
    reasons = [reason for reason in reasons if reason]
    waits.reason = "; ".join(reasons) or None
    return waits


def _check(waits: Waits, need: Dependency, row: SyncDocument | None) -> str:
    """Why the dependency is unmet ("" when met); a met one's Xero id goes to `waits.parents`."""
    task_id = row.task_id if row is not None else need.task_id
    status = (row.xero_status or "").upper() if row is not None else ""
    if need.need == "known":
        if row is not None and row.xero_id:
            waits.parents[(need.kind, task_id)] = row.xero_id
        return ""
    if need.need == "in_xero":
        if row is not None and row.xero_id and status in OPEN_IN_XERO:
            waits.parents[(need.kind, task_id)] = row.xero_id
            return ""
        return f"waits for {_label(need.kind, row, task_id)} to be in Xero ({_why_not_in_xero(row)})"
    if row is not None and row.xero_id and status not in GONE_FROM_XERO and row.state != DocumentState.IGNORED:
        return f"waits for {_label(need.kind, row, task_id)} to be taken off Xero first"
    return ""

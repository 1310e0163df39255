"""Recording what Xero answered, element by element: synced, dead, conflict, or retry for the whole call."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from mappings import (
    XeroInvoiceStatus,
)
from pipeline.context import TenantContext
from pipeline.errors import ErrorClass, SyncError
from pipeline.kinds import kind_of
from pipeline.ledger.models import (
    DeadLetter,
    DocumentState,
    SyncDocument,
    utcnow,
)
from pipeline.ledger.ops import wake_waiting
from pipeline.operations.pauses import pause_tenant
from pipeline.policy import Next, attempts_after, decide_for
from pipeline.recovery.deadletters import record_dead_letter, resolve_dead_letters

log = logging.getLogger(__name__)


@dataclass
class WriteOutcome:
    """What a write round did, for the task to report and schedule."""

    claimed: int = 0
    synced: int = 0
    dead: int = 0
    conflicts: int = 0
    retry_in: float | None = None
    # Documents whose Cin7 source changed while they were being written: map them again.
    to_map: list[int] = field(default_factory=list)
    # Invoice numbers Xero confirmed, so that an operator following one invoice finds its write task.
    written: list[str] = field(default_factory=list)
    contacts_pushed: int = 0


def record_dead(
    ctx: TenantContext,
    doc: SyncDocument,
    token: str,
    stage: str,
    error_class: ErrorClass,
    messages: Sequence[str],
    payload: dict[str, Any] | None,
    outcome: WriteOutcome,
) -> None:
    """Dead-letter one element Xero answered for (or that was never sent).

    Xero refusing a document for its locked period is not a failure to retry or requeue: the document
    is a conflict (the bookkeeper moves the lock date or settles it by hand).
    """
    locked = any("lock date" in message.lower() for message in messages)
    with ctx.sessions() as session, session.begin():
        row = session.scalar(select(SyncDocument).where(SyncDocument.id == doc.id, SyncDocument.claim_token == token))
        if row is None:
            return
        row.attempts += 1
        # Xero answered for this element (or it was never sent): its outcome is known.
        row.write_uncertain = False
        if locked:
            row.state = DocumentState.CONFLICT
            row.error_class = ErrorClass.CONFLICT.value
            row.claim_token = None
            row.last_error = "; ".join(messages)[:4000]
        else:
            record_dead_letter(session, row, stage=stage, error_class=error_class, messages=messages, payload=payload)
    if locked:
        outcome.conflicts += 1
    else:
        outcome.dead += 1


def retry_all(
    ctx: TenantContext, token: str, docs: Sequence[SyncDocument], error: SyncError, outcome: WriteOutcome
) -> None:
    """A whole call failed: every document in it waits (or, out of attempts or permanent, is dead).

    A day limit or a configuration problem parks the whole tenant instead: its documents wait for the
    pause without spending attempts, and nobody gets a dead letter per invoice for one broken connection.
    """
    wait = 0.0
    pause = pause_tenant(ctx, error)
    with ctx.sessions() as session, session.begin():
        for doc in docs:
            row = session.scalar(
                select(SyncDocument).where(SyncDocument.id == doc.id, SyncDocument.claim_token == token)
            )
            if row is None:
                continue
            row.attempts = attempts_after(error, row.attempts)
            row.claim_token = None
            row.last_error = error.message[:4000]
            row.error_class = error.error_class.value
            # We cannot know whether Xero committed before the failure: look it up before creating again.
            row.write_uncertain = row.write_uncertain or error.error_class is ErrorClass.TRANSIENT
            decision = decide_for(error, row.attempts, ctx.settings)
            if decision.next is Next.DEAD_LETTER:
                record_dead_letter(
                    session,
                    row,
                    stage="write",
                    error_class=decision.error_class,
                    messages=list(decision.messages),
                    payload=row.payload,
                )
                outcome.dead += 1
                continue
            if decision.next is Next.CONFLICT:
                row.state = DocumentState.CONFLICT
                outcome.conflicts += 1
                continue
            delay = pause if pause is not None else decision.delay
            wait = max(wait, delay)
            row.state = DocumentState.RETRY
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)
    log.warning("xero write failed (%s), retrying in %.1fs: %s", error.error_class.value, wait, error.message)
    outcome.retry_in = wait


def record_synced(
    ctx: TenantContext, token: str, doc: SyncDocument, data: dict[str, Any], outcome: WriteOutcome
) -> None:
    """Record one document Xero confirmed."""
    record_synced_all(ctx, token, [(doc, data)], outcome)


def record_synced_all(
    ctx: TenantContext, token: str, landed: Sequence[tuple[SyncDocument, dict[str, Any]]], outcome: WriteOutcome
) -> None:
    """Record what Xero confirmed, for a whole batch in one transaction."""
    if not landed:
        return
    by_id = {doc.id: data for doc, data in landed}
    with ctx.sessions() as session, session.begin():
        rows = list(
            session.scalars(
                select(SyncDocument).where(SyncDocument.id.in_(list(by_id)), SyncDocument.claim_token == token)
            )
        )
        for row in rows:
            data = by_id[row.id]
            row.xero_id = kind_of(row.kind).xero_id(data) or row.xero_id
            row.xero_status = str(data.get("Status") or "")
            row.xero_totals = {key: str(value) for key, value in kind_of(row.kind).totals(data).items()}
            row.synced_hash = row.payload_hash
            row.write_uncertain = False
            row.claim_token = None
            row.synced_at = utcnow()
            row.last_error = None
            row.error_class = None
            row.attempts += 1
            if row.source_hash != row.mapped_source_hash:
                # Cin7 changed while we wrote: map the newer version.
                row.state = DocumentState.PENDING
                outcome.to_map.append(row.id)
            elif row.xero_status in (XeroInvoiceStatus.VOIDED, XeroInvoiceStatus.DELETED):
                row.state = DocumentState.VOIDED
            else:
                row.state = DocumentState.SYNCED
            outcome.synced += 1
            outcome.written.append(row.document_number or str(row.id))
        # Only documents that ever had a dead letter need their letters closed: one query finds them.
        with_letters = set(
            session.scalars(
                select(DeadLetter.document_id).where(
                    DeadLetter.document_id.in_([row.id for row in rows]), DeadLetter.resolved_at.is_(None)
                )
            )
        )
        for row in rows:
            if row.id in with_letters:
                resolve_dead_letters(session, row)
        # What was written may be what other documents of these sales wait for (a payment, its invoice).
        outcome.to_map.extend(wake_waiting(session, ctx.tenant_pk, sorted({row.sale_id for row in rows})))


def record_conflict(
    ctx: TenantContext,
    token: str,
    doc: SyncDocument,
    reason: str,
    outcome: WriteOutcome,
    *,
    xero_status: str | None = None,
) -> None:
    """Record that Xero holds what the planned write must not overwrite (paid, credited, reconciled)."""
    with ctx.sessions() as session, session.begin():
        row = session.scalar(select(SyncDocument).where(SyncDocument.id == doc.id, SyncDocument.claim_token == token))
        if row is None:
            return
        row.state = DocumentState.CONFLICT
        row.error_class = ErrorClass.CONFLICT.value
        if xero_status is not None:
            row.xero_status = xero_status
        row.claim_token = None
        row.last_error = reason
    outcome.conflicts += 1

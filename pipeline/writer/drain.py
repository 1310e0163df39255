"""The writer: drain a tenant's ready documents to Xero in batches, as its only writer for now.

Writes coalesce through the ledger: a write task claims up to 50 `ready` rows of its tenant (its own
first) by an UPDATE that only takes rows still `ready`, so concurrent writers never share a row, and
a writer whose row was already taken by another has nothing to do. One Xero call then carries the
whole batch (summarizeErrors=false), and each element's result goes back to its own row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select

from mappings import (
    InvoiceAction,
)
from pipeline import app
from pipeline.app import TaskName
from pipeline.contacts.matching import ContactResult
from pipeline.contacts.push import PUSH_BATCH, push_backlog, push_contacts
from pipeline.contacts.resolve import ensure_contacts
from pipeline.context import TenantContext
from pipeline.errors import SyncError
from pipeline.kinds import AppliedKind, DocumentKind, kind_of
from pipeline.ledger.models import ParentKind, PartyKind, SyncDocument
from pipeline.operations.pauses import pause_tenant, paused_for, resume_after_success
from pipeline.policy import MAX_COUNTDOWN_SECONDS, decide_for
from pipeline.writer.applied import write_applied
from pipeline.writer.claim import (
    acquire_lease,
    claim_batch,
    ready_count,
    release_due_retries,
    release_lease,
    release_write_message,
    renew_lease,
)
from pipeline.writer.creates import resolve_uncertain_creates, write_creates
from pipeline.writer.outcomes import WriteOutcome, record_dead, retry_all
from pipeline.writer.pacing import GATHER_POLL_SECONDS, gather, mark_flushed
from pipeline.writer.tracking import ensure_tracking_options
from pipeline.writer.updates import write_updates

log = logging.getLogger(__name__)

# A drain hands on to a fresh write message after this long: under Xero's limit a backlog takes far
# longer than a task may run (TASK_SOFT_TIME_LIMIT, 540 s), and a writer stopped by that limit would
# leave its claimed batch for the sweep to reclaim. The new message also lets other tenants in.
DRAIN_SECONDS = 180.0


def write_ready(ctx: TenantContext, first_id: int | None, *, max_batches: int = 40) -> WriteOutcome:
    """Drain the tenant's ready documents in batches, as its only writer for now.

    A write task that finds another writer draining returns at once: that writer clears the tenant's
    pending-write flag when it lets go and then re-checks for ready rows, so a row made ready while it
    held the lease is never stranded, and while it drains the fetches send it no further messages.
    """
    outcome = WriteOutcome()
    batch_size = ctx.settings.xero_batch_size
    started = time.monotonic()
    while True:
        owner = acquire_lease(ctx)
        if owner is None:
            # The pending-write flag stays set: the writer that holds the lease clears it when it lets
            # go and then looks for ready rows itself, so fetches send no message while it drains.
            return outcome
        try:
            release_due_retries(ctx)
            for _ in range(max_batches):
                if time.monotonic() - started > DRAIN_SECONDS:
                    outcome.retry_in = 0.0
                    break
                if push_backlog(ctx)[1] > ctx.settings.contact_push_max_delay_seconds:
                    # Invoices never stopped coming: contacts still get their turn, a batch at a time.
                    _push_contacts(ctx, outcome, rounds=1, reschedule=False)
                gather(ctx, batch_size)
                pause = paused_for(ctx)
                if pause is not None:
                    # Parked (day limit, revoked consent): rows stay ready; the sweep or a countdown
                    # brings a writer back when the pause ends.
                    outcome.retry_in = pause
                    break
                token, ids = claim_batch(ctx, first_id)
                first_id = None
                if not ids:
                    break
                outcome.claimed += len(ids)
                mark_flushed(ctx)
                synced_before = outcome.synced
                _write_batch(ctx, token, ids, outcome)
                if outcome.synced > synced_before:
                    resume_after_success(ctx)
                if outcome.retry_in is not None:
                    break
                renew_lease(ctx, owner)
            if outcome.retry_in is None and ready_count(ctx) == 0:
                # Quiet: now the contact details and numbers invoices could not carry, in full batches
                # (a part batch once it has waited a little, so that a quiet tenant is not left short).
                waiting, age = push_backlog(ctx)
                quiet = ctx.settings.contact_push_quiet_seconds
                if waiting >= PUSH_BATCH or (waiting and age >= quiet):
                    _push_contacts(ctx, outcome, rounds=20)
                elif waiting:
                    outcome.retry_in = quiet - age + GATHER_POLL_SECONDS
        finally:
            release_lease(ctx, owner)
            # Rows made ready from here on may need a new message; those made ready before are seen below.
            release_write_message(ctx)
        if outcome.retry_in is not None or ready_count(ctx) == 0:
            return outcome


def _push_contacts(ctx: TenantContext, outcome: WriteOutcome, *, rounds: int, reschedule: bool = True) -> None:
    """Push contacts in batches while there is something to push and no invoice is waiting."""
    for _ in range(rounds):
        try:
            pushed = push_contacts(ctx)
        except SyncError as error:
            pause = pause_tenant(ctx, error)
            log.warning("contact push failed (%s): %s", error.error_class.value, error.message)
            # The links keep what is still to push, so a failed round is retried as a whole, from the ledger.
            decision = decide_for(error, 1, ctx.settings)
            if pause is not None:
                outcome.retry_in = pause
            elif decision.retries:
                outcome.retry_in = decision.delay
            return
        outcome.contacts_pushed += pushed.pushed
        if pushed.pushed + pushed.unchanged + pushed.failed == 0 or ready_count(ctx) > 0:
            return
        waiting, age = push_backlog(ctx)
        if waiting < PUSH_BATCH and age < ctx.settings.contact_push_quiet_seconds:
            if waiting:
                outcome.retry_in = ctx.settings.contact_push_quiet_seconds - age + GATHER_POLL_SECONDS
            return
    if reschedule and push_backlog(ctx)[0]:
        # Rounds used up with contacts still waiting: a fresh write message carries on (and lets other
        # tenants' work in between), rather than leaving them to the next sweep.
        outcome.retry_in = GATHER_POLL_SECONDS


def _write_batch(ctx: TenantContext, token: str, ids: Sequence[int], outcome: WriteOutcome) -> None:
    """Write one claimed batch: each kind in it goes in its own calls (Xero takes one collection a call)."""
    with ctx.sessions() as session:
        docs = list(
            session.scalars(
                select(SyncDocument).where(SyncDocument.id.in_(list(ids)), SyncDocument.claim_token == token)
            )
        )
    by_kind: dict[str, list[SyncDocument]] = {}
    for doc in docs:
        by_kind.setdefault(doc.kind, []).append(doc)
    # Documents before what is applied to them: an invoice written in this batch can be paid in it.
    for name in sorted(by_kind, key=lambda name: kind_of(name).numbered, reverse=True):
        kind = kind_of(name)
        if isinstance(kind, AppliedKind):
            try:
                write_applied(ctx, kind, token, by_kind[name], outcome)
            except SyncError as error:
                retry_all(ctx, token, by_kind[name], error, outcome)
        else:
            _write_kind(ctx, kind, token, by_kind[name], outcome)


def _write_kind(
    ctx: TenantContext, kind: DocumentKind, token: str, docs: list[SyncDocument], outcome: WriteOutcome
) -> None:
    creates = [d for d in docs if d.action == InvoiceAction.CREATE and d.xero_id is None]
    updates = [d for d in docs if d not in creates]
    try:
        # Xero drops a tracking option it does not have: make each one first (a refusal fails its documents).
        sending = [d for d in docs if d.action in (InvoiceAction.CREATE, InvoiceAction.UPDATE)]
        refused = {d.id for d in sending} - {d.id for d in ensure_tracking_options(ctx, token, sending, outcome)}
        creates = [d for d in creates if d.id not in refused]
        updates = [d for d in updates if d.id not in refused]
        # Creates that may already be in Xero come first: what they created decides the contacts of
        # everyone else in the batch.
        creates = resolve_uncertain_creates(ctx, kind, token, creates, outcome)
        needing = [d for d in docs if d.action in (InvoiceAction.CREATE, InvoiceAction.UPDATE) and d.customer_id]
        customer_ids = sorted({d.customer_id for d in needing if d.customer_id})
        # A customer only new invoices need can have its contact created by the invoice itself; a
        # supplier's contact is always made first, with its ABN and people, to be matched by them later.
        supplier = kind.parent_kind == ParentKind.PURCHASE
        inline_allowed = (
            set()
            if supplier
            else {d.customer_id for d in creates if d.customer_id} - {d.customer_id for d in updates if d.customer_id}
        )
        contact_result = (
            ensure_contacts(
                ctx,
                customer_ids,
                inline_allowed=inline_allowed,
                kind=PartyKind.SUPPLIER if supplier else PartyKind.CUSTOMER,
            )
            if customer_ids
            else None
        )
        result = contact_result or ContactResult()
        # Contact failures are permanent for the documents that need them.
        for doc in list(creates) + list(updates):
            if doc.action in (InvoiceAction.CREATE, InvoiceAction.UPDATE) and doc.customer_id in result.failures:
                failure = result.failures[doc.customer_id]
                record_dead(ctx, doc, token, "contact", failure.error_class, failure.messages, doc.payload, outcome)
                if doc in creates:
                    creates.remove(doc)
                else:
                    updates.remove(doc)
        if creates:
            write_creates(ctx, kind, token, creates, result, outcome)
        if updates:
            write_updates(ctx, kind, token, updates, result.contact_ids, outcome)
    except SyncError as error:
        retry_all(ctx, token, docs, error, outcome)


def send_to_map(ctx: TenantContext, doc_ids: Sequence[int]) -> None:
    """One map_document message per document."""
    for doc_id in doc_ids:
        app.send(TaskName.MAP_DOCUMENT, ctx.tenant_key, doc_id)


def write_message(
    ctx: TenantContext, doc_id: int | None, *, remap: Callable[[TenantContext, Sequence[int]], None] = send_to_map
) -> dict[str, Any]:
    """What a write_document message does: drain the tenant's ready rows, then schedule what is left.

    What the writes woke (a payment whose invoice is now in Xero) goes to `remap`: the mapping stage
    maps it in this task (the writer itself knows nothing of mapping). The invoice numbers in the
    result let an operator who follows one invoice in Flower find the batch that wrote it.
    """
    outcome = write_ready(ctx, doc_id)
    if outcome.to_map:
        remap(ctx, outcome.to_map)
    if outcome.retry_in is not None and outcome.retry_in <= MAX_COUNTDOWN_SECONDS:
        app.send(TaskName.WRITE_DOCUMENT, ctx.tenant_key, None, countdown=outcome.retry_in)
    return {
        "claimed": outcome.claimed,
        "synced": outcome.synced,
        "dead": outcome.dead,
        "conflicts": outcome.conflicts,
        "contacts_pushed": outcome.contacts_pushed,
        "written": outcome.written,
    }

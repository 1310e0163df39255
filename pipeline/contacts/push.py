"""Pushes: what an invoice could not carry, sent in batches of 50 when the invoice queue is quiet.

Contacts we created get every detail (ContactNumber included), and again whenever Cin7 changes the
customer; adopted contacts get our ContactNumber only, their details are the bookkeeper's.
`push_backlog` says how many links wait and for how long.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, case, func, or_, select

from mappings import MappingError, normalise_name
from pipeline.contacts.cache import cache_contacts
from pipeline.contacts.links import customer_source_hash, link_party_join, reserved_names
from pipeline.contacts.parties import Party, mapped_contact, parse_party
from pipeline.context import TenantContext
from pipeline.errors import ErrorClass, SyncError
from pipeline.idempotency import idempotency_key
from pipeline.ledger.models import ContactLink, CustomerRecord, XeroContactCache, utcnow
from pipeline.operations import alerts
from pipeline.policy import pauses_tenant, retryable

log = logging.getLogger(__name__)

CREATED_KINDS = ("created", "created_inline")
PUSH_BATCH = 50


@dataclass
class PushOutcome:
    """What one push round did."""

    pushed: int = 0
    unchanged: int = 0
    failed: int = 0


def _push_filter(ctx: TenantContext) -> Any:
    # Never pushed, or a contact we created whose Cin7 customer changed since (LastModifiedOn moved).
    return and_(
        ContactLink.tenant_id == ctx.tenant_pk,
        or_(
            ContactLink.pushed_at.is_(None),
            and_(
                ContactLink.linked_by.in_(CREATED_KINDS),
                CustomerRecord.last_modified_on.is_not(None),
                or_(
                    ContactLink.pushed_modified_on.is_(None),
                    CustomerRecord.last_modified_on != ContactLink.pushed_modified_on,
                ),
            ),
        ),
    )


def push_backlog(ctx: TenantContext) -> tuple[int, float]:
    """(links whose contact may lack something of ours, seconds the oldest of them has waited).

    Some turn out unchanged and cost no call. A link waits from when it was made (never pushed) or
    from when its customer was last stored (an edit).
    """
    waiting_since = case((ContactLink.pushed_at.is_(None), ContactLink.created_at), else_=CustomerRecord.fetched_at)
    with ctx.sessions() as session:
        count, oldest = session.execute(
            select(func.count(), func.min(waiting_since))
            .select_from(ContactLink)
            .join(CustomerRecord, link_party_join())
            .where(_push_filter(ctx))
        ).one()
    if not count or oldest is None:
        return 0, 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), max(0.0, (utcnow() - oldest).total_seconds())


def _push_name(link: ContactLink, customer: Party, taken: set[str]) -> str:
    """The name to send: Cin7's when it changed and is free in Xero, else the one Xero has."""
    wanted = (customer.name or "").strip()
    if wanted and normalise_name(wanted) != normalise_name(link.xero_name) and normalise_name(wanted) not in taken:
        return wanted
    return link.xero_name


@dataclass
class _Round:
    """One push round's links and what became of each (keyed by link id)."""

    rows: list[Any]
    customers: dict[int, Party] = field(default_factory=dict)
    bad: dict[int, str] = field(default_factory=dict)
    # link id -> the people its contact could not carry (contacts sent in full only)
    left_out: dict[int, list[str]] = field(default_factory=dict)
    unchanged: set[int] = field(default_factory=set)
    body: list[dict[str, Any]] = field(default_factory=list)
    sent: list[tuple[ContactLink, str]] = field(default_factory=list)
    # link id -> (source hash, Xero's contact or None, Xero's refusal)
    results: dict[int, tuple[str, dict[str, Any] | None, str | None]] = field(default_factory=dict)


def push_contacts(ctx: TenantContext, *, limit: int = PUSH_BATCH) -> PushOutcome:
    """Send one batch of contact details and ContactNumbers Xero lacks from us (one POST /Contacts).

    Contacts we created get every detail, and again whenever Cin7 changes the customer; adopted
    contacts get our ContactNumber only. A rejected element keeps its reason on the link and raises
    one alert; it is tried again when the customer next changes in Cin7. A whole failed call raises
    SyncError and leaves every link as it was.
    """
    with ctx.sessions() as session:
        rows = session.execute(
            select(ContactLink, CustomerRecord.snapshot, CustomerRecord.last_modified_on, CustomerRecord.kind)
            .join(CustomerRecord, link_party_join())
            .where(_push_filter(ctx))
            .order_by(ContactLink.id)
            .limit(limit)
        ).all()
    if not rows:
        return PushOutcome()
    batch = _Round(rows=list(rows))
    _parse_customers(batch)
    _build_body(batch, _taken_names(ctx, batch.customers.values()))
    _send(ctx, batch)
    cache_contacts(ctx, [data for _, data, _ in batch.results.values() if data is not None])
    return _record(ctx, batch)


def _parse_customers(batch: _Round) -> None:
    for link, snapshot, _modified, kind in batch.rows:
        try:
            batch.customers[link.id] = parse_party(snapshot, kind)
        except ValidationError as exc:
            batch.bad[link.id] = f"Cin7 {kind} {link.cin7_customer_id} does not parse: {exc}"


def _taken_names(ctx: TenantContext, customers: Iterable[Party]) -> set[str]:
    """Names a linked contact may not be renamed to: held by a contact Xero has, or sent by another
    customer's create whose answer was lost (Xero may hold that customer's contact under it, and its
    retry sends the name again: renamed to it, this contact would be found for that customer).
    """
    names = [n for n in (normalise_name(c.name or "") for c in customers) if n]
    with ctx.sessions() as session:
        cached = {
            str(row.name_key)
            for row in session.scalars(
                select(XeroContactCache).where(
                    XeroContactCache.tenant_id == ctx.tenant_pk, XeroContactCache.name_key.in_(names)
                )
            )
        }
    return cached | set(reserved_names(ctx))


def _build_body(batch: _Round, taken: set[str]) -> None:
    for link, _snapshot, _modified, _kind in batch.rows:
        customer = batch.customers.get(link.id)
        if customer is None:
            continue
        source_hash = customer_source_hash(customer)
        if link.linked_by not in CREATED_KINDS:
            batch.body.append({"ContactID": link.xero_contact_id, "ContactNumber": customer.id})
        elif link.pushed_at is not None and link.pushed_source_hash == source_hash:
            batch.unchanged.add(link.id)
            continue
        else:
            try:
                mapped = mapped_contact(customer, _push_name(link, customer, taken))
                payload = mapped.payload.to_json()
                batch.left_out[link.id] = list(mapped.left_out)
            except MappingError as exc:
                batch.bad[link.id] = "; ".join(p.message for p in exc.problems)
                continue
            batch.body.append({**payload, "ContactID": link.xero_contact_id})
        batch.sent.append((link, source_hash))


def _send(ctx: TenantContext, batch: _Round) -> None:
    if not batch.body:
        return
    try:
        elements = ctx.xero.update_contacts(batch.body, idempotency_key(ctx.tenant_key, "POST /Contacts", batch.body))
    except SyncError as refused:
        if retryable(refused.error_class) or pauses_tenant(refused.error_class):
            raise
        # Refused as a whole, for good: every contact in the call keeps the reason and waits for its
        # customer's next change, rather than costing a call at every sweep and never settling.
        for link, _ in batch.sent:
            batch.bad[link.id] = f"Xero refused the contact update: {refused.message}"
        return
    retry_body: list[dict[str, Any]] = []
    retry_sent: list[tuple[ContactLink, str]] = []
    for (link, source_hash), payload, element in zip(batch.sent, batch.body, elements, strict=False):
        if element.ok:
            batch.results[link.id] = (source_hash, element.data, None)
            continue
        text = " ".join(element.messages)
        retry = _without_refused_field(link, payload, text.lower())
        if retry is None:
            batch.results[link.id] = (source_hash, None, text)
        else:
            retry_body.append(retry)
            retry_sent.append((link, source_hash))
    if retry_body:
        again = ctx.xero.update_contacts(retry_body, idempotency_key(ctx.tenant_key, "POST /Contacts", retry_body))
        for (link, source_hash), element in zip(retry_sent, again, strict=False):
            batch.results[link.id] = (
                source_hash,
                element.data if element.ok else None,
                " ".join(element.messages) or None,
            )


def _without_refused_field(link: ContactLink, payload: dict[str, Any], refusal: str) -> dict[str, Any] | None:
    """The payload again without what Xero refused, when the rest is still wanted; else None."""
    if "currency" in refusal and "DefaultCurrency" in payload:
        # Xero refuses a currency the organisation has not enabled.
        return {k: v for k, v in payload.items() if k != "DefaultCurrency"}
    if "name" in refusal and "unique" in refusal and payload.get("Name") != link.xero_name:
        return {**payload, "Name": link.xero_name}
    return None


def _record(ctx: TenantContext, batch: _Round) -> PushOutcome:
    outcome = PushOutcome()
    now = utcnow()
    with ctx.sessions() as session, session.begin():
        for link, _snapshot, modified, _kind in batch.rows:
            row = session.get(ContactLink, link.id)
            if row is None:
                continue
            if link.id not in batch.bad and link.id not in batch.results and link.id not in batch.unchanged:
                continue  # no element came back for it: try again next round
            row.pushed_modified_on = modified
            if link.id in batch.bad:
                row.pushed_at, row.push_error = now, batch.bad[link.id][:4000]
                outcome.failed += 1
                alerts.note_problem(
                    session, ctx.tenant_pk, ErrorClass.VALIDATION, f"contact push: {batch.bad[link.id]}"
                )
                continue
            if link.id in batch.unchanged:
                row.pushed_at = now
                outcome.unchanged += 1
                continue
            source_hash, data, error = batch.results[link.id]
            row.pushed_at, row.pushed_source_hash = now, source_hash
            if data is not None:
                row.push_error = None
                row.xero_name = str(data.get("Name") or row.xero_name)[:255]
                if link.id in batch.left_out:
                    row.people_left_out = batch.left_out[link.id] or None
                outcome.pushed += 1
            else:
                row.push_error = (error or "Xero returned no result for this contact")[:4000]
                outcome.failed += 1
                log.warning(
                    "contact %s for customer %s not updated: %s", row.xero_contact_id, row.cin7_customer_id, error
                )
                alerts.note_problem(session, ctx.tenant_pk, ErrorClass.VALIDATION, f"contact push: {row.push_error}")
    return outcome

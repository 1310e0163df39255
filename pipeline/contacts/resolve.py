"""Cin7 customers -> Xero contacts, resolved in bulk and never with one search per order.

Order of resolution for a customer: the ledger link; a Xero contact whose ContactNumber is the Cin7
CustomerID; an active contact with the same e-mail (case-insensitive) and no ContactNumber; an active
contact with the same name and no ContactNumber. Archived contacts are never adopted.

Candidates come from a cache of Xero's contacts in the ledger: read in full (1000 a page) on the
first run, then with If-Modified-Since every few minutes, and updated with every contact we create
or adopt. A contact made in Xero since the last read is still found: Xero refuses a second contact
with its name, and that refusal triggers a targeted search and the usual adoption order.

A customer new to Xero costs no call of its own: its first invoice names the contact by Name alone,
which Xero finds or creates (the one documented way to create a contact inside an invoice), and the
link is taken from the invoice Xero returns. What an invoice cannot carry safely (ContactNumber, whose
meaning inside an invoice differs between sources, and the details) follows in batches of 50 when the
invoice queue is quiet: `push_contacts`, which also sends Cin7 edits of customers we created. An
adopted contact gets our ContactNumber the same way and nothing else: its details are the
bookkeeper's. At the API ceiling this is what lets every call carry 50 invoices.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, case, func, or_, select

from mappings import (
    Cin7Customer,
    MappingError,
    contact_name_variant,
    content_hash,
    map_contact,
    normalise_email,
    normalise_name,
)
from pipeline.context import TenantContext
from pipeline.discovery.poll import store_customers
from pipeline.errors import ErrorClass, SyncError
from pipeline.idempotency import idempotency_key
from pipeline.ledger.models import (
    ContactLink,
    CustomerRecord,
    PollCursor,
    SyncDocument,
    XeroContactCache,
    utcnow,
)
from pipeline.ledger.ops import insert_ignore
from pipeline.operations import alerts
from pipeline.policy import pauses_tenant, retryable
from pipeline.xero.client import xero_string_literal

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 10
MAX_NAME_ATTEMPTS = 4


@dataclass(frozen=True)
class InlineContact:
    """A customer whose contact its invoice creates: Xero finds or creates the contact by this name."""

    customer_id: str
    name: str
    name_note: str | None
    # None when the customer is linked from an invoice found after a lost answer: the next push sends
    # every detail anyway.
    source_hash: str | None


@dataclass
class ContactResult:
    """Xero ContactIDs by Cin7 customer id, the customers that could not be given one, and those
    whose contact the invoice itself creates."""

    contact_ids: dict[str, str] = field(default_factory=dict)
    failures: dict[str, SyncError] = field(default_factory=dict)
    inline: dict[str, InlineContact] = field(default_factory=dict)


@dataclass
class _Plan:
    customer: Cin7Customer
    contact_id: str | None = None
    linked_by: str = "created"
    name: str = ""
    name_note: str | None = None
    name_attempt: int = -1
    # Xero rejects a DefaultCurrency the organisation has not enabled; the contact is still wanted.
    without_currency: bool = False


def _load_customers(ctx: TenantContext, ids: Sequence[str], result: ContactResult) -> dict[str, Cin7Customer]:
    with ctx.sessions() as session:
        rows = {
            r.customer_id: dict(r.snapshot)
            for r in session.scalars(
                select(CustomerRecord).where(
                    CustomerRecord.tenant_id == ctx.tenant_pk, CustomerRecord.customer_id.in_(list(ids))
                )
            )
        }
    for customer_id in ids:
        if customer_id not in rows:
            fetched = ctx.cin7.get_customer(customer_id)
            if fetched is None:
                result.failures[customer_id] = SyncError(
                    ErrorClass.MAPPING, f"Cin7 customer {customer_id} not found", api="cin7"
                )
                continue
            with ctx.sessions() as session, session.begin():
                store_customers(session, ctx.tenant_pk, [fetched])
            rows[customer_id] = fetched
    customers: dict[str, Cin7Customer] = {}
    for customer_id, row in rows.items():
        try:
            customers[customer_id] = Cin7Customer.model_validate(row)
        except ValidationError as exc:
            result.failures[customer_id] = SyncError(
                ErrorClass.MAPPING, f"Cin7 customer {customer_id} does not parse: {exc}", api="cin7"
            )
    return customers


def _lookup(ctx: TenantContext, customers: Sequence[Cin7Customer]) -> list[dict[str, Any]]:
    """Candidate Xero contacts for these customers: one filtered read per chunk, archived included."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(customers), LOOKUP_CHUNK):
        clauses: list[str] = []
        for customer in customers[start : start + LOOKUP_CHUNK]:
            clauses.append(f"ContactNumber=={xero_string_literal(customer.id)}")
            email = (customer.primary_email or "").strip()
            if email:
                clauses.append(f"EmailAddress=={xero_string_literal(email)}")
            if customer.name and customer.name.strip():
                clauses.append(f"Name=={xero_string_literal(customer.name.strip())}")
        for contact in ctx.xero.find_contacts(" OR ".join(clauses)):
            found[str(contact.get("ContactID"))] = contact
    return list(found.values())


CACHE_STREAM = "xero_contacts"
# Contacts changed in Xero by people are picked up this often (one paged, If-Modified-Since read).
CACHE_REFRESH = timedelta(minutes=5)


def _cache_keys(contact: dict[str, Any]) -> dict[str, Any]:
    number = str(contact.get("ContactNumber") or "").strip().lower() or None
    name = normalise_name(str(contact.get("Name") or "")) or None
    return {
        "number_key": number[:64] if number else None,
        "email_key": (normalise_email(contact.get("EmailAddress")) or "")[:255] or None,
        "name_key": name[:255] if name else None,
    }


def cache_contacts(ctx: TenantContext, contacts: Sequence[dict[str, Any]]) -> None:
    """Remember contacts as Xero returned them (reads, creates, updates)."""
    fresh = {str(c["ContactID"]): c for c in contacts if c.get("ContactID")}
    if not fresh:
        return
    slim = {
        cid: {k: c.get(k) for k in ("ContactID", "Name", "ContactNumber", "EmailAddress", "ContactStatus")}
        for cid, c in fresh.items()
    }
    with ctx.sessions() as session, session.begin():
        existing = {
            row.contact_id: row
            for row in session.scalars(
                select(XeroContactCache).where(
                    XeroContactCache.tenant_id == ctx.tenant_pk, XeroContactCache.contact_id.in_(list(slim))
                )
            )
        }
        new_rows = []
        for cid, contact in slim.items():
            keys = _cache_keys(contact)
            row = existing.get(cid)
            if row is None:
                new_rows.append(
                    {
                        "tenant_id": ctx.tenant_pk,
                        "contact_id": cid,
                        "contact": contact,
                        "refreshed_at": utcnow(),
                        **keys,
                    }
                )
            else:
                row.contact = contact
                row.number_key, row.email_key, row.name_key = keys["number_key"], keys["email_key"], keys["name_key"]
                row.refreshed_at = utcnow()
        insert_ignore(session, XeroContactCache, new_rows, ["tenant_id", "contact_id"])


def refresh_contact_cache(ctx: TenantContext) -> None:
    """Read every Xero contact on the first run (1000 a page), then only what changed, now and then."""
    with ctx.sessions() as session:
        cursor = session.scalar(
            select(PollCursor).where(PollCursor.tenant_id == ctx.tenant_pk, PollCursor.stream == CACHE_STREAM)
        )
        last = cursor.last_polled_at if cursor is not None else None
    started = utcnow()
    if last is not None and started - last < CACHE_REFRESH:
        return
    since = last - timedelta(minutes=1) if last is not None else None
    for page in ctx.xero.iter_contacts(include_archived=True, modified_since=since):
        cache_contacts(ctx, page)
    with ctx.sessions() as session, session.begin():
        insert_ignore(
            session,
            PollCursor,
            [{"tenant_id": ctx.tenant_pk, "stream": CACHE_STREAM, "updated_at": utcnow()}],
            ["tenant_id", "stream"],
        )
        cursor = session.scalar(
            select(PollCursor).where(PollCursor.tenant_id == ctx.tenant_pk, PollCursor.stream == CACHE_STREAM)
        )
        assert cursor is not None
        cursor.last_polled_at = started


def _cached_candidates(ctx: TenantContext, customers: Sequence[Cin7Customer]) -> list[dict[str, Any]]:
    numbers = [c.id for c in customers]
    emails = [e for e in (normalise_email(c.primary_email) for c in customers) if e]
    names = [n for n in (normalise_name(c.name or "") for c in customers) if n]
    with ctx.sessions() as session:
        rows = session.scalars(
            select(XeroContactCache).where(
                XeroContactCache.tenant_id == ctx.tenant_pk,
                or_(
                    XeroContactCache.number_key.in_(numbers),
                    XeroContactCache.email_key.in_(emails),
                    XeroContactCache.name_key.in_(names),
                ),
            )
        )
        return [dict(row.contact) for row in rows]


def _active(contact: dict[str, Any]) -> bool:
    return str(contact.get("ContactStatus") or "ACTIVE").upper() == "ACTIVE"


def _plan(
    customers: dict[str, Cin7Customer],
    candidates: list[dict[str, Any]],
    linked_elsewhere: set[str],
    result: ContactResult,
    reserved: dict[str, tuple[str, str]] | None = None,
) -> list[_Plan]:
    """Decide each customer's contact.

    `reserved` maps contact names (normalised) that creates with an unknown outcome sent to (customer,
    name as sent): Xero may hold such a contact for that customer already. That customer sends the
    same name again, so Xero finds what the lost call made; nobody else takes or adopts the name.
    """
    plans: list[_Plan] = []
    reserved = reserved or {}
    taken_names = {normalise_name(str(c.get("Name") or "")) for c in candidates if _active(c)}
    taken_names |= set(reserved)
    claimed: set[str] = set(linked_elsewhere)
    for customer_id in sorted(customers):
        customer = customers[customer_id]
        plan = _Plan(customer=customer)
        email = normalise_email(customer.primary_email)
        name_key = normalise_name(customer.name or "")
        own_reserved = next((name for key, (owner, name) in reserved.items() if owner == customer_id), None)
        # A contact with a name another customer's lost call sent may be that customer's.
        mine = [
            c
            for c in candidates
            if c.get("ContactNumber")
            or reserved.get(normalise_name(str(c.get("Name") or "")), (customer_id, ""))[0] == customer_id
        ]
        unclaimed = [
            c for c in mine if str(c.get("ContactID")) not in claimed and not (c.get("ContactNumber") or "").strip()
        ]
        by_number = next(
            (c for c in candidates if str(c.get("ContactNumber") or "").strip().lower() == customer_id), None
        )
        if by_number is not None and not _active(by_number):
            result.failures[customer_id] = SyncError(
                ErrorClass.VALIDATION,
                f"Xero contact {by_number.get('Name')!r} holds ContactNumber {customer_id} but is archived: "
                "restore it in Xero or clear its contact number",
                api="xero",
            )
            continue
        by_email = next(
            (c for c in unclaimed if _active(c) and email and normalise_email(c.get("EmailAddress")) == email), None
        )
        by_name = next(
            (c for c in unclaimed if _active(c) and name_key and normalise_name(str(c.get("Name") or "")) == name_key),
            None,
        )
        for contact, how in ((by_number, "adopted_number"), (by_email, "adopted_email"), (by_name, "adopted_name")):
            if contact is not None:
                plan.contact_id = str(contact["ContactID"])
                plan.linked_by = how
                plan.name = str(contact.get("Name") or customer.name)
                claimed.add(plan.contact_id)
                break
        else:
            plan.name = (customer.name or "").strip()
            if own_reserved is not None:
                plan.name = own_reserved
            elif name_key in taken_names:
                plan.name_attempt = 0
                plan.name = contact_name_variant(customer.name, customer_id, 0)
                plan.name_note = f"Xero already has an active contact named {customer.name.strip()!r}"
            taken_names.add(normalise_name(plan.name))
        plans.append(plan)
    return plans


def _source_hash(customer: Cin7Customer) -> str:
    return content_hash(customer.model_dump(mode="json"))


def ensure_contacts(
    ctx: TenantContext, customer_ids: Sequence[str], *, inline_allowed: Collection[str] = ()
) -> ContactResult:
    """Every customer's Xero ContactID: linked, adopted, created in one batch, or left to the invoice.

    A customer in `inline_allowed` (only new invoices need it) whose name is free in Xero is not
    created here: it comes back in `result.inline`, and the invoice names the contact.
    """
    result = ContactResult()
    inline_ok = {c.lower() for c in inline_allowed}
    ids = sorted({c.lower() for c in customer_ids if c})
    with ctx.sessions() as session:
        for link in session.scalars(
            select(ContactLink).where(ContactLink.tenant_id == ctx.tenant_pk, ContactLink.cin7_customer_id.in_(ids))
        ):
            result.contact_ids[link.cin7_customer_id] = link.xero_contact_id
    missing = [c for c in ids if c not in result.contact_ids]
    if not missing:
        return result
    customers = _load_customers(ctx, missing, result)
    if not customers:
        return result
    # The bulk cache, not a Xero search per batch; Xero's own uniqueness rules catch what it misses.
    refresh_contact_cache(ctx)
    candidates = _cached_candidates(ctx, list(customers.values()))
    linked_elsewhere = _linked_contact_ids(ctx, [str(c.get("ContactID")) for c in candidates])
    plans = _plan(customers, candidates, linked_elsewhere, result, _reserved_names(ctx))
    to_create: list[_Plan] = []
    for plan in plans:
        if plan.contact_id is not None:
            continue
        if plan.customer.id in inline_ok:
            try:
                # Checked now, so that a customer Xero would refuse later is a dead letter today.
                map_contact(plan.customer, name=plan.name)
            except MappingError as exc:
                result.failures[plan.customer.id] = SyncError(
                    ErrorClass.MAPPING, str(exc), messages=[p.message for p in exc.problems]
                )
                continue
            result.inline[plan.customer.id] = InlineContact(
                plan.customer.id, plan.name, plan.name_note, _source_hash(plan.customer)
            )
        else:
            to_create.append(plan)
    _create(ctx, to_create, result)
    _link(ctx, [p for p in plans if p.contact_id and p.customer.id not in result.failures], result)
    for customer_id in ids:
        if customer_id in result.inline:
            continue
        if customer_id not in result.contact_ids and customer_id not in result.failures:
            log.error(
                "contact for %s unresolved: plans=%r",
                customer_id,
                [(p.customer.id, p.contact_id, p.linked_by, p.name) for p in plans],
            )
            result.failures[customer_id] = SyncError(
                ErrorClass.TRANSIENT, f"no Xero contact could be resolved for customer {customer_id}", api="xero"
            )
    return result


def _reserved_names(ctx: TenantContext) -> dict[str, tuple[str, str]]:
    """Contact names sent by creates whose outcome is unknown, for customers still without a link:
    normalised name -> (customer, name as sent)."""
    with ctx.sessions() as session:
        rows = session.execute(
            select(SyncDocument.inline_contact_name, SyncDocument.customer_id)
            .outerjoin(
                ContactLink,
                and_(
                    ContactLink.tenant_id == SyncDocument.tenant_id,
                    ContactLink.cin7_customer_id == SyncDocument.customer_id,
                ),
            )
            .where(
                SyncDocument.tenant_id == ctx.tenant_pk,
                SyncDocument.write_uncertain.is_(True),
                SyncDocument.inline_contact_name.is_not(None),
                ContactLink.id.is_(None),
            )
            .order_by(SyncDocument.id)
        ).all()
    reserved: dict[str, tuple[str, str]] = {}
    for name, customer in rows:
        if customer and name:
            reserved.setdefault(normalise_name(str(name)), (str(customer), str(name)))
    return reserved


def _linked_contact_ids(ctx: TenantContext, contact_ids: Sequence[str]) -> set[str]:
    """Xero contacts the ledger already links to some customer (never adopted by another)."""
    with ctx.sessions() as session:
        return set(
            session.scalars(
                select(ContactLink.xero_contact_id).where(
                    ContactLink.tenant_id == ctx.tenant_pk, ContactLink.xero_contact_id.in_(list(contact_ids))
                )
            )
        )


def _create(ctx: TenantContext, plans: list[_Plan], result: ContactResult) -> list[_Plan]:
    """Create contacts in batches; return those that turned out to exist (adopted) instead."""
    pending = list(plans)
    adopted: list[_Plan] = []
    for _ in range(MAX_NAME_ATTEMPTS):
        if not pending:
            return adopted
        body: list[dict[str, Any]] = []
        sendable: list[_Plan] = []
        for plan in pending:
            try:
                payload = map_contact(plan.customer, name=plan.name).to_json()
                if plan.without_currency:
                    payload.pop("DefaultCurrency", None)
                body.append(payload)
                sendable.append(plan)
            except MappingError as exc:
                result.failures[plan.customer.id] = SyncError(
                    ErrorClass.MAPPING, str(exc), messages=[p.message for p in exc.problems]
                )
        if not body:
            return adopted
        elements = ctx.xero.create_contacts(body, idempotency_key(ctx.tenant_key, "PUT /Contacts", body))
        retry: list[_Plan] = []
        lost_race: list[_Plan] = []
        name_taken: list[_Plan] = []
        for plan, element in zip(sendable, elements, strict=False):
            if element.ok:
                plan.contact_id = str(element.data.get("ContactID"))
                continue
            text = " ".join(element.messages).lower()
            if "currency" in text and not plan.without_currency:
                plan.without_currency = True
                retry.append(plan)
            elif "contact number" in text or "contactnumber" in text:
                lost_race.append(plan)  # another worker created this customer's contact just now
            elif ("name" in text and "unique" in text) or "already assigned" in text:
                name_taken.append(plan)
            else:
                result.failures[plan.customer.id] = SyncError(
                    ErrorClass.VALIDATION, "; ".join(element.messages), api="xero", messages=element.messages
                )
        cache_contacts(ctx, [element.data for element in elements if element.ok])
        if name_taken:
            # A contact newer than our cache holds the name: search Xero for it, adopt it when it is
            # this customer's by the usual order, otherwise take the next readable variant.
            found = _lookup(ctx, [p.customer for p in name_taken])
            cache_contacts(ctx, found)
            claimed = _linked_contact_ids(ctx, [str(c.get("ContactID")) for c in found])
            for plan in name_taken:
                again = _plan({plan.customer.id: plan.customer}, found, claimed, result, _reserved_names(ctx))
                if again and again[0].contact_id is not None:
                    plan.contact_id, plan.linked_by = again[0].contact_id, again[0].linked_by
                    plan.name = again[0].name
                    adopted.append(plan)
                elif plan.customer.id not in result.failures:
                    plan.name_attempt += 1
                    plan.name = contact_name_variant(plan.customer.name, plan.customer.id, plan.name_attempt)
                    plan.name_note = "Xero already has an active contact with this customer's name"
                    retry.append(plan)
        if lost_race:
            found = _lookup(ctx, [p.customer for p in lost_race])
            cache_contacts(ctx, found)
            for plan in lost_race:
                match = next((c for c in found if str(c.get("ContactNumber") or "").lower() == plan.customer.id), None)
                if match is not None:
                    plan.contact_id = str(match["ContactID"])
                    plan.linked_by = "adopted_number"
                    plan.name = str(match.get("Name") or plan.name)
                else:
                    retry.append(plan)
        pending = retry
    for plan in pending:
        result.failures[plan.customer.id] = SyncError(
            ErrorClass.VALIDATION, f"could not find a unique Xero name for {plan.customer.name!r}", api="xero"
        )
    return adopted


def _link(ctx: TenantContext, plans: list[_Plan], result: ContactResult) -> None:
    now = utcnow()
    rows = []
    for p in plans:
        source_hash = _source_hash(p.customer)
        # Created with every detail, or found by our ContactNumber: nothing to push. Adopted by e-mail
        # or name: our ContactNumber follows with the next push.
        pushed = p.linked_by in ("created", "adopted_number")
        rows.append(
            {
                "tenant_id": ctx.tenant_pk,
                "cin7_customer_id": p.customer.id,
                "xero_contact_id": p.contact_id,
                "xero_name": p.name[:255],
                "linked_by": p.linked_by,
                "name_note": p.name_note,
                "source_hash": source_hash,
                "pushed_at": now if pushed else None,
                "pushed_source_hash": source_hash if pushed else None,
                "created_at": now,
                "updated_at": now,
            }
        )
    _insert_links(ctx, rows, result)


def _insert_links(ctx: TenantContext, rows: list[dict[str, Any]], result: ContactResult) -> None:
    if not rows:
        return
    with ctx.sessions() as session, session.begin():
        insert_ignore(session, ContactLink, rows, ["tenant_id", "cin7_customer_id"])
        # Re-read: if another worker linked the same customer first, its link wins everywhere.
        for link in session.scalars(
            select(ContactLink).where(
                ContactLink.tenant_id == ctx.tenant_pk,
                ContactLink.cin7_customer_id.in_([row["cin7_customer_id"] for row in rows]),
            )
        ):
            result.contact_ids[link.cin7_customer_id] = link.xero_contact_id


def link_inline(ctx: TenantContext, created: Sequence[tuple[InlineContact, dict[str, Any]]]) -> dict[str, str]:
    """Link customers whose contact an invoice created (or found) by name; returns their ContactIDs.

    `created` pairs each inline contact with the Contact Xero returned on the invoice. The link has
    nothing pushed yet: ContactNumber and the details follow with `push_contacts`.
    """
    now = utcnow()
    rows = [
        {
            "tenant_id": ctx.tenant_pk,
            "cin7_customer_id": inline.customer_id,
            "xero_contact_id": str(contact["ContactID"]),
            "xero_name": str(contact.get("Name") or inline.name)[:255],
            "linked_by": "created_inline",
            "name_note": inline.name_note,
            "source_hash": inline.source_hash,
            "created_at": now,
            "updated_at": now,
        }
        for inline, contact in created
        if contact.get("ContactID")
    ]
    for row in rows:
        log.info(
            "customer %s linked to Xero contact %s (%r)",
            row["cin7_customer_id"],
            row["xero_contact_id"],
            row["xero_name"],
        )
    result = ContactResult()
    _insert_links(ctx, rows, result)
    cache_contacts(
        ctx, [{**contact, "ContactStatus": contact.get("ContactStatus") or "ACTIVE"} for _, contact in created]
    )
    return result.contact_ids


# --- pushes: what an invoice could not carry ---------------------------------------------------------

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


def _push_join() -> Any:
    return and_(
        CustomerRecord.tenant_id == ContactLink.tenant_id, CustomerRecord.customer_id == ContactLink.cin7_customer_id
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
            .join(CustomerRecord, _push_join())
            .where(_push_filter(ctx))
        ).one()
    if not count or oldest is None:
        return 0, 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), max(0.0, (utcnow() - oldest).total_seconds())


def _push_name(link: ContactLink, customer: Cin7Customer, taken: set[str]) -> str:
    """The name to send: Cin7's when it changed and is free in Xero, else the one Xero has."""
    wanted = (customer.name or "").strip()
    if wanted and normalise_name(wanted) != normalise_name(link.xero_name) and normalise_name(wanted) not in taken:
        return wanted
    return link.xero_name


def push_contacts(ctx: TenantContext, *, limit: int = PUSH_BATCH) -> PushOutcome:
    """Send one batch of contact details and ContactNumbers Xero lacks from us (one POST /Contacts).

    Contacts we created get every detail, and again whenever Cin7 changes the customer; adopted
    contacts get our ContactNumber only. A rejected element keeps its reason on the link and raises
    one alert; it is tried again when the customer next changes in Cin7. A whole failed call raises
    SyncError and leaves every link as it was.
    """
    outcome = PushOutcome()
    with ctx.sessions() as session:
        rows = session.execute(
            select(ContactLink, CustomerRecord.snapshot, CustomerRecord.last_modified_on)
            .join(CustomerRecord, _push_join())
            .where(_push_filter(ctx))
            .order_by(ContactLink.id)
            .limit(limit)
        ).all()
    if not rows:
        return outcome
    customers: dict[int, Cin7Customer] = {}
    bad: dict[int, str] = {}
    for link, snapshot, _modified in rows:
        try:
            customers[link.id] = Cin7Customer.model_validate(snapshot)
        except ValidationError as exc:
            bad[link.id] = f"Cin7 customer {link.cin7_customer_id} does not parse: {exc}"
    names = [n for n in (normalise_name(c.name or "") for c in customers.values()) if n]
    with ctx.sessions() as session:
        taken = {
            str(row.name_key)
            for row in session.scalars(
                select(XeroContactCache).where(
                    XeroContactCache.tenant_id == ctx.tenant_pk, XeroContactCache.name_key.in_(names)
                )
            )
        }
    body: list[dict[str, Any]] = []
    sent: list[tuple[ContactLink, str]] = []
    unchanged: set[int] = set()
    for link, _snapshot, _modified in rows:
        customer = customers.get(link.id)
        if customer is None:
            continue
        source_hash = _source_hash(customer)
        if link.linked_by not in CREATED_KINDS:
            body.append({"ContactID": link.xero_contact_id, "ContactNumber": customer.id})
        elif link.pushed_at is not None and link.pushed_source_hash == source_hash:
            unchanged.add(link.id)
            continue
        else:
            try:
                payload = map_contact(customer, name=_push_name(link, customer, taken)).to_json()
            except MappingError as exc:
                bad[link.id] = "; ".join(p.message for p in exc.problems)
                continue
            body.append({**payload, "ContactID": link.xero_contact_id})
        sent.append((link, source_hash))
    try:
        elements = (
            ctx.xero.update_contacts(body, idempotency_key(ctx.tenant_key, "POST /Contacts", body)) if body else []
        )
    except SyncError as refused:
        if retryable(refused.error_class) or pauses_tenant(refused.error_class):
            raise
        # Refused as a whole, for good: every contact in the call keeps the reason and waits for its
        # customer's next change, rather than costing a call at every sweep and never settling.
        for link, _ in sent:
            bad[link.id] = f"Xero refused the contact update: {refused.message}"
        elements, sent = [], []
    retry_body: list[dict[str, Any]] = []
    retry_sent: list[tuple[ContactLink, str]] = []
    results: dict[int, tuple[str, dict[str, Any] | None, str | None]] = {}
    for (link, source_hash), payload, element in zip(sent, body, elements, strict=False):
        if element.ok:
            results[link.id] = (source_hash, element.data, None)
            continue
        text = " ".join(element.messages)
        lowered = text.lower()
        if "currency" in lowered and "DefaultCurrency" in payload:
            # Xero refuses a currency the organisation has not enabled; the rest is still wanted.
            retry_body.append({k: v for k, v in payload.items() if k != "DefaultCurrency"})
            retry_sent.append((link, source_hash))
        elif "name" in lowered and "unique" in lowered and payload.get("Name") != link.xero_name:
            retry_body.append({**payload, "Name": link.xero_name})
            retry_sent.append((link, source_hash))
        else:
            results[link.id] = (source_hash, None, text)
    if retry_body:
        again = ctx.xero.update_contacts(retry_body, idempotency_key(ctx.tenant_key, "POST /Contacts", retry_body))
        for (link, source_hash), element in zip(retry_sent, again, strict=False):
            results[link.id] = (source_hash, element.data if element.ok else None, " ".join(element.messages) or None)
    now = utcnow()
    cache_contacts(ctx, [data for _, data, _ in results.values() if data is not None])
    with ctx.sessions() as session, session.begin():
        for link, _snapshot, modified in rows:
            row = session.get(ContactLink, link.id)
            if row is None:
                continue
            if link.id not in bad and link.id not in results and link.id not in unchanged:
                continue  # no element came back for it: try again next round
            row.pushed_modified_on = modified
            if link.id in bad:
                row.pushed_at, row.push_error = now, bad[link.id][:4000]
                outcome.failed += 1
                alerts.note_problem(session, ctx.tenant_pk, ErrorClass.VALIDATION, f"contact push: {bad[link.id]}")
                continue
            if link.id in unchanged:
                row.pushed_at = now
                outcome.unchanged += 1
                continue
            source_hash, data, error = results[link.id]
            row.pushed_at, row.pushed_source_hash = now, source_hash
            if data is not None:
                row.push_error = None
                row.xero_name = str(data.get("Name") or row.xero_name)[:255]
                outcome.pushed += 1
            else:
                row.push_error = (error or "Xero returned no result for this contact")[:4000]
                outcome.failed += 1
                log.warning(
                    "contact %s for customer %s not updated: %s", row.xero_contact_id, row.cin7_customer_id, error
                )
                alerts.note_problem(session, ctx.tenant_pk, ErrorClass.VALIDATION, f"contact push: {row.push_error}")
    return outcome

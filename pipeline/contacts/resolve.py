"""Every Cin7 customer a Xero contact: linked, adopted, created in one batch, or left to its invoice.

Order of resolution for a customer: the ledger link; a Xero contact whose ContactNumber is the Cin7
CustomerID; an active contact with the same e-mail (case-insensitive) and no ContactNumber; an active
contact with the same name and no ContactNumber. Archived contacts are never adopted. Candidates come
from the contact cache; a contact made in Xero since the last read is still found, because Xero refuses
a second contact with its name and that refusal triggers a targeted search and the usual adoption order.
A name another customer holds is replaced by a readable variant, and names sent by creates whose
outcome is unknown stay reserved for their customer.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from mappings import (
    MappingError,
    contact_name_variant,
    normalise_name,
)
from pipeline.contacts.cache import cache_contacts, cached_candidates, refresh_contact_cache
from pipeline.contacts.inline import InlineContact
from pipeline.contacts.links import customer_source_hash, insert_links, link_party_join, reserved_names
from pipeline.contacts.matching import ContactResult, Identity, Plan, active, plan_contacts
from pipeline.contacts.parties import (
    Party,
    contact_payload,
    mapped_contact,
    parse_party,
    party_abn,
    party_domains,
    party_noun,
)
from pipeline.context import TenantContext
from pipeline.discovery.poll import store_customers
from pipeline.errors import ErrorClass, SyncError
from pipeline.idempotency import idempotency_key
from pipeline.ledger.models import ContactLink, CustomerRecord, PartyKind, utcnow
from pipeline.policy import pauses_tenant, retryable
from pipeline.xero.client import quotable, xero_string_literal

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 10
MAX_NAME_ATTEMPTS = 4


def _load_customers(
    ctx: TenantContext, ids: Sequence[str], result: ContactResult, kind: PartyKind = PartyKind.CUSTOMER
) -> dict[str, Party]:
    """The parties' snapshots (read from Cin7 once, and kept, when the bulk poll has not got them)."""
    with ctx.sessions() as session:
        rows = {
            r.customer_id: (dict(r.snapshot), r.kind)
            for r in session.scalars(
                select(CustomerRecord).where(
                    CustomerRecord.tenant_id == ctx.tenant_pk, CustomerRecord.customer_id.in_(list(ids))
                )
            )
        }
    for customer_id in ids:
        if customer_id not in rows:
            fetched = (
                ctx.cin7.get_supplier(customer_id) if kind is PartyKind.SUPPLIER else ctx.cin7.get_customer(customer_id)
            )
            if fetched is None:
                result.failures[customer_id] = SyncError(
                    ErrorClass.MAPPING, f"Cin7 {kind.value} {customer_id} not found", api="cin7"
                )
                continue
            with ctx.sessions() as session, session.begin():
                store_customers(session, ctx.tenant_pk, [fetched], kind=kind)
            rows[customer_id] = (fetched, kind.value)
    parties: dict[str, Party] = {}
    for customer_id, (row, row_kind) in rows.items():
        try:
            parties[customer_id] = parse_party(row, row_kind)
        except ValidationError as exc:
            result.failures[customer_id] = SyncError(
                ErrorClass.MAPPING, f"Cin7 {row_kind} {customer_id} does not parse: {exc}", api="cin7"
            )
    return parties


def _lookup(ctx: TenantContext, customers: Sequence[Party], result: ContactResult) -> list[dict[str, Any]]:
    """Candidate Xero contacts for these customers: one filtered read per chunk, archived included.

    Text Xero's `where` cannot quote (a name with a double quote) is searched with searchTerm and
    compared exactly. A chunk Xero refuses is asked again customer by customer, so that a refusal
    fails that customer's invoices only (`result.failures`), never the whole batch.
    """
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(customers), LOOKUP_CHUNK):
        chunk = customers[start : start + LOOKUP_CHUNK]
        try:
            contacts = _find(ctx, chunk)
        except SyncError as refused:
            if retryable(refused.error_class) or pauses_tenant(refused.error_class):
                raise
            contacts = _find_each(ctx, chunk, result)
        for contact in contacts:
            found[str(contact.get("ContactID"))] = contact
    return list(found.values())


def _find_each(ctx: TenantContext, customers: Sequence[Party], result: ContactResult) -> list[dict[str, Any]]:
    contacts: list[dict[str, Any]] = []
    for customer in customers:
        try:
            contacts.extend(_find(ctx, [customer]))
        except SyncError as refused:
            if retryable(refused.error_class) or pauses_tenant(refused.error_class):
                raise
            result.failures[customer.id] = SyncError(
                ErrorClass.VALIDATION,
                f"Xero refused the contact lookup for {party_noun(customer)} {customer.id}: {refused.message}",
                api="xero",
            )
    return contacts


def _find(ctx: TenantContext, customers: Sequence[Party]) -> list[dict[str, Any]]:
    clauses: list[str] = []
    unquotable: list[str] = []
    for customer in customers:
        if quotable(customer.id):
            clauses.append(f"ContactNumber=={xero_string_literal(customer.id)}")
        email = (customer.primary_email or "").strip()
        if email and quotable(email):
            clauses.append(f"EmailAddress=={xero_string_literal(email)}")
        name = (customer.name or "").strip()
        if name and quotable(name):
            clauses.append(f"Name=={xero_string_literal(name)}")
        elif name:
            unquotable.append(name)
    contacts = ctx.xero.find_contacts(" OR ".join(clauses)) if clauses else []
    for name in unquotable:
        wanted = normalise_name(name)
        contacts.extend(c for c in ctx.xero.search_contacts(name) if normalise_name(str(c.get("Name") or "")) == wanted)
    return contacts


def ensure_contacts(
    ctx: TenantContext,
    customer_ids: Sequence[str],
    *,
    inline_allowed: Collection[str] = (),
    kind: PartyKind = PartyKind.CUSTOMER,
) -> ContactResult:
    """Every customer's (or supplier's) Xero ContactID: linked, adopted, created in one batch, or left
    to the invoice.

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
    customers = _load_customers(ctx, missing, result, kind)
    if not customers:
        return result
    abns = {c.id: party_abn(c) for c in customers.values()}
    domains = {c.id: party_domains(c, ctx.rules) for c in customers.values()}
    # The bulk cache, not a Xero search per batch; Xero's own uniqueness rules catch what it misses.
    refresh_contact_cache(ctx)
    candidates = cached_candidates(
        ctx,
        list(customers.values()),
        abns=[a for a in abns.values() if a],
        domains=sorted({d for ds in domains.values() for d in ds}),
    )
    holders = _holders(ctx, [str(c.get("ContactID")) for c in candidates])
    identity = Identity(abns=abns, domains=domains, holders=holders)
    merged = _merge_by_ledger_abn(ctx, customers, identity, candidates, kind)
    plans = merged + plan_contacts(
        {k: v for k, v in customers.items() if k not in {p.customer.id for p in merged}},
        candidates,
        set(holders),
        result,
        reserved_names(ctx),
        identity,
    )
    to_create: list[Plan] = []
    for plan in plans:
        if plan.contact_id is not None:
            continue
        if plan.customer.id in inline_ok:
            try:
                # Checked now, so that a customer Xero would refuse later is a dead letter today.
                contact_payload(plan.customer, plan.name)
            except MappingError as exc:
                result.failures[plan.customer.id] = SyncError(
                    ErrorClass.MAPPING, str(exc), messages=[p.message for p in exc.problems]
                )
                continue
            result.inline[plan.customer.id] = InlineContact(
                plan.customer.id, plan.name, plan.name_note, customer_source_hash(plan.customer)
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
                ErrorClass.TRANSIENT, f"no Xero contact could be resolved for {kind.value} {customer_id}", api="xero"
            )
    return result


def _merge_by_ledger_abn(
    ctx: TenantContext,
    parties: dict[str, Party],
    identity: Identity,
    candidates: list[dict[str, Any]],
    kind: PartyKind,
) -> list[Plan]:
    """Parties whose ABN a party of the other kind has, already linked: they share its contact.

    Xero may not show the ABN yet (a customer's contact made by its first invoice has only a name), so
    the ledger's own record of the other side decides; an archived contact is never joined.
    """
    abns = {abn: party_id for party_id, abn in identity.abns.items() if abn}
    if not abns:
        return []
    with ctx.sessions() as session:
        rows = session.execute(
            select(CustomerRecord.tax_key, ContactLink.xero_contact_id, ContactLink.xero_name)
            .join(ContactLink, link_party_join())
            .where(
                CustomerRecord.tenant_id == ctx.tenant_pk,
                CustomerRecord.kind != kind.value,
                CustomerRecord.tax_key.in_(list(abns)),
            )
        ).all()
    archived = {str(c.get("ContactID")) for c in candidates if not active(c)}
    plans: list[Plan] = []
    for tax_key, contact_id, name in rows:
        party_id = abns.pop(str(tax_key), None)
        if party_id is None or str(contact_id) in archived:
            continue
        plans.append(
            Plan(customer=parties[party_id], contact_id=str(contact_id), linked_by="merged_abn", name=str(name))
        )
    return plans


def _holders(ctx: TenantContext, contact_ids: Sequence[str]) -> dict[str, set[str]]:
    """Which kinds of party (customer, supplier) the ledger links each of these Xero contacts to."""
    with ctx.sessions() as session:
        rows = session.execute(
            select(ContactLink.xero_contact_id, CustomerRecord.kind)
            .outerjoin(CustomerRecord, link_party_join())
            .where(ContactLink.tenant_id == ctx.tenant_pk, ContactLink.xero_contact_id.in_(list(contact_ids)))
        ).all()
    holders: dict[str, set[str]] = {}
    for contact_id, kind in rows:
        holders.setdefault(str(contact_id), set()).add(str(kind or PartyKind.CUSTOMER.value))
    return holders


def _create(ctx: TenantContext, plans: list[Plan], result: ContactResult) -> list[Plan]:
    """Create contacts in batches; return those that turned out to exist (adopted) instead."""
    pending = list(plans)
    adopted: list[Plan] = []
    for _ in range(MAX_NAME_ATTEMPTS):
        if not pending:
            return adopted
        body, sendable = _create_body(pending, result)
        if not body:
            return adopted
        elements = ctx.xero.create_contacts(body, idempotency_key(ctx.tenant_key, "PUT /Contacts", body))
        retry, lost_race, name_taken = _sort_refusals(sendable, elements, result)
        cache_contacts(ctx, [element.data for element in elements if element.ok])
        if name_taken:
            _adopt_or_rename(ctx, name_taken, result, adopted, retry)
        if lost_race:
            _adopt_by_number(ctx, lost_race, retry, result)
        pending = retry
    for plan in pending:
        result.failures[plan.customer.id] = SyncError(
            ErrorClass.VALIDATION, f"could not find a unique Xero name for {plan.customer.name!r}", api="xero"
        )
    return adopted


def _create_body(pending: list[Plan], result: ContactResult) -> tuple[list[dict[str, Any]], list[Plan]]:
    body: list[dict[str, Any]] = []
    sendable: list[Plan] = []
    for plan in pending:
        try:
            mapped = mapped_contact(plan.customer, plan.name)
            payload = mapped.payload.to_json()
            plan.left_out = list(mapped.left_out)
        except MappingError as exc:
            result.failures[plan.customer.id] = SyncError(
                ErrorClass.MAPPING, str(exc), messages=[p.message for p in exc.problems]
            )
            continue
        if plan.without_currency:
            payload.pop("DefaultCurrency", None)
        body.append(payload)
        sendable.append(plan)
    return body, sendable


def _sort_refusals(
    sendable: list[Plan], elements: Sequence[Any], result: ContactResult
) -> tuple[list[Plan], list[Plan], list[Plan]]:
    """Each created element's plan: linked, or (retry, lost the race for its number, name taken), or failed."""
    retry: list[Plan] = []
    lost_race: list[Plan] = []
    name_taken: list[Plan] = []
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
    return retry, lost_race, name_taken


def _adopt_or_rename(
    ctx: TenantContext, name_taken: list[Plan], result: ContactResult, adopted: list[Plan], retry: list[Plan]
) -> None:
    # A contact newer than our cache holds the name: search Xero for it, adopt it when it is this
    # customer's by the usual order, otherwise take the next readable variant.
    found = _lookup(ctx, [p.customer for p in name_taken], result)
    cache_contacts(ctx, found)
    claimed = set(_holders(ctx, [str(c.get("ContactID")) for c in found]))
    for plan in name_taken:
        again = plan_contacts({plan.customer.id: plan.customer}, found, claimed, result, reserved_names(ctx))
        if again and again[0].contact_id is not None:
            plan.contact_id, plan.linked_by = again[0].contact_id, again[0].linked_by
            plan.name = again[0].name
            adopted.append(plan)
        elif plan.customer.id not in result.failures:
            plan.name_attempt += 1
            plan.name = contact_name_variant(plan.customer.name, plan.customer.id, plan.name_attempt)
            plan.name_note = "Xero already has an active contact with this customer's name"
            retry.append(plan)


def _adopt_by_number(ctx: TenantContext, lost_race: list[Plan], retry: list[Plan], result: ContactResult) -> None:
    found = _lookup(ctx, [p.customer for p in lost_race], result)
    cache_contacts(ctx, found)
    for plan in lost_race:
        if plan.customer.id in result.failures:
            continue
        match = next((c for c in found if str(c.get("ContactNumber") or "").lower() == plan.customer.id), None)
        if match is None:
            retry.append(plan)
            continue
        plan.contact_id = str(match["ContactID"])
        plan.linked_by = "adopted_number"
        plan.name = str(match.get("Name") or plan.name)


def _link(ctx: TenantContext, plans: list[Plan], result: ContactResult) -> None:
    now = utcnow()
    rows = []
    for p in plans:
        source_hash = customer_source_hash(p.customer)
        # Created with every detail, or found by our ContactNumber: nothing to push. Adopted by e-mail
        # or name: our ContactNumber follows with the next push. Merged into the contact of the same
        # company's other side: that side's ContactNumber and details stay, so nothing is ever pushed.
        pushed = p.linked_by in ("created", "adopted_number", "merged_abn")
        rows.append(
            {
                "tenant_id": ctx.tenant_pk,
                "cin7_customer_id": p.customer.id,
                "xero_contact_id": p.contact_id,
                "xero_name": p.name[:255],
                "linked_by": p.linked_by,
                "name_note": p.name_note,
                "source_hash": source_hash,
                "people_left_out": p.left_out or None if p.linked_by == "created" else None,
                "pushed_at": now if pushed else None,
                "pushed_source_hash": source_hash if pushed else None,
                "created_at": now,
                "updated_at": now,
            }
        )
    insert_links(ctx, rows, result.contact_ids)

"""Creates: one PUT per batch, and the lookup that adopts what a lost answer already created.

PUT only creates, so a retried create can never become a second document; a create whose outcome
is unknown is looked up by number first and adopted when it is ours.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update

from mappings import (
    InvoiceAction,
    normalise_name,
)
from pipeline.contacts.inline import InlineContact, link_inline
from pipeline.contacts.matching import ContactResult
from pipeline.context import TenantContext
from pipeline.errors import ErrorClass
from pipeline.kinds import DocumentKind
from pipeline.ledger.models import (
    ContactLink,
    DocumentState,
    SyncDocument,
)
from pipeline.writer.batches import (
    contact_id_for,
    customer_of,
    send_in_chunks,
    with_contact,
    with_contact_name,
)
from pipeline.writer.outcomes import WriteOutcome, record_dead, record_synced_all

log = logging.getLogger(__name__)


def write_creates(
    ctx: TenantContext,
    kind: DocumentKind,
    token: str,
    docs: list[SyncDocument],
    contacts: ContactResult,
    outcome: WriteOutcome,
) -> None:
    """Create documents of one kind in as few calls as the request size allows; adopt duplicates of ours."""
    if not docs:
        return
    sendable: list[tuple[SyncDocument, dict[str, Any]]] = []
    for doc in docs:
        payload = doc.payload or {}
        contact_id = contact_id_for(payload, contacts.contact_ids)
        inline = contacts.inline.get(customer_of(payload) or "")
        if contact_id is not None:
            sendable.append((doc, with_contact(payload, contact_id)))
        else:
            assert inline is not None, "ensure_contacts returns every customer, inline or as a failure"
            sendable.append((doc, with_contact_name(payload, inline.name)))
    with ctx.sessions() as session, session.begin():
        # From here the outcome is unknown until we read the response. A contact name sent for a new
        # customer is kept with it: Xero may have created that contact even if we never hear so.
        for doc, payload in sendable:
            name = (payload.get("Contact") or {}).get("Name")
            doc.inline_contact_name = str(name)[:255] if name else None
            session.execute(
                update(SyncDocument)
                .where(SyncDocument.id == doc.id, SyncDocument.claim_token == token)
                .values(write_uncertain=True, inline_contact_name=doc.inline_contact_name)
                .execution_options(synchronize_session=False)
            )
    duplicates: list[tuple[SyncDocument, dict[str, Any]]] = []
    for sent in send_in_chunks(ctx, kind, sendable, "PUT", kind.create):
        landed: list[tuple[SyncDocument, dict[str, Any]]] = []
        for doc, payload, result in sent:
            if result is not None and result.ok:
                landed.append((doc, result.data))
            elif result is not None and any("must be unique" in m.lower() for m in result.messages):
                duplicates.append((doc, payload))
            else:
                messages = result.messages if result is not None else ["Xero returned no result for this element"]
                record_dead(ctx, doc, token, "write", ErrorClass.VALIDATION, messages, payload, outcome)
        _link_created_contacts(ctx, landed, contacts)
        record_synced_all(ctx, token, landed, outcome)
    if duplicates:
        # The number exists in Xero: ours from a lost response (adopt), or someone else's (dead letter).
        found = {
            kind.number(found) or "": found
            for found in kind.find_by_numbers(ctx.xero, [d.document_number or "" for d, _ in duplicates])
        }
        for doc, payload in duplicates:
            existing = found.get(doc.document_number or "")
            if existing is None or not _adopt_found(ctx, kind, token, doc, existing, contacts.contact_ids, outcome):
                record_dead(
                    ctx,
                    doc,
                    token,
                    "write",
                    ErrorClass.VALIDATION,
                    [
                        f"{kind.name.capitalize()} number {doc.document_number} already exists in Xero "
                        "for another contact"
                    ],
                    payload,
                    outcome,
                )


def _link_created_contacts(
    ctx: TenantContext, landed: Sequence[tuple[SyncDocument, dict[str, Any]]], contacts: ContactResult
) -> None:
    """Customers whose contact an invoice of this batch named: link them to the contact Xero used."""
    created: dict[str, tuple[InlineContact, dict[str, Any]]] = {}
    for doc, data in landed:
        inline = contacts.inline.get(customer_of(doc.payload or {}) or "")
        contact = data.get("Contact") or {}
        if inline is not None and contact.get("ContactID") and inline.customer_id not in created:
            created[inline.customer_id] = (inline, contact)
    if created:
        linked = link_inline(ctx, list(created.values()))
        contacts.contact_ids.update(linked)
        for customer_id in linked:
            contacts.inline.pop(customer_id, None)


def resolve_uncertain_creates(
    ctx: TenantContext, kind: DocumentKind, token: str, creates: list[SyncDocument], outcome: WriteOutcome
) -> list[SyncDocument]:
    """Look up creates whose earlier attempt may have reached Xero; adopt those that did.

    The idempotency key only covers six minutes; the ledger and this lookup cover the rest. A found
    invoice is ours when it is an ACCREC on the customer's linked contact or, for a customer whose
    contact that attempt named, on a contact with the very name it sent: the customer is then linked
    to that contact, as if the lost answer had arrived. Returns the creates still to send.
    """
    uncertain = [d for d in creates if d.write_uncertain and d.document_number]
    if not uncertain:
        return creates
    # Several per number for bills: Xero keeps their numbers unique per nothing.
    found: dict[str, list[dict[str, Any]]] = {}
    for existing in kind.find_by_numbers(ctx.xero, [d.document_number or "" for d in uncertain]):
        found.setdefault(kind.number(existing) or "", []).append(existing)
    if not found:
        return creates
    customer_ids = sorted({d.customer_id for d in uncertain if d.customer_id})
    with ctx.sessions() as session:
        links = {
            link.cin7_customer_id: link.xero_contact_id
            for link in session.scalars(
                select(ContactLink).where(
                    ContactLink.tenant_id == ctx.tenant_pk, ContactLink.cin7_customer_id.in_(customer_ids)
                )
            )
        }
    taken = _held_xero_ids(ctx, kind, [kind.xero_id(e) or "" for same in found.values() for e in same])
    remaining = list(creates)
    for doc in uncertain:
        for existing in found.get(doc.document_number or "", []):
            xero_id = kind.xero_id(existing)
            # Another row stands for that one already (a second bill of the supplier with its number).
            if xero_id in taken:
                continue
            if _adopt_found(ctx, kind, token, doc, existing, links, outcome):
                taken.add(xero_id)
                remaining.remove(doc)
                break
    return remaining


def _held_xero_ids(ctx: TenantContext, kind: DocumentKind, xero_ids: Sequence[str]) -> set[str | None]:
    """Which of these Xero documents a ledger row of the kind already holds."""
    with ctx.sessions() as session:
        return set(
            session.scalars(
                select(SyncDocument.xero_id).where(
                    SyncDocument.tenant_id == ctx.tenant_pk,
                    SyncDocument.kind == kind.name,
                    SyncDocument.xero_id.in_([x for x in xero_ids if x]),
                )
            )
        )


def _adopt_found(
    ctx: TenantContext,
    kind: DocumentKind,
    token: str,
    doc: SyncDocument,
    existing: dict[str, Any],
    links: dict[str, str],
    outcome: WriteOutcome,
) -> bool:
    """Adopt an invoice Xero already holds under our number, if it is ours.

    Ours means an ACCREC on the customer's linked contact or, for a customer whose contact the create
    named, on a contact with the very name it sent: the customer is then linked to that contact
    (`links` too), as if the lost answer had arrived.
    """
    customer_id = (doc.customer_id or "").lower()
    contact_id = links.get(customer_id)
    if contact_id is None:
        contact_id = _link_named_contact(ctx, doc, existing.get("Contact") or {})
        if contact_id is None:
            return False
        links[customer_id] = contact_id
    if not kind.adoptable(existing, contact_id):
        return False
    _adopt(ctx, token, doc, kind.xero_id(existing), str(existing.get("Status") or ""))
    return True


def _link_named_contact(ctx: TenantContext, doc: SyncDocument, contact: dict[str, Any]) -> str | None:
    """Link the document's customer to the contact its invoice is on, if that contact has the name
    the create sent and is no other customer's; its ContactID, or None.
    """
    if not (doc.customer_id and doc.inline_contact_name and contact.get("ContactID")):
        return None
    if normalise_name(str(contact.get("Name") or "")) != normalise_name(doc.inline_contact_name):
        return None
    with ctx.sessions() as session:
        holder = session.scalar(
            select(ContactLink.cin7_customer_id).where(
                ContactLink.tenant_id == ctx.tenant_pk,
                ContactLink.xero_contact_id == str(contact["ContactID"]),
            )
        )
    if holder is not None and holder != doc.customer_id.lower():
        # Xero put it on another customer's contact by name: not ours to adopt; it dead-letters for
        # a person as an invoice number that exists for another contact.
        log.error(
            "invoice %s is in Xero on the contact of customer %s, not of %s",
            doc.document_number,
            holder,
            doc.customer_id,
        )
        return None
    inline = InlineContact(doc.customer_id.lower(), doc.inline_contact_name, None, None)
    return link_inline(ctx, [(inline, contact)]).get(doc.customer_id.lower())


def _adopt(ctx: TenantContext, token: str, doc: SyncDocument, xero_id: str | None, xero_status: str) -> None:
    """Link a document Xero already holds; if its content differs from ours, update it next round."""
    with ctx.sessions() as session, session.begin():
        row = session.scalar(select(SyncDocument).where(SyncDocument.id == doc.id, SyncDocument.claim_token == token))
        if row is None:
            return
        row.xero_id = xero_id
        row.xero_status = xero_status
        row.write_uncertain = False
        row.claim_token = None
        row.action = InvoiceAction.UPDATE.value
        # Adopted content is unknown to us: send our version as an update (idempotent if equal).
        row.state = DocumentState.READY

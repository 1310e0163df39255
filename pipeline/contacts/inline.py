"""Contacts created inside invoices: a new customer's first invoice names the contact by Name alone,
which Xero finds or creates, and the link is taken from the invoice Xero returns (ContactNumber and the
details follow with `push_contacts`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.contacts.cache import cache_contacts
from pipeline.contacts.links import insert_links
from pipeline.context import TenantContext
from pipeline.ledger.models import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InlineContact:
    """A customer whose contact its invoice creates: Xero finds or creates the contact by this name."""

    customer_id: str
    name: str
    name_note: str | None
    # None when the customer is linked from an invoice found after a lost answer: the next push sends
    # every detail anyway.
    source_hash: str | None


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
    contact_ids: dict[str, str] = {}
    insert_links(ctx, rows, contact_ids)
    cache_contacts(
        ctx, [{**contact, "ContactStatus": contact.get("ContactStatus") or "ACTIVE"} for _, contact in created]
    )
    return contact_ids

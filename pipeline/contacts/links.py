"""The ledger's links from Cin7 customers to Xero contacts: writing them (the first writer wins) and the
hash of the customer a link records, which tells a push whether the customer changed since.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select

from mappings import Cin7Customer, Cin7Supplier, content_hash, normalise_name
from pipeline.context import TenantContext
from pipeline.ledger.models import ContactLink, CustomerRecord, SyncDocument
from pipeline.ledger.ops import insert_ignore


def link_party_join() -> Any:
    """The join of a link to its party's record (`ContactLink` -> `CustomerRecord`)."""
    return and_(
        CustomerRecord.tenant_id == ContactLink.tenant_id, CustomerRecord.customer_id == ContactLink.cin7_customer_id
    )


def customer_source_hash(customer: Cin7Customer | Cin7Supplier) -> str:
    """The hash of the customer (or supplier) as Cin7 has it, recorded on its link when made and when pushed."""
    return content_hash(customer.model_dump(mode="json"))


def insert_links(ctx: TenantContext, rows: list[dict[str, Any]], contact_ids: dict[str, str]) -> None:
    """Insert these links unless the customer has one; `contact_ids` gets each customer's ContactID."""
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
            contact_ids[link.cin7_customer_id] = link.xero_contact_id


def reserved_names(ctx: TenantContext) -> dict[str, tuple[str, str]]:
    """Contact names sent by creates whose outcome is unknown, for customers still without a link:
    normalised name -> (customer, name as sent).
    """
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

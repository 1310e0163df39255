"""The ledger's cache of Xero's contacts, so that resolving customers never costs a Xero search per order.

Read in full (1000 a page) on the first run, then with If-Modified-Since every few minutes, and updated
with every contact we create, adopt or update; `cached_candidates` gives the cached contacts that may be
a customer's by ContactNumber, e-mail or name.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select

from mappings import Cin7Customer, Cin7Supplier, abn_key, email_domain, normalise_email, normalise_name, website_domain
from pipeline.context import TenantContext
from pipeline.ledger.models import PollCursor, XeroContactCache, utcnow
from pipeline.ledger.ops import insert_ignore

CACHE_STREAM = "xero_contacts"
# Contacts changed in Xero by people are picked up this often (one paged, If-Modified-Since read).
CACHE_REFRESH = timedelta(minutes=5)


_KEYS = ("number_key", "email_key", "name_key", "tax_key", "domain_key", "website_key")
_KEPT = ("ContactID", "Name", "ContactNumber", "EmailAddress", "ContactStatus", "TaxNumber", "Website")


def _cache_keys(contact: dict[str, Any]) -> dict[str, Any]:
    number = str(contact.get("ContactNumber") or "").strip().lower() or None
    name = normalise_name(str(contact.get("Name") or "")) or None
    return {
        "number_key": number[:64] if number else None,
        "email_key": (normalise_email(contact.get("EmailAddress")) or "")[:255] or None,
        "name_key": name[:255] if name else None,
        "tax_key": abn_key(contact.get("TaxNumber")),
        "domain_key": (email_domain(contact.get("EmailAddress")) or "")[:255] or None,
        "website_key": (website_domain(contact.get("Website")) or "")[:255] or None,
    }


def cache_contacts(ctx: TenantContext, contacts: Sequence[dict[str, Any]]) -> None:
    """Remember contacts as Xero returned them (reads, creates, updates)."""
    fresh = {str(c["ContactID"]): c for c in contacts if c.get("ContactID")}
    if not fresh:
        return
    slim = {cid: {k: c.get(k) for k in _KEPT} for cid, c in fresh.items()}
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
                for key in _KEYS:
                    setattr(row, key, keys[key])
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


def cached_candidates(
    ctx: TenantContext,
    parties: Sequence[Cin7Customer | Cin7Supplier],
    *,
    abns: Sequence[str] = (),
    domains: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Cached contacts that may be these parties' by ContactNumber, e-mail, name, ABN or domain,
    archived included.
    """
    numbers = [c.id for c in parties]
    emails = [e for e in (normalise_email(c.primary_email) for c in parties) if e]
    names = [n for n in (normalise_name(c.name or "") for c in parties) if n]
    with ctx.sessions() as session:
        rows = session.scalars(
            select(XeroContactCache).where(
                XeroContactCache.tenant_id == ctx.tenant_pk,
                or_(
                    XeroContactCache.number_key.in_(numbers),
                    XeroContactCache.email_key.in_(emails),
                    XeroContactCache.name_key.in_(names),
                    XeroContactCache.tax_key.in_(list(abns)),
                    XeroContactCache.domain_key.in_(list(domains)),
                    XeroContactCache.website_key.in_(list(domains)),
                ),
            )
        )
        return [dict(row.contact) for row in rows]

"""Contact pushes that Xero refuses for good end with a reason on the link, not a pending push for ever."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from sqlalchemy import delete, select, update

import tasks.sync
from mappings import normalise_name
from pipeline.contacts.cache import cache_contacts
from pipeline.contacts.push import push_backlog, push_contacts
from pipeline.errors import ErrorClass, SyncError
from pipeline.ledger.models import ContactLink, CustomerRecord, SyncDocument, XeroContactCache
from tests.pipeline.inprocess import InProcess

pytestmark = pytest.mark.pipeline


def test_a_push_refused_as_a_whole_is_recorded_and_leaves_nothing_pending(
    inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = inproc.ctx
    for _, sale_id in inproc.messages("cin7xero.fetch_sale"):
        tasks.sync.fetch_sale.run(ctx.tenant_key, sale_id)
    tasks.sync.write_document.run(ctx.tenant_key, None)
    waiting, _ = push_backlog(ctx)
    assert waiting > 0, "new customers' contacts were created by their invoices and wait for details"

    def refuse(*_args: object, **_kwargs: object) -> object:
        raise SyncError(ErrorClass.VALIDATION, "A validation exception occurred", api="xero")

    monkeypatch.setattr(type(ctx.xero), "update_contacts", refuse)
    outcome = push_contacts(ctx)

    assert outcome.failed == waiting and outcome.pushed == 0
    assert push_backlog(ctx) == (0, 0.0)
    with ctx.sessions() as session:
        refused = [link for link in session.scalars(select(ContactLink)) if link.push_error]
    assert len(refused) == waiting
    assert all("A validation exception occurred" in (link.push_error or "") for link in refused)


def test_a_contact_is_not_renamed_to_a_name_another_customers_lost_create_sent(inproc: InProcess) -> None:
    ctx = inproc.ctx
    for _, sale_id in inproc.messages("cin7xero.fetch_sale"):
        tasks.sync.fetch_sale.run(ctx.tenant_key, sale_id)
    tasks.sync.write_document.run(ctx.tenant_key, None)
    push_contacts(ctx)
    with ctx.sessions() as session, session.begin():
        cached = Counter(str(c.name_key) for c in session.scalars(select(XeroContactCache)))
        customers = {c.customer_id: c for c in session.scalars(select(CustomerRecord))}
        # A contact we created whose customer's name no other contact in Xero has.
        link, cin7_name = next(
            (link, str(customers[link.cin7_customer_id].snapshot["Name"]).strip())
            for link in session.scalars(select(ContactLink).where(ContactLink.linked_by == "created_inline"))
            if sum(
                normalise_name(str(other.snapshot["Name"])) == normalise_name(link.xero_name)
                for other in customers.values()
            )
            == 1
            and cached[normalise_name(link.xero_name)] == 1
        )
        # This customer's contact carries a variant: its plain name was taken when it was made.
        variant = f"{cin7_name} (variant)"
        [renamed] = ctx.xero.update_contacts([{"ContactID": link.xero_contact_id, "Name": variant}], "k-rename-1")
        assert renamed.ok
        link.xero_name, link.pushed_at = variant, None
        contact_id = link.xero_contact_id
        # A namesake's first invoice went out naming the plain name, and its answer was lost.
        session.add(
            SyncDocument(
                tenant_id=ctx.tenant_pk,
                kind="invoice",
                sale_id=str(uuid.uuid4()),
                task_id=str(uuid.uuid4()),
                customer_id=str(uuid.uuid4()),
                write_uncertain=True,
                inline_contact_name=cin7_name,
                state="writing",
            )
        )

    cache_contacts(ctx, [renamed.data])  # the contact cache as a refresh would leave it
    push_contacts(ctx)

    # Renamed to the plain name, this contact is what Xero would find for the namesake's retry.
    assert _xero_name(inproc, contact_id) == variant
    # Once nobody else may hold that name, the push gives the contact Cin7's name back.
    with ctx.sessions() as session, session.begin():
        session.execute(delete(SyncDocument).where(SyncDocument.write_uncertain.is_(True)))
        session.execute(update(ContactLink).where(ContactLink.xero_contact_id == contact_id).values(pushed_at=None))
    push_contacts(ctx)
    assert _xero_name(inproc, contact_id) == cin7_name


def _xero_name(inproc: InProcess, contact_id: str) -> str:
    return str(next(c["Name"] for c in inproc.xero.contacts() if c["ContactID"] == contact_id))

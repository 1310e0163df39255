"""Contact pushes that Xero refuses for good end with a reason on the link, not a pending push for ever."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import tasks.sync
from pipeline.contacts.push import push_backlog, push_contacts
from pipeline.errors import ErrorClass, SyncError
from pipeline.ledger.models import ContactLink
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

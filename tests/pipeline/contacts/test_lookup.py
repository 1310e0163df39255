"""Looking contacts up in Xero with hostile names: never a where Xero cannot parse, one refusal fails one customer."""

from __future__ import annotations

from typing import Any

import pytest

from mappings import Cin7Customer
from pipeline.contacts.matching import ContactResult
from pipeline.contacts.resolve import _lookup
from pipeline.errors import ErrorClass, SyncError
from tests.pipeline.inprocess import InProcess

pytestmark = pytest.mark.pipeline


def _customers(p: InProcess) -> list[Cin7Customer]:
    return [Cin7Customer.model_validate(row) for row in p.dataset.customers]


def test_a_name_with_a_double_quote_is_searched_not_quoted(inproc: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    customers = _customers(inproc)
    quoted = next(c for c in customers if '"' in (c.name or ""))
    wheres: list[str] = []
    find = type(inproc.ctx.xero).find_contacts

    def spy(client: Any, where: str) -> list[dict[str, Any]]:
        wheres.append(where)
        return find(client, where)

    monkeypatch.setattr(type(inproc.ctx.xero), "find_contacts", spy)
    inproc.ctx.xero.create_contacts([{"Name": quoted.name.strip()}], "k-quoted-contact")
    result = ContactResult()
    found = _lookup(inproc.ctx, customers, result)

    assert result.failures == {}
    assert wheres and not any('\\"' in where or quoted.name.strip() in where for where in wheres)
    assert quoted.name.strip() in {str(c.get("Name")) for c in found}


def test_a_lookup_xero_refuses_fails_that_customer_only(inproc: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    customers = _customers(inproc)
    bad = customers[1]
    find = type(inproc.ctx.xero).find_contacts

    def refuse_one(client: Any, where: str) -> list[dict[str, Any]]:
        if bad.id in where:
            raise SyncError(ErrorClass.VALIDATION, "Syntax error", api="xero", status=400)
        return find(client, where)

    monkeypatch.setattr(type(inproc.ctx.xero), "find_contacts", refuse_one)
    result = ContactResult()
    found = _lookup(inproc.ctx, customers, result)

    assert set(result.failures) == {bad.id}
    assert "Syntax error" in result.failures[bad.id].message
    # The others' lookups still ran: every other customer's seeded contact (by name or e-mail) came back.
    seeded = {str(c.get("Name") or "").strip().lower() for c in inproc.dataset.xero_contacts}
    others = {(c.name or "").strip().lower() for c in customers if c.id != bad.id} & seeded
    assert others
    assert others <= {str(c.get("Name") or "").strip().lower() for c in found}


def test_a_transient_refusal_is_raised_for_the_task_to_retry(
    inproc: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    def outage(client: Any, where: str) -> list[dict[str, Any]]:
        raise SyncError(ErrorClass.TRANSIENT, "Xero HTTP 503", api="xero", status=503)

    monkeypatch.setattr(type(inproc.ctx.xero), "find_contacts", outage)
    with pytest.raises(SyncError):
        _lookup(inproc.ctx, _customers(inproc), ContactResult())

"""New customers' contacts are created by their invoices; numbers and details follow in batches."""

from __future__ import annotations

import copy
import json
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mappings import Cin7Customer, normalise_email
from pipeline.ledger.models import ContactLink
from pipeline.standins.generator import format_timestamp
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline


def _links(p: Pipeline) -> list[ContactLink]:
    with p.ctx.sessions() as session:
        return list(session.scalars(select(ContactLink)))


def _spy_on_contact_writes(p: Pipeline) -> list[tuple[str, int]]:
    """(method, element count) of every /Contacts write the stand-in handles."""
    writes: list[tuple[str, int]] = []
    original = p.xero._write_contacts

    def recording(request: Any) -> Any:
        try:
            elements = len(json.loads(request.body or b"{}").get("Contacts") or [])
        except (ValueError, AttributeError):
            elements = 0
        writes.append((request.method, elements))
        return original(request)

    p.xero._write_contacts = recording  # type: ignore[method-assign]
    return writes


def test_new_customers_cost_no_contact_call_of_their_own_and_end_up_numbered_with_details(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(sales=90, seed=31)
    writes = _spy_on_contact_writes(p)

    p.poll_and_wait()

    verification = p.verify()
    # verify() also checks that every invoice sits on the contact numbered with its Cin7 customer.
    assert verification.ok, verification.problems
    links = _links(p)
    inline = [link for link in links if link.linked_by == "created_inline"]
    created = [link for link in links if link.linked_by == "created"]
    adopted = [link for link in links if link.linked_by in ("adopted_email", "adopted_name")]
    assert len(inline) >= 10, [link.linked_by for link in links]
    # PUT /Contacts only for customers whose name Xero already gives to someone else.
    assert all(link.name_note for link in created), [(link.xero_name, link.name_note) for link in created]
    assert sum(n for method, n in writes if method == "PUT") == len(created)
    # Numbers and details went out afterwards, 50 to a call.
    pushed = sum(n for method, n in writes if method == "POST")
    assert pushed >= len(inline) + len(adopted)
    assert len([w for w in writes if w[0] == "POST"]) <= math.ceil(pushed / 50) + 2, writes
    assert all(link.pushed_at is not None and link.push_error is None for link in links)

    xero_contacts = {c["ContactID"]: c for c in p.xero.contacts()}
    customers = {c["ID"].lower(): c for c in p.dataset.customers}
    for link in inline:
        contact = xero_contacts[link.xero_contact_id]
        customer = customers[link.cin7_customer_id]
        assert contact["ContactNumber"].lower() == link.cin7_customer_id
        assert contact["Name"] == link.xero_name
        email = normalise_email(Cin7Customer.model_validate(customer).primary_email)
        if email:
            assert normalise_email(contact.get("EmailAddress")) == email, (contact, customer)
    for link in adopted:
        assert xero_contacts[link.xero_contact_id]["ContactNumber"].lower() == link.cin7_customer_id


def test_a_customer_edited_in_cin7_is_pushed_to_the_contact_we_created(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(sales=30, seed=33)
    p.poll_and_wait()
    link = next(link for link in _links(p) if link.linked_by in ("created_inline", "created"))
    customer = copy.deepcopy(next(c for c in p.dataset.customers if c["ID"].lower() == link.cin7_customer_id))
    customer["Name"] = f"{customer['Name']} Renamed"
    customer["LastModifiedOn"] = format_timestamp(datetime.now(UTC) + timedelta(seconds=1))
    p.cin7.put_customer(customer)

    p.poll_and_wait()

    contact = next(c for c in p.xero.contacts() if c["ContactID"] == link.xero_contact_id)
    assert contact["Name"] == customer["Name"]
    assert contact["ContactNumber"].lower() == link.cin7_customer_id
    refreshed = next(row for row in _links(p) if row.id == link.id)
    assert refreshed.xero_name == customer["Name"] and refreshed.push_error is None


def test_a_lost_response_to_a_batch_that_created_contacts_links_them_once(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(sales=40, seed=35)
    # The first write is the first invoice batch: it creates new customers' contacts by name, and
    # its answer never arrives.
    p.xero.set_faults(drop_response_after_commit_next=1)

    p.poll_and_wait()

    assert p.xero.stats()["dropped_responses"] == 1
    verification = p.verify()
    assert verification.ok, verification.problems
    names = [c["Name"].casefold() for c in p.xero.contacts() if c["ContactStatus"] == "ACTIVE"]
    assert len(names) == len(set(names))
    links = _links(p)
    assert any(link.linked_by == "created_inline" for link in links)
    by_contact: dict[str, list[str]] = {}
    for link in links:
        by_contact.setdefault(link.xero_contact_id, []).append(link.cin7_customer_id)
    assert all(len(customers) == 1 for customers in by_contact.values()), by_contact


def _new_customer_with_sale(p: Pipeline, template: dict[str, Any], customer_id: str, number: str) -> None:
    """A customer Xero has never seen, named like `template`, and one sale of theirs."""
    now = datetime.now(UTC)
    customer = copy.deepcopy(template)
    customer["ID"] = customer_id
    customer["LastModifiedOn"] = format_timestamp(now)
    for contact in customer.get("Contacts") or []:
        contact["Email"] = f"{customer_id[:8]}@example.com"
    p.cin7.put_customer(customer)
    source = next(
        e for e in p.dataset.expectations if e.outcome == "synced" and len(p.cin7.sale(e.sale_id)["Invoices"]) == 1
    )
    sale = copy.deepcopy(p.cin7.sale(source.sale_id))
    sale["ID"] = str(uuid.uuid4())
    sale["CustomerID"] = customer_id
    sale["Customer"] = customer["Name"]
    sale["LastModifiedOn"] = format_timestamp(now)
    sale["Invoices"][0]["TaskID"] = str(uuid.uuid4())
    sale["Invoices"][0]["InvoiceNumber"] = number
    sale["Order"]["SaleOrderNumber"] = f"SO-{number}"
    p.cin7.put_sale(sale)


def test_a_lost_answer_never_lets_a_namesake_take_the_contact_it_created(
    make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One invoice per call, so the two namesakes' invoices go in separate calls.
    monkeypatch.setenv("XERO_BATCH_SIZE", "1")
    p = make_pipeline(sales=12, seed=37, xero={"idempotency_ttl_seconds": 0.5})
    p.poll_and_wait()
    template = copy.deepcopy(p.dataset.customers[0])
    template["Name"] = "Twin Traders Pty Ltd"
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    _new_customer_with_sale(p, template, first, "INV-TWIN-1")
    _new_customer_with_sale(p, template, second, "INV-TWIN-2")
    # The first of the two invoices creates "Twin Traders Pty Ltd" in Xero; its answer is lost, and by
    # the retry the idempotency key has expired. The namesake's invoice must not land on that contact.
    p.xero.set_faults(drop_response_after_commit_next=1)

    p.poll_and_wait()

    assert p.xero.stats()["dropped_responses"] == 1
    contacts = {c["ContactID"]: c for c in p.xero.contacts()}
    twins = [i for i in p.xero.invoices() if str(i["InvoiceNumber"]).startswith("INV-TWIN")]
    assert sorted(i["InvoiceNumber"] for i in twins) == ["INV-TWIN-1", "INV-TWIN-2"]
    owners = {i["InvoiceNumber"]: contacts[i["Contact"]["ContactID"]] for i in twins}
    assert owners["INV-TWIN-1"]["ContactNumber"].lower() == first
    assert owners["INV-TWIN-2"]["ContactNumber"].lower() == second
    assert owners["INV-TWIN-1"]["ContactID"] != owners["INV-TWIN-2"]["ContactID"]
    assert p.verify().ok

"""The poll over hostile Cin7 pages: bad rows become dead letters, a future stamp never blinds the watermark."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from pipeline.ledger.models import DeadLetter, DocumentState, PollCursor
from pipeline.operations.status import live_window
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline


def _put_row(p: Pipeline, row: dict[str, object], updated: str) -> None:
    requests.put(
        f"{p.cin7.url}/_standin/sale-rows", json={"row": row, "updated": updated}, timeout=5
    ).raise_for_status()


def test_a_page_with_bad_rows_and_a_future_row_syncs_every_good_sale(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(sales=30, seed=8)
    now = datetime.now(UTC)
    # A row without a SaleID, one whose stamp is not a date, one whose number the ledger cannot hold.
    _put_row(p, {"OrderNumber": "SO-NOID", "Updated": now.isoformat()}, now.isoformat())
    bad_stamp = str(uuid.uuid4())
    _put_row(p, {"SaleID": bad_stamp, "OrderNumber": "SO-BADDATE", "Updated": "31/31/2026"}, now.isoformat())
    too_long = str(uuid.uuid4())
    _put_row(p, {"SaleID": too_long, "OrderNumber": "SO-" + "9" * 80, "Updated": now.isoformat()}, now.isoformat())
    # A real sale last changed in 2099: it is synced, and the watermark stays at the present.
    good = next(e for e in p.dataset.expectations if e.outcome == "synced")
    future = copy.deepcopy(p.cin7.sale(good.sale_id))
    future.update({"ID": str(uuid.uuid4()), "LastModifiedOn": "2099-01-01T00:00:00Z"})
    future_number = "INV-FUTURE-1"
    future["Invoices"][0]["InvoiceNumber"] = future_number
    future["Invoices"][0]["TaskID"] = str(uuid.uuid4())
    p.cin7.put_sale(future)

    p.poll_and_wait()

    verification = p.verify()
    assert verification.ok, verification.problems
    assert future_number in {str(i["InvoiceNumber"]) for i in p.xero.invoices()}
    with p.ctx.sessions() as session:
        letters = {
            str(letter.sale_id): letter
            for letter in session.scalars(select(DeadLetter).where(DeadLetter.stage == "poll"))
        }
        watermark = session.scalar(select(PollCursor.watermark).where(PollCursor.stream == "sales"))
    assert watermark is not None and watermark <= datetime.now(UTC)
    assert " ".join(letters[bad_stamp].messages).count("Updated") == 1
    assert "31/31/2026" in " ".join(letters[bad_stamp].messages)
    assert "OrderNumber: 83 characters, more than the ledger's 64" in " ".join(letters[too_long].messages)
    no_id = next(letter for key, letter in letters.items() if key.startswith("row:"))
    assert no_id.document_number == "SO-NOID" and "SaleID" in " ".join(no_id.messages)
    assert len(letters) == 3

    # The next poll reads the same rows again (the overlap): the letters are updated, not repeated.
    p.poll_and_wait()
    with p.ctx.sessions() as session:
        assert len(list(session.scalars(select(DeadLetter).where(DeadLetter.stage == "poll")))) == 3
    assert p.documents()[future_number].state == DocumentState.SYNCED
    window = live_window(p.ctx)
    assert window.covers_from is not None and window.covers_from < datetime.now(UTC) - timedelta(days=3000)
    assert "sales changed since" in window.describe()


def test_one_bad_customer_never_stops_sales_from_being_polled(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(sales=20, seed=9)
    broken = dict(p.dataset.customers[0])
    broken.update({"ID": str(uuid.uuid4()), "Name": "Broken Stamp Pty", "LastModifiedOn": "yesterday-ish"})
    p.cin7.put_customer(broken)

    p.poll_and_wait()

    verification = p.verify()
    assert verification.ok, verification.problems
    with p.ctx.sessions() as session:
        letter = session.scalar(select(DeadLetter).where(DeadLetter.kind == "customer"))
    assert letter is not None and letter.sale_id == broken["ID"].lower()
    assert "LastModifiedOn" in " ".join(letter.messages) and "yesterday-ish" in " ".join(letter.messages)

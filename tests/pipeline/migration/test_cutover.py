"""SYNC_START_DATE: the live sync handles documents dated on or after it, the migration the rest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time

import pytest
from sqlalchemy import select

from pipeline.ledger.models import DocumentState, PollCursor
from pipeline.operations.status import live_window
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline


def test_the_live_sync_leaves_documents_before_the_cutover_to_the_migration(
    make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_START_DATE", "2026-11-21")
    start = date(2026, 11, 21)
    p = make_pipeline(sales=60, seed=11)
    p.poll_and_wait()

    with p.ctx.sessions() as session:
        cursor = session.scalar(select(PollCursor).where(PollCursor.stream == "sales"))
        assert cursor is not None and cursor.covers_from is not None
        # The first poll read from the cutover, not from CIN7_INITIAL_LOOKBACK_DAYS.
        assert cursor.covers_from.date() == start and cursor.covers_from.time() == time.min
    in_xero = {str(i["InvoiceNumber"]) for i in p.xero.invoices()}
    rows = p.rows("invoice")
    before = [r for r in rows if r.document_date is not None and r.document_date < start]
    after = [
        r for r in rows if r.document_date is not None and r.document_date >= start and r.state == DocumentState.SYNCED
    ]
    assert before and after
    for row in before:
        assert row.state == DocumentState.IGNORED, (row.document_number, row.state)
        assert "before SYNC_START_DATE 2026-11-21" in (row.last_error or "")
        assert row.document_number not in in_xero
    assert {r.document_number for r in after} <= in_xero
    assert "SYNC_START_DATE 2026-11-21" in live_window(p.ctx).describe()
    # The same dates for what is applied to them: a payment is dated by its own day.
    for payment in p.rows("payment"):
        assert payment.document_date is not None
        assert (payment.state == DocumentState.IGNORED) == (payment.document_date < start)

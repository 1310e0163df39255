"""A migration never delays a new sale by more than one batch: writers take live documents first."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from pipeline.ledger.models import DocumentState, MigrationRun, SyncDocument
from pipeline.writer.claim import claim_batch

pytestmark = pytest.mark.pipeline


def test_live_documents_are_claimed_first_and_migrated_ones_oldest_first(inproc: Any) -> None:
    ctx = dataclasses.replace(inproc.ctx, settings=inproc.ctx.settings.model_copy(update={"xero_batch_size": 2}))
    with ctx.sessions() as session, session.begin():
        migration = MigrationRun(tenant_id=ctx.tenant_pk, window_from=date(2024, 1, 1), window_until=date(2024, 12, 31))
        session.add(migration)
        session.flush()
        # Ready in this order: two migrated (newest first), then a live one, then an older migrated one.
        for index, (migrated, day) in enumerate(
            [(True, date(2024, 9, 1)), (True, date(2024, 5, 1)), (False, date(2026, 12, 1)), (True, date(2024, 2, 1))]
        ):
            session.add(
                SyncDocument(
                    tenant_id=ctx.tenant_pk,
                    kind="invoice",
                    sale_id=f"sale-{index}",
                    task_id=f"task-{index}",
                    document_number=f"INV-ORDER-{index}",
                    state=DocumentState.READY,
                    migration_id=migration.id if migrated else None,
                    document_date=day,
                )
            )

    def numbers(ids: list[int]) -> list[str]:
        with ctx.sessions() as session:
            rows = session.scalars(select(SyncDocument).where(SyncDocument.id.in_(ids)))
            return sorted(str(row.document_number) for row in rows)

    _token, first = claim_batch(ctx, None)
    assert numbers(first) == ["INV-ORDER-2", "INV-ORDER-3"]  # the live one, then the oldest migrated
    _token, second = claim_batch(ctx, None)
    assert numbers(second) == ["INV-ORDER-0", "INV-ORDER-1"]

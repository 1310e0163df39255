"""Portable upserts for the ledger (PostgreSQL in production, SQLite for the demo), and waking documents.

A leaf module (models and SQLAlchemy only) so that any layer may use it without import cycles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from pipeline.ledger.models import DocumentState, SyncDocument, utcnow


def dialect_insert(session: Session, model: Any) -> Any:
    """An INSERT that supports ON CONFLICT on the session's backend."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(model)


def insert_ignore(session: Session, model: Any, rows: Sequence[dict[str, Any]], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: concurrent writers of the same natural key never clash."""
    if rows:
        session.execute(dialect_insert(session, model).values(list(rows)).on_conflict_do_nothing(index_elements=keys))


def wake_waiting(session: Session, tenant_id: int, sale_ids: Sequence[str]) -> list[int]:
    """Send these sales' waiting documents back to be mapped (a document of theirs was just written or
    settled, which may be what they wait for); their ids, for the caller to enqueue after commit.
    """
    if not sale_ids:
        return []
    woken = list(
        session.scalars(
            update(SyncDocument)
            .where(
                SyncDocument.tenant_id == tenant_id,
                SyncDocument.sale_id.in_(sorted(set(sale_ids))),
                SyncDocument.state == DocumentState.WAITING,
            )
            .values(state=DocumentState.PENDING, enqueued_at=utcnow())
            .returning(SyncDocument.id)
            .execution_options(synchronize_session=False)
        )
    )
    return woken

"""Portable upserts for the ledger: PostgreSQL in production, SQLite for the demo.

A leaf module (models and SQLAlchemy only) so that any layer may use it without import cycles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def dialect_insert(session: Session, model: Any) -> Any:
    """An INSERT that supports ON CONFLICT on the session's backend."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(model)


def insert_ignore(session: Session, model: Any, rows: Sequence[dict[str, Any]], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: concurrent writers of the same natural key never clash."""
    if rows:
        session.execute(dialect_insert(session, model).values(list(rows)).on_conflict_do_nothing(index_elements=keys))

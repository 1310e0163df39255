"""Engine and session factory for the ledger (PostgreSQL in production, SQLite for the demo)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from pipeline.settings import get_settings


def make_engine(url: str) -> Engine:
    """An engine tuned for the backend: pooled and pre-pinged for PostgreSQL, WAL for SQLite."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets the demo's worker threads read while one writes; busy_timeout waits instead of failing.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # hide_parameters: a statement that fails is logged and raised without its values (customer data,
    # encrypted tokens, payloads).
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)


_engines: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    """One engine per URL per process (Celery prefork children build their own after fork)."""
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = make_engine(url)
    return engine


def get_engine() -> Engine:
    """The engine for the configured DATABASE_URL."""
    return engine_for(get_settings().database_url)


def session_factory() -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (tasks read ids after committing)."""
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A transaction: committed when the block ends normally, rolled back when it raises."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def reset_engines() -> None:
    """Forget cached engines (after a fork, or when tests change DATABASE_URL)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()

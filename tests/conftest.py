"""Fixtures for tests that run the real thing: PostgreSQL, Redis, Celery worker processes, stand-ins over HTTP.

PostgreSQL and Redis are expected on their standard local ports (override with TEST_POSTGRES_URL and
TEST_REDIS_URL). Each pipeline test gets its own database (cloned from a migrated template) and its
own Redis database number, so tests never see each other's rows or messages.
"""

from __future__ import annotations

import itertools
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from pipeline.db import reset_engines
from pipeline.ledger.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Start at a random database so that two test sessions on one machine rarely share one.
_first_db = random.randrange(1, 16)
_redis_dbs = itertools.cycle([1 + (_first_db + i) % 15 for i in range(15)])


def _sqlalchemy_url(database: str) -> str:
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{database}"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(POSTGRES_URL, autocommit=True)


@pytest.fixture(scope="session")
def ledger_template() -> Iterator[str]:
    """A migrated database that per-test databases are cloned from."""
    name = f"cin7xero_tmpl_{os.getpid()}"
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(_sqlalchemy_url(name))

    reset_engines()
    yield name
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(ledger_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = f"cin7xero_t_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{ledger_template}"')
    yield _sqlalchemy_url(name)

    reset_engines()
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    """An empty Redis database number for one test (broker queues and rate-limit keys)."""
    url = f"{REDIS_BASE}/{next(_redis_dbs)}"
    redis.Redis.from_url(url).flushdb()
    return url

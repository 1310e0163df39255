"""Ledger migrations that change what is in Xero: the foreign-rate repair of revision 0007."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from pipeline.ledger.migrate import upgrade
from pipeline.ledger.models import DocumentState, SyncDocument
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.pipeline


@pytest.fixture
def blank_database() -> Iterator[str]:
    name = f"cin7xero_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _document(session: Session, tenant_id: int, number: str, payload: dict[str, object]) -> None:
    # PostgreSQL wants the text cast to json; SQLite's CAST AS json would turn it into a number.
    value = "CAST(:payload AS json)" if session.get_bind().dialect.name == "postgresql" else ":payload"
    session.execute(
        text(
            "INSERT INTO sync_documents (tenant_id, source, kind, sale_id, task_id, document_number, state, "
            "attempts, write_uncertain, payload, xero_id, synced_hash, updated_at, discovered_at) VALUES (:tenant, "
            f"'cin7core', 'invoice', :sale, :task, :number, 'synced', 0, false, {value}, :xero, "
            "'old-hash', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        ),
        {
            "tenant": tenant_id,
            "sale": f"sale-{number}",
            "task": f"task-{number}",
            "number": number,
            "payload": json.dumps(payload),
            "xero": f"xero-{number}",
        },
    )


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_invoices_synced_with_an_uninverted_rate_are_mapped_again(
    blank_database: str, tmp_path: object, dialect: str
) -> None:
    url = blank_database if dialect == "postgresql" else f"sqlite:///{tmp_path}/ledger.db"
    upgrade(url, "0006")
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        session.execute(
            text(
                "INSERT INTO tenants (id, key, name, cin7_account_id, created_at) "
                "VALUES (1, 'default', '', '', CURRENT_TIMESTAMP)"
            )
        )
        _document(session, 1, "INV-USD", {"InvoiceNumber": "INV-USD", "CurrencyCode": "USD", "CurrencyRate": "1.4493"})
        _document(session, 1, "INV-AUD", {"InvoiceNumber": "INV-AUD", "CurrencyCode": "AUD"})

    upgrade(url)

    with Session(engine) as session:
        states = {d.document_number: d.state for d in session.scalars(select(SyncDocument))}
    assert states == {"INV-USD": DocumentState.PENDING, "INV-AUD": DocumentState.SYNCED}
    engine.dispose()

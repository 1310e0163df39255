"""Tenant contexts: each is looked up by its own key, so two tenants can share one process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from pipeline.context import tenant_context
from pipeline.ledger.models import Tenant
from pipeline.runtime import reload_runtime


@pytest.fixture
def ledger(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh ledger with the deployment's TENANT_KEY set to `first`."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TENANT_KEY", "first")
    monkeypatch.setenv("REDIS_URL", "")
    reload_runtime()
    yield database_url
    monkeypatch.undo()
    reload_runtime()


def test_two_tenants_in_one_process_each_get_their_own_row(ledger: str) -> None:
    first = tenant_context("first")
    second = tenant_context("second")

    assert first.tenant_key == "first" and second.tenant_key == "second"
    assert first.tenant_pk != second.tenant_pk
    with first.sessions() as session:
        keys = dict(session.execute(select(Tenant.id, Tenant.key)).tuples().all())
    assert keys[first.tenant_pk] == "first"
    assert keys[second.tenant_pk] == "second"


def test_a_context_is_cached_per_key_and_the_default_is_the_configured_tenant(ledger: str) -> None:
    second = tenant_context("second")

    assert tenant_context("second") is second
    assert tenant_context() is tenant_context("first")
    assert tenant_context().tenant_pk != second.tenant_pk

"""`GET /metrics` after a real sync with dead letters, parsed by Prometheus' own text parser."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from pipeline.ledger.models import DeadLetter, SyncDocument, Tenant
from pipeline.operations.metrics import METRIC_NAMES
from pipeline.operations.usage import api_usage_by_day
from pipeline.webhooks.server import WebhookServer
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _of(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


def test_metrics_after_a_sync_with_dead_letters_match_the_ledger(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(sales=40, seed=11, workers=1, settings={"CIN7_WEBHOOK_TOKEN": "t" * 32})
    p.poll_and_wait()
    tenant = p.ctx.tenant_key
    server = WebhookServer()
    server.start()
    try:
        response = requests.get(server.url + "/metrics", timeout=30)
    finally:
        server.stop()
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.text)
    # Every series the alert rules and the dashboard may name is served (and nothing else).
    assert {name for name, _labels in samples} == METRIC_NAMES

    with p.ctx.sessions() as session:
        by_state = Counter(
            {
                (str(kind), str(state)): int(count)
                for kind, state, count in session.execute(
                    select(SyncDocument.kind, SyncDocument.state, func.count()).group_by(
                        SyncDocument.kind, SyncDocument.state
                    )
                )
            }
        )
        letters = Counter(
            {
                (str(kind), str(error_class)): int(count)
                for kind, error_class, count in session.execute(
                    select(DeadLetter.kind, DeadLetter.error_class, func.count())
                    .where(DeadLetter.resolved_at.is_(None))
                    .group_by(DeadLetter.kind, DeadLetter.error_class)
                )
            }
        )
        usage = api_usage_by_day(p.ctx.settings, tenant, p.ctx.tenant_pk, session)
    assert letters, "the dataset's hostile sales leave dead letters"
    documents = {
        (dict(labels)["kind"], dict(labels)["state"]): value
        for labels, value in _of(samples, "cin7xero_documents").items()
        if dict(labels)["tenant"] == tenant
    }
    assert documents == by_state
    dead = {
        (dict(labels)["kind"], dict(labels)["error_class"]): value
        for labels, value in _of(samples, "cin7xero_dead_letters_open").items()
    }
    assert dead == letters
    # Everything discovered has settled: nothing waits.
    assert _value(samples, "cin7xero_sync_lag_seconds", tenant=tenant) == 0
    polled = _value(samples, "cin7xero_last_poll_success_timestamp_seconds", tenant=tenant, stream="sales")
    assert 0 <= datetime.now(UTC).timestamp() - polled < 300
    xero_calls = sum(calls for (_day, api), (calls, _) in usage.items() if api == "xero")
    assert xero_calls > 0
    assert _value(samples, "cin7xero_api_calls_total", tenant=tenant, api="xero") == xero_calls
    assert _value(samples, "cin7xero_api_calls_total", tenant=tenant, api="cin7") > 0
    assert _value(samples, "cin7xero_api_rate_limited_total", tenant=tenant, api="xero") == sum(
        limited for (_day, api), (_, limited) in usage.items() if api == "xero"
    )
    today = usage.get((datetime.now(UTC).date().isoformat(), "xero"), (0, 0))[0]
    assert _value(samples, "cin7xero_xero_day_calls_remaining", tenant=tenant) == 5000 - today
    assert _value(samples, "cin7xero_tenant_paused", tenant=tenant) == 0
    queues = {dict(labels)["queue"]: value for labels, value in _of(samples, "cin7xero_queue_depth").items()}
    assert set(queues) >= {"cin7", "mapping", "xero", "maintenance", "reconcile", "dead_letter"}
    assert queues["xero"] == 0
    consumers = {dict(labels)["queue"]: value for labels, value in _of(samples, "cin7xero_queue_consumers").items()}
    # The test's worker consumes these (-Q), not reconcile; nothing consumes the dead letters' mirror.
    assert all(consumers[q] == 1 for q in ("cin7", "mapping", "xero", "maintenance")), consumers
    assert consumers["reconcile"] == 0 and consumers["dead_letter"] == 0
    assert _value(samples, "cin7xero_workers") >= 1
    assert _value(samples, "cin7xero_metrics_read_errors_total", part="ledger") == 0


def test_a_paused_tenant_and_a_waiting_document_show_and_a_second_scrape_is_cached(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(sales=6, seed=3, workers=0, settings={"CIN7_WEBHOOK_TOKEN": "t" * 32})
    tenant = p.ctx.tenant_key
    with p.ctx.sessions() as session, session.begin():
        session.execute(
            update(Tenant)
            .where(Tenant.id == p.ctx.tenant_pk)
            .values(paused_until=datetime(2999, 1, 1, tzinfo=UTC), pause_reason="test")
        )
    server = WebhookServer()
    server.start()
    try:
        first = _samples(requests.get(server.url + "/metrics", timeout=30).text)
        with p.ctx.sessions() as session, session.begin():
            session.execute(update(Tenant).where(Tenant.id == p.ctx.tenant_pk).values(paused_until=None))
        cached = _samples(requests.get(server.url + "/metrics", timeout=30).text)
    finally:
        server.stop()
    assert _value(first, "cin7xero_tenant_paused", tenant=tenant) == 1
    # Within METRICS_CACHE_SECONDS a scrape reads nothing again.
    assert _value(cached, "cin7xero_tenant_paused", tenant=tenant) == 1
    # No worker runs: every queue has no consumer, which is what the alert on it looks for.
    assert all(value == 0 for value in _of(first, "cin7xero_queue_consumers").values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_metrics_serve_answers_without_the_receiver(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(sales=4, seed=5, workers=0)
    tenant = p.ctx.tenant_key  # the tenant's ledger row exists from here
    port = _free_port()
    command = [sys.executable, "-m", "pipeline.cli.main", "metrics", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env={**os.environ, **p.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.communicate()[1].decode(errors="replace")
                assert time.monotonic() < deadline, "metrics serve did not start"
                time.sleep(0.2)
        samples = _samples(response.text)
        assert _value(samples, "cin7xero_tenant_paused", tenant=tenant) == 0
        assert _value(samples, "cin7xero_metrics_read_errors_total", part="ledger") == 0
        assert ("cin7xero_queue_depth", frozenset({("queue", "xero")})) in samples
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    assert process.returncode == 0

"""The Cin7 webhook receiver over real HTTP, with a real PostgreSQL ledger and a Redis broker.

No worker runs here: these tests check what the receiver records and enqueues, and what the
event handling does to the ledger. The end-to-end path is in tests/pipeline/webhooks/test_process.py.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import select, update
from typer.testing import CliRunner

from pipeline.cli.webhooks import webhooks_app
from pipeline.context import TenantContext, tenant_context
from pipeline.ledger.models import CustomerRecord, DeadLetter, SaleRecord, SaleState, WebhookEvent
from pipeline.runtime import reload_runtime
from pipeline.settings import get_settings
from pipeline.source.cin7core.events import HANDLED_EVENT_TYPES
from pipeline.source.cin7core.webhooks import Cin7WebhooksClient, register_webhooks
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.generator import generate
from pipeline.webhooks.events import parse_event
from pipeline.webhooks.inbox import DEDUPE_WINDOW_SECONDS, delete_expired_events, resend_unsent_events
from pipeline.webhooks.process import MAX_CUSTOMERS_PER_EVENT, event_message, process_event
from pipeline.webhooks.server import WebhookServer

TOKEN = "tok-" + "x" * 40
USER = "cin7"
PASSWORD = "s3cret-pass"
MAX_BODY = 4096
SALE_ID = "91ee7b1d-5c1e-4a7e-9d2b-0a1b2c3d4e5f"


def _invoice_event(sale_id: str = SALE_ID, number: str = "INV-00039") -> dict[str, Any]:
    return {
        "SaleTaskID": sale_id.upper(),
        "OrderNumber": "SO-00044",
        "InvoiceNumber": number,
        "EventType": "Sale/InvoiceAuthorised",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set environment variables and reload settings, engines and the Celery configuration."""

    def apply(**env: str) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reload_runtime()

    yield apply
    monkeypatch.undo()
    reload_runtime()


@pytest.fixture
def base_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
        "CIN7_WEBHOOK_TOKEN": TOKEN,
        "CIN7_WEBHOOK_USER": USER,
        "CIN7_WEBHOOK_PASSWORD": PASSWORD,
        "WEBHOOK_MAX_BODY_BYTES": str(MAX_BODY),
        "STUCK_AFTER_SECONDS": "600",
    }


@pytest.fixture
def server(base_env: dict[str, str], configure: Callable[..., None]) -> Iterator[WebhookServer]:
    configure(**base_env)
    receiver = WebhookServer().start()
    try:
        yield receiver
    finally:
        receiver.stop()


def _post(
    server: WebhookServer, body: Any, *, auth: str | None = f"Bearer {TOKEN}", **kwargs: Any
) -> requests.Response:
    headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth is not None else {})}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(server.webhook_url, data=data, headers=headers, timeout=10, **kwargs)


def _events() -> list[WebhookEvent]:
    ctx = tenant_context()
    with ctx.sessions() as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- authentication ---------------------------------------------------------------------------------


def test_a_bearer_token_delivery_is_recorded_and_enqueued(server: WebhookServer, redis_url: str) -> None:
    response = _post(server, _invoice_event())

    assert response.status_code == 200, response.text
    [event] = _events()
    assert event.event_type == "Sale/InvoiceAuthorised"
    assert event.sale_id == SALE_ID  # SaleTaskID of Sale/InvoiceAuthorised is the sale, lower-cased
    assert event.state == "enqueued" and event.enqueued_at is not None
    assert redis.Redis.from_url(redis_url).llen("cin7") == 1
    assert response.json() == {"status": "enqueued", "event_id": event.id, "type": "Sale/InvoiceAuthorised"}


def test_a_basic_auth_delivery_is_recorded(server: WebhookServer) -> None:
    response = _post(server, _invoice_event(), auth=_basic(USER, PASSWORD))

    assert response.status_code == 200, response.text
    assert len(_events()) == 1


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "",
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"bearer{TOKEN}",
        _basic(USER, "wrong"),
        _basic("someone", PASSWORD),
        "Basic not-base64!!",
        f"Token {TOKEN}",
    ],
    ids=["missing", "empty", "bad-token", "longer-token", "no-space", "bad-password", "bad-user", "junk", "scheme"],
)
def test_anything_but_the_configured_credential_is_401_and_nothing_is_recorded(
    server: WebhookServer, auth: str | None
) -> None:
    response = _post(server, _invoice_event(), auth=auth)

    assert response.status_code == 401
    assert _events() == []


def test_an_unauthenticated_oversized_body_is_401_not_413(server: WebhookServer) -> None:
    response = _post(server, b"x" * (MAX_BODY * 3), auth=None)

    assert response.status_code == 401
    assert _events() == []


# --- bodies -----------------------------------------------------------------------------------------


def test_the_same_delivery_twice_is_one_event_and_both_get_200(server: WebhookServer, redis_url: str) -> None:
    first = _post(server, _invoice_event())
    second = _post(server, _invoice_event())
    # GUID case varies between deliveries of one event
    third = _post(server, {**_invoice_event(), "SaleTaskID": SALE_ID.lower()})

    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 200]
    assert second.json()["status"] == "duplicate" and third.json()["status"] == "duplicate"
    assert len(_events()) == 1
    assert redis.Redis.from_url(redis_url).llen("cin7") == 1


def test_an_identical_body_long_after_the_first_is_processed_again(server: WebhookServer) -> None:
    # e.g. an invoice undone and authorised again: same thin payload, a real change
    _post(server, _invoice_event())
    [event] = _events()
    process_event(_ctx(), event.id)
    with _ctx().sessions() as session, session.begin():
        session.execute(
            update(WebhookEvent).values(received_at=datetime.now(UTC) - timedelta(seconds=DEDUPE_WINDOW_SECONDS + 60))
        )

    again = _post(server, _invoice_event())

    assert again.json() == {"status": "enqueued", "event_id": event.id, "type": "Sale/InvoiceAuthorised"}
    [rearmed] = _events()
    assert rearmed.state == "enqueued" and rearmed.processed_at is None


def test_a_different_event_for_the_same_sale_is_a_new_event(server: WebhookServer) -> None:
    _post(server, _invoice_event())
    _post(server, {"SaleID": SALE_ID, "DocumentNumber": "INV-00039", "EventType": "Sale/FullPaymentReceived"})

    assert [e.event_type for e in _events()] == ["Sale/InvoiceAuthorised", "Sale/FullPaymentReceived"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b'"just a string"', b"42"])
def test_a_body_that_is_not_a_json_object_or_array_is_400(server: WebhookServer, body: bytes) -> None:
    response = _post(server, body)

    assert response.status_code == 400
    assert _events() == []


def test_a_declared_length_over_the_limit_is_413(server: WebhookServer) -> None:
    response = _post(server, {"EventType": "Sale/Voided", "SaleID": SALE_ID, "Pad": "x" * (MAX_BODY * 4)})

    assert response.status_code == 413
    assert _events() == []


def test_a_huge_declared_length_is_refused_before_any_body_byte_is_read(server: WebhookServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /webhooks/cin7 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 5000000000\r\n\r\n"
        )
        started = time.monotonic()
        reply = sock.recv(4096)

    assert reply.startswith(b"HTTP/1.1 413")
    assert time.monotonic() - started < 3  # answered without waiting for 5 GB
    assert _events() == []


def test_a_chunked_body_over_the_limit_is_413(server: WebhookServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"EventType": "Sale/Voided", "Pad": "'
        for _ in range(20):
            yield b"x" * 1024
        yield b'"}'

    response = requests.post(
        server.webhook_url, data=chunks(), headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )

    assert response.status_code == 413
    assert _events() == []


def test_a_chunked_body_within_the_limit_is_accepted(server: WebhookServer) -> None:
    body = json.dumps(_invoice_event()).encode()

    response = requests.post(
        server.webhook_url,
        data=iter([body[:10], body[10:]]),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )

    assert response.status_code == 200, response.text
    assert len(_events()) == 1


def test_a_post_without_a_length_is_411(server: WebhookServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /webhooks/cin7 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
        )
        reply = sock.recv(4096)

    assert reply.startswith(b"HTTP/1.1 411")


def test_expect_100_continue_is_refused_early_when_too_large(server: WebhookServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /webhooks/cin7 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
            b"Expect: 100-continue\r\nContent-Length: 999999\r\n\r\n"
        )
        reply = sock.recv(4096)

    assert reply.startswith(b"HTTP/1.1 413")


def test_unknown_and_unhandled_event_types_are_200_and_recorded_as_ignored(
    server: WebhookServer, redis_url: str
) -> None:
    unknown = _post(server, {"EventType": "Purchase/Something", "PurchaseID": str(uuid.uuid4())})
    stock = _post(
        server, [{"ProductID": str(uuid.uuid4()), "Available": 3, "EventType": "Stock/AvailableStockLevelChanged"}]
    )
    untyped = _post(server, {"Hello": "world"})

    assert [unknown.status_code, stock.status_code, untyped.status_code] == [200, 200, 200]
    events = _events()
    assert [e.state for e in events] == ["ignored"] * 3
    assert [e.event_type for e in events] == ["Purchase/Something", "Stock/AvailableStockLevelChanged", "unknown"]
    assert redis.Redis.from_url(redis_url).llen("cin7") == 0


def test_event_types_match_loosely() -> None:
    american = parse_event({"SaleTaskID": SALE_ID, "EventType": "sale/invoiceAuthorized"})
    spaced = parse_event({"SaleID": SALE_ID, "eventtype": " Sale/Credit Note Authorized "})
    customer = parse_event({"CustomerDetailsList": [{"Customer": {"ID": SALE_ID.upper()}}]})

    assert (american.event_type, american.kind, american.sale_id) == ("Sale/InvoiceAuthorised", "sale", SALE_ID)
    assert (spaced.event_type, spaced.kind) == ("Sale/CreditNoteAuthorised", "sale")
    assert (customer.event_type, customer.kind) == ("Customer/Updated", "customer")
    assert len(american.dedupe_key) <= 128


def test_other_paths_and_methods_are_refused(server: WebhookServer) -> None:
    assert requests.post(server.url + "/other", data=b"{}", timeout=5).status_code == 404
    assert requests.get(server.webhook_url, timeout=5).status_code == 404
    assert requests.put(server.webhook_url, data=b"{}", timeout=5).status_code == 405


# --- broker down ------------------------------------------------------------------------------------


def test_with_the_broker_down_the_event_is_kept_and_the_sweep_finds_it(
    server: WebhookServer, configure: Callable[..., None]
) -> None:
    configure(CELERY_BROKER_URL=f"redis://127.0.0.1:{_free_port()}/0")
    started = time.monotonic()

    response = _post(server, _invoice_event())

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "received"
    assert time.monotonic() - started < 2
    [event] = _events()
    assert event.state == "received" and event.enqueued_at is None
    ctx = tenant_context()
    assert resend_unsent_events(ctx, older_than_seconds=60) == []  # too recent: the receiver may still send it
    assert resend_unsent_events(ctx, older_than_seconds=0) == [event.id]
    assert resend_unsent_events(ctx, older_than_seconds=0) == []  # now marked enqueued
    assert _events()[0].state == "enqueued"


# --- health -----------------------------------------------------------------------------------------


def test_liveness_never_depends_on_the_ledger_and_readiness_names_what_is_down(
    server: WebhookServer, configure: Callable[..., None]
) -> None:
    ok = requests.get(server.url + "/healthz", timeout=5)
    ready = requests.get(server.url + "/readyz", timeout=10)
    assert (ok.status_code, ok.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "database": "up", "broker": "up"})

    configure(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/nothing")
    alive = requests.get(server.url + "/healthz", timeout=10)
    down = requests.get(server.url + "/readyz", timeout=10)
    refused = _post(server, _invoice_event())

    # A restart would not bring the ledger back: the process stays live, and not ready.
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    assert (down.status_code, down.json()) == (503, {"status": "unavailable", "database": "down", "broker": "up"})
    assert refused.status_code == 503  # not recorded: Cin7 must deliver again


def test_readiness_says_the_broker_is_down(server: WebhookServer, configure: Callable[..., None]) -> None:
    configure(CELERY_BROKER_URL=f"redis://127.0.0.1:{_free_port()}/0")

    down = requests.get(server.url + "/readyz", timeout=15)

    assert (down.status_code, down.json()["broker"], down.json()["database"]) == (503, "down", "up")


def test_the_receiver_refuses_to_start_without_credentials(
    base_env: dict[str, str], configure: Callable[..., None]
) -> None:
    configure(**{**base_env, "CIN7_WEBHOOK_TOKEN": "", "CIN7_WEBHOOK_USER": "", "CIN7_WEBHOOK_PASSWORD": ""})

    with pytest.raises(ValueError, match="unauthenticated"):
        WebhookServer()
    result = CliRunner().invoke(webhooks_app, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "CIN7_WEBHOOK_TOKEN" in result.output


# --- processing (the task's function, called directly) ----------------------------------------------


def _cin7_env(cin7: Cin7StandIn) -> dict[str, str]:
    """Settings pointing the receiver's tenant at this Cin7 stand-in."""
    return {
        "CIN7_API_URL": cin7.api_url,
        "CIN7_ACCOUNT_ID": cin7.account_id,
        "CIN7_APPLICATION_KEY": cin7.application_key,
    }


def _ctx() -> TenantContext:
    return tenant_context()


def test_a_sale_event_marks_the_sale_discovered_once(server: WebhookServer) -> None:
    _post(server, _invoice_event())
    [event] = _events()

    first = process_event(_ctx(), event.id)
    again = process_event(_ctx(), event.id)

    assert first.sale_ids == [SALE_ID] and first.state == "done"
    assert again.sale_ids == []  # idempotent: a re-delivered task does nothing
    with _ctx().sessions() as session:
        [sale] = session.scalars(select(SaleRecord)).all()
    assert (sale.sale_id, sale.state) == (SALE_ID, SaleState.DISCOVERED)
    assert sale.enqueued_at is not None
    assert _events()[0].state == "done"


def test_a_payment_event_with_only_a_document_number_finds_the_sale_through_the_ledger(
    server: WebhookServer,
) -> None:
    _post(server, _invoice_event())
    process_event(_ctx(), _events()[0].id)
    with _ctx().sessions() as session, session.begin():
        session.execute(update(SaleRecord).values(order_number="SO-00044"))
    _post(server, {"OrderNumber": "SO-00044", "EventType": "Sale/FullPaymentReceived"})

    outcome = process_event(_ctx(), _events()[1].id)

    assert outcome.sale_ids == [SALE_ID]


def test_customer_updated_stores_what_the_api_says_not_what_the_payload_says(
    base_env: dict[str, str], configure: Callable[..., None]
) -> None:
    dataset = generate(3, 4, now=datetime.now(UTC))
    customer = dataset.customers[0]
    with Cin7StandIn(dataset=dataset) as cin7:
        configure(**base_env, **_cin7_env(cin7))
        with WebhookServer() as receiver:
            payload = {
                "CustomerDetailsList": [
                    {"Customer": {"ID": customer["ID"].upper(), "Name": "Forged Name"}, "Addresses": [], "Contacts": []}
                ],
                "EventType": "Customer/Updated",
            }
            assert _post(receiver, payload).status_code == 200
        outcome = process_event(_ctx(), _events()[0].id)

    assert outcome.customers == 1
    with _ctx().sessions() as session:
        [record] = session.scalars(select(CustomerRecord)).all()
    assert record.customer_id == customer["ID"].lower()
    assert record.snapshot["Name"] == customer["Name"] != "Forged Name"


# --- registration ----------------------------------------------------------------------------------


def test_register_creates_then_changes_nothing_then_reactivates_what_cin7_deactivated(
    base_env: dict[str, str], configure: Callable[..., None]
) -> None:
    url = "https://sync.example.com/webhooks/cin7"
    with Cin7StandIn() as cin7:
        configure(**base_env, **_cin7_env(cin7))

        settings = get_settings()
        first = register_webhooks(settings, url)
        second = register_webhooks(settings, url)
        hooks = cin7.webhooks()
        # Cin7 gives up on a webhook after six failed deliveries
        client = Cin7WebhooksClient(settings)
        client.update({**hooks[0], "IsActive": False})
        third = register_webhooks(settings, url)
        final = cin7.webhooks()

    assert [r.action for r in first] == ["created"] * len(HANDLED_EVENT_TYPES)
    assert [r.action for r in second] == ["unchanged"] * len(HANDLED_EVENT_TYPES)
    assert sorted(h["Type"] for h in hooks) == sorted(HANDLED_EVENT_TYPES)
    assert all(h["ExternalAuthorizationType"] == "bearerauth" and h["ExternalBearerToken"] == TOKEN for h in hooks)
    assert all(h["ExternalURL"] == url and h["IsActive"] for h in hooks)
    assert [r.action for r in third].count("reactivated") == 1
    assert [r.action for r in third].count("unchanged") == len(HANDLED_EVENT_TYPES) - 1
    assert len(final) == len(HANDLED_EVENT_TYPES) and all(h["IsActive"] for h in final)


def test_register_from_the_command_line_prints_what_it_did(
    base_env: dict[str, str], configure: Callable[..., None]
) -> None:

    with Cin7StandIn() as cin7:
        configure(
            **{**base_env, "CIN7_WEBHOOK_TOKEN": ""},
            CIN7_API_URL=cin7.api_url,
            CIN7_ACCOUNT_ID=cin7.account_id,
            CIN7_APPLICATION_KEY=cin7.application_key,
        )
        runner = CliRunner()
        first = runner.invoke(webhooks_app, ["register", "--url", "https://h.example/webhooks/cin7"])
        second = runner.invoke(webhooks_app, ["register", "--url", "https://h.example/webhooks/cin7"])
        hooks = cin7.webhooks()

    assert first.exit_code == 0, first.output
    assert first.output.count("created") == len(HANDLED_EVENT_TYPES)
    assert second.output.count("unchanged") == len(HANDLED_EVENT_TYPES) and "created" not in second.output
    # without a token, the subscription uses basic auth
    assert {(h["ExternalAuthorizationType"], h["ExternalUserName"]) for h in hooks} == {("basicauth", USER)}


def test_a_customer_event_naming_many_customers_is_read_by_a_poll_not_call_by_call(
    base_env: dict[str, str], configure: Callable[..., None]
) -> None:
    dataset = generate(3, 30, now=datetime.now(UTC))
    with Cin7StandIn(dataset=dataset) as cin7:
        configure(**base_env, **_cin7_env(cin7))
        with WebhookServer() as receiver:
            payload = {
                "CustomerDetailsList": [{"Customer": {"ID": c["ID"]}} for c in dataset.customers],
                "EventType": "Customer/Updated",
            }
            assert len(dataset.customers) > MAX_CUSTOMERS_PER_EVENT
            assert _post(receiver, payload).status_code == 200
        calls = cin7.stats()["calls"]
        outcome = process_event(_ctx(), _events()[0].id)
        assert cin7.stats()["calls"] == calls
    assert outcome.poll and outcome.customers == 0
    assert _events()[0].error == f"{len(dataset.customers)} customers: read by a poll"


def test_a_customer_event_that_keeps_failing_ends_as_a_dead_letter_naming_its_customers(
    base_env: dict[str, str], configure: Callable[..., None]
) -> None:
    dataset = generate(3, 4, now=datetime.now(UTC))
    customer = dataset.customers[0]
    with Cin7StandIn(dataset=dataset) as cin7:
        configure(**base_env, **_cin7_env(cin7), MAX_ATTEMPTS="2")
        with WebhookServer() as receiver:
            payload = {"CustomerDetailsList": [{"Customer": {"ID": customer["ID"]}}], "EventType": "Customer/Updated"}
            assert _post(receiver, payload).status_code == 200
        event_id = _events()[0].id
        cin7.set_faults(outage_seconds=60)
        results = [event_message(_ctx(), event_id, retries=retries) for retries in range(3)]
    states = [result["state"] for result, _ in results]
    assert "failed" in states and states[0] == "retry"
    with _ctx().sessions() as session:
        letter = session.scalar(select(DeadLetter).where(DeadLetter.stage == "webhook"))
    assert letter is not None and letter.kind == "customer" and letter.error_class == "poison"
    assert customer["ID"].lower() in (letter.document_number or "")
    assert "could not be read" in " ".join(letter.messages)


def test_handled_events_past_their_retention_are_deleted_and_the_rest_kept(server: WebhookServer) -> None:
    for number in range(4):
        assert _post(server, _invoice_event(sale_id=str(uuid.uuid4()), number=f"INV-R{number}")).status_code == 200
    old = datetime.now(UTC) - timedelta(days=31)
    done_old, ignored_old, pending_old, done_recent = [event.id for event in _events()]
    with _ctx().sessions() as session, session.begin():
        for event_id, state, received in (
            (done_old, "done", old),
            (ignored_old, "ignored", old),
            (pending_old, "enqueued", old),  # still on its way: kept whatever its age
            (done_recent, "done", datetime.now(UTC) - timedelta(days=29)),
        ):
            session.execute(
                update(WebhookEvent).where(WebhookEvent.id == event_id).values(state=state, received_at=received)
            )

    assert delete_expired_events(_ctx()) == 2
    assert [event.id for event in _events()] == [pending_old, done_recent]
    assert delete_expired_events(_ctx()) == 0

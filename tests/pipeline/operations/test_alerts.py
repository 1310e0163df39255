"""Alerts against a real ledger, a local HTTP webhook sink and a local SMTP server."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from pipeline.context import TenantContext, tenant_context
from pipeline.errors import ErrorClass
from pipeline.ledger.models import AlertState, DeadLetter, utcnow
from pipeline.operations.alert_channels import AlertDeliveryError, EmailChannel, SlackChannel
from pipeline.operations.alert_flush import flush_alerts
from pipeline.operations.alert_message import Alert
from pipeline.operations.alerts import note_problem, note_recovery
from pipeline.runtime import reload_runtime

WINDOW = 600.0
SECRET_PATH = "/services/T0SECRET/B0SECRET/hooksecretvalue"


class HttpSink:
    """A Slack-compatible incoming webhook that records the JSON bodies it receives."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                sink.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(sink.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"

    def texts(self) -> list[str]:
        return [str(body["text"]) for body in self.bodies]

    def __enter__(self) -> HttpSink:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class MailRecorder:
    """aiosmtpd handler: keeps every message it accepts."""

    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def slack() -> Iterator[HttpSink]:
    with HttpSink() as sink:
        yield sink


@pytest.fixture
def mail() -> Iterator[tuple[MailRecorder, int]]:
    recorder = MailRecorder()
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield recorder, port
    controller.stop()


@pytest.fixture
def ctx(
    database_url: str, slack: HttpSink, mail: tuple[MailRecorder, int], monkeypatch: pytest.MonkeyPatch
) -> Iterator[TenantContext]:
    """A tenant on a fresh ledger whose alerts go to the log, the HTTP sink and the SMTP server."""
    env = {
        "DATABASE_URL": database_url,
        "ALERT_CHANNELS": "log,slack,email",
        "ALERT_WINDOW_SECONDS": str(WINDOW),
        "ALERT_SLACK_WEBHOOK_URL": slack.url,
        "ALERT_SMTP_HOST": "127.0.0.1",
        "ALERT_SMTP_PORT": str(mail[1]),
        "ALERT_SMTP_STARTTLS": "false",
        "ALERT_EMAIL_FROM": "cin7xero@test.local",
        "ALERT_EMAIL_TO": "ops@test.local, finance@test.local",
        "TENANT_KEY": "default",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reload_runtime()
    yield tenant_context()
    monkeypatch.undo()
    reload_runtime()


def dead_letters(ctx: TenantContext, error_class: ErrorClass, count: int, *, start: int = 0) -> None:
    """Record dead letters the way the pipeline does: the letter and note_problem in one transaction."""
    with ctx.sessions() as session, session.begin():
        for n in range(start, start + count):
            message = f"INV-{n:04d}: Account code '999' is not a valid code for this document."
            session.add(
                DeadLetter(
                    tenant_id=ctx.tenant_pk,
                    kind="invoice",
                    document_number=f"INV-{n:04d}",
                    stage="write",
                    error_class=error_class.value,
                    messages=[message],
                )
            )
            note_problem(session, ctx.tenant_pk, error_class, message)


def alerted_then_more(ctx: TenantContext, more: int) -> None:
    """50 validation errors, alerted about (which opens the alert window), then `more` new ones."""
    dead_letters(ctx, ErrorClass.VALIDATION, 50)
    flush_alerts(ctx)
    dead_letters(ctx, ErrorClass.VALIDATION, more, start=50)


def resolve_all(ctx: TenantContext) -> None:
    with ctx.sessions() as session, session.begin():
        session.execute(update(DeadLetter).values(resolved_at=utcnow()))


def alert_state(ctx: TenantContext, error_class: ErrorClass) -> AlertState:
    with ctx.sessions() as session:
        state = session.scalar(select(AlertState).where(AlertState.error_class == error_class.value))
        assert state is not None
        return state


def example_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("- ")]


def test_fifty_dead_letters_in_one_window_send_one_post_and_one_email_with_the_count(
    ctx: TenantContext, slack: HttpSink, mail: tuple[MailRecorder, int]
) -> None:
    dead_letters(ctx, ErrorClass.VALIDATION, 50)

    sent = flush_alerts(ctx)

    assert [(a.kind, a.count, a.total) for a in sent] == [("problem", 50, 50)]
    assert len(slack.bodies) == 1
    text = slack.texts()[0]
    assert "50 validation errors" in text
    assert "Xero 400 validation errors" in text  # the meaning, from the error table
    examples = example_lines(text)
    assert len(examples) == 5
    assert [line[2:10] for line in examples] == ["INV-0045", "INV-0046", "INV-0047", "INV-0048", "INV-0049"]
    messages = mail[0].messages
    assert len(messages) == 1
    assert messages[0]["Subject"] == "[cin7xero] tenant default: 50 validation errors"
    assert messages[0]["To"] == "ops@test.local, finance@test.local"
    body = messages[0].get_payload(decode=True)
    assert isinstance(body, bytes)
    assert len(example_lines(body.decode())) == 5
    state = alert_state(ctx, ErrorClass.VALIDATION)
    assert (state.pending_count, state.total_count, state.examples) == (0, 50, [])


def test_a_second_flush_within_the_window_sends_nothing_even_with_new_problems(
    ctx: TenantContext, slack: HttpSink, mail: tuple[MailRecorder, int]
) -> None:
    alerted_then_more(ctx, 3)

    assert flush_alerts(ctx) == []
    assert flush_alerts(ctx, now=utcnow() + timedelta(seconds=WINDOW / 2)) == []
    assert len(slack.bodies) == 1
    assert len(mail[0].messages) == 1
    assert alert_state(ctx, ErrorClass.VALIDATION).pending_count == 3


def test_problems_after_the_window_send_one_more_alert_with_the_new_count(
    ctx: TenantContext, slack: HttpSink, mail: tuple[MailRecorder, int]
) -> None:
    alerted_then_more(ctx, 7)

    later = utcnow() + timedelta(seconds=WINDOW + 1)
    sent = flush_alerts(ctx, now=later)
    again = flush_alerts(ctx, now=later + timedelta(seconds=1))

    assert [(a.kind, a.count, a.total) for a in sent] == [("problem", 7, 57)]
    assert again == []
    assert len(slack.bodies) == 2
    assert "7 validation errors" in slack.texts()[1]
    assert "57 in total" in slack.texts()[1]
    assert [m["Subject"] for m in mail[0].messages] == [
        "[cin7xero] tenant default: 50 validation errors",
        "[cin7xero] tenant default: 7 validation errors",
    ]


def test_two_error_classes_send_two_alerts(ctx: TenantContext, slack: HttpSink, mail: tuple[MailRecorder, int]) -> None:
    dead_letters(ctx, ErrorClass.VALIDATION, 4)
    dead_letters(ctx, ErrorClass.MAPPING, 2, start=100)

    sent = flush_alerts(ctx)

    assert sorted((a.error_class, a.count) for a in sent) == [("mapping", 2), ("validation", 4)]
    assert len(slack.bodies) == 2
    assert sorted(m["Subject"] for m in mail[0].messages) == [
        "[cin7xero] tenant default: 2 mapping errors",
        "[cin7xero] tenant default: 4 validation errors",
    ]


def test_resolving_the_dead_letters_sends_one_recovery_notice_per_channel_and_closes_the_alert(
    ctx: TenantContext, slack: HttpSink, mail: tuple[MailRecorder, int]
) -> None:
    dead_letters(ctx, ErrorClass.VALIDATION, 5)
    flush_alerts(ctx)
    assert flush_alerts(ctx) == []  # still open: the dead letters are there

    resolve_all(ctx)
    sent = flush_alerts(ctx)
    again = flush_alerts(ctx, now=utcnow() + timedelta(seconds=WINDOW * 3))

    assert [(a.kind, a.error_class) for a in sent] == [("recovery", "validation")]
    assert again == []
    assert len(slack.bodies) == 2
    assert "validation errors recovered" in slack.texts()[1]
    assert [m["Subject"] for m in mail[0].messages][1:] == ["[cin7xero] tenant default: validation errors recovered"]
    assert alert_state(ctx, ErrorClass.VALIDATION).closed_at is not None


def test_a_pause_that_recovers_sends_one_alert_and_one_recovery_notice(
    ctx: TenantContext, slack: HttpSink, mail: tuple[MailRecorder, int]
) -> None:
    with ctx.sessions() as session, session.begin():
        note_problem(session, ctx.tenant_pk, ErrorClass.CONFIGURATION, "Xero refused access (403)")
    first = flush_alerts(ctx)
    with ctx.sessions() as session, session.begin():
        note_recovery(session, ctx.tenant_pk, ErrorClass.CONFIGURATION)
        note_recovery(session, ctx.tenant_pk, ErrorClass.CONFIGURATION)  # every success may say so
    second = flush_alerts(ctx)
    third = flush_alerts(ctx, now=utcnow() + timedelta(seconds=WINDOW * 3))

    assert [a.kind for a in first + second + third] == ["problem", "recovery"]
    assert "1 configuration error" in slack.texts()[0]
    assert "The tenant is paused" in slack.texts()[0]
    assert [m["Subject"] for m in mail[0].messages] == [
        "[cin7xero] tenant default: 1 configuration error",
        "[cin7xero] tenant default: configuration errors recovered",
    ]


def test_a_problem_that_cleared_before_any_alert_went_out_is_closed_silently(
    ctx: TenantContext, slack: HttpSink, mail: tuple[MailRecorder, int]
) -> None:
    with ctx.sessions() as session, session.begin():
        note_problem(session, ctx.tenant_pk, ErrorClass.DAY_LIMIT, "Xero daily call limit reached")
        note_recovery(session, ctx.tenant_pk, ErrorClass.DAY_LIMIT)
    dead_letters(ctx, ErrorClass.MAPPING, 1)
    resolve_all(ctx)

    assert flush_alerts(ctx) == []
    assert slack.bodies == []
    assert mail[0].messages == []
    # The next occurrence is a new problem with its own count.
    with ctx.sessions() as session, session.begin():
        note_problem(session, ctx.tenant_pk, ErrorClass.DAY_LIMIT, "Xero daily call limit reached")
    assert [(a.count, a.total) for a in flush_alerts(ctx)] == [(1, 1)]


def test_two_flushes_at_the_same_time_send_each_alert_once(
    ctx: TenantContext, slack: HttpSink, mail: tuple[MailRecorder, int]
) -> None:
    dead_letters(ctx, ErrorClass.VALIDATION, 20)
    dead_letters(ctx, ErrorClass.POISON, 2, start=500)
    barrier = threading.Barrier(4)
    results: list[int] = []

    def flush() -> None:
        barrier.wait()
        results.append(len(flush_alerts(ctx)))

    threads = [threading.Thread(target=flush) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sum(results) == 2
    assert len(slack.bodies) == 2
    assert len(mail[0].messages) == 2


def test_a_webhook_answering_500_does_not_stop_the_email_and_its_url_is_never_logged(
    ctx: TenantContext, slack: HttpSink, mail: tuple[MailRecorder, int], caplog: pytest.LogCaptureFixture
) -> None:
    slack.status = 500
    dead_letters(ctx, ErrorClass.MAPPING, 3)

    with caplog.at_level(logging.INFO):
        sent = flush_alerts(ctx)

    assert len(sent) == 1
    assert len(slack.bodies) == 2  # the first try and one retry
    assert [m["Subject"] for m in mail[0].messages] == ["[cin7xero] tenant default: 3 mapping errors"]
    assert "alert channel slack failed: Slack webhook failed twice (HTTP 500)" in caplog.text
    assert "3 mapping errors" in caplog.text  # the log channel still logged it
    assert "hooksecretvalue" not in caplog.text


def test_an_alert_that_reached_no_one_is_sent_again_at_the_next_flush(
    ctx: TenantContext, slack: HttpSink, mail: tuple[MailRecorder, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    slack.status = 500
    monkeypatch.setenv("ALERT_SMTP_PORT", "1")  # nothing listens there
    reload_runtime()
    dead_letters(ctx, ErrorClass.MAPPING, 3)

    first = flush_alerts(tenant_context())
    assert [(a.kind, a.count) for a in first] == [("problem", 3)]
    assert mail[0].messages == []
    state = alert_state(ctx, ErrorClass.MAPPING)
    assert state.pending_count == 3 and state.last_sent_at is None

    slack.status = 200
    monkeypatch.setenv("ALERT_SMTP_PORT", str(mail[1]))
    reload_runtime()
    again = flush_alerts(tenant_context())
    assert [(a.kind, a.count) for a in again] == [("problem", 3)]
    assert len(mail[0].messages) == 1 and "3 mapping errors" in slack.texts()[-1]
    assert flush_alerts(tenant_context()) == []  # delivered now: not a third time


def _alert(example: str) -> Alert:
    return Alert(tenant_key="acme", error_class="mapping", kind="problem", count=1, total=1, examples=(example,))


def test_slack_text_shows_cin7_values_literally(slack: HttpSink) -> None:
    SlackChannel(slack.url).send(_alert("invoice <!channel> & <https://evil.example|click here>"))

    [text] = slack.texts()
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click here&gt;" in text
    assert "<!channel>" not in text and "<https://" not in text


def test_smtp_credentials_are_never_sent_without_tls(mail: tuple[MailRecorder, int]) -> None:
    recorder, port = mail
    bare = EmailChannel("127.0.0.1", port, "from@example.com", ["ops@example.com"], user="u", password="p")

    with pytest.raises(AlertDeliveryError, match="ALERT_SMTP_STARTTLS"):
        bare.send(_alert("anything"))

    assert recorder.messages == []
    # Without a user nothing secret travels: plain SMTP to a local relay still works.
    EmailChannel("127.0.0.1", port, "from@example.com", ["ops@example.com"]).send(_alert("anything"))
    assert len(recorder.messages) == 1

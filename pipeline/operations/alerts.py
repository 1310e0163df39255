"""Alerts: what needs a person reaches one, once per problem per window, with a count and examples.

How a problem becomes an alert:

- `note_problem` is called inside the transaction that records something a person must act on: a dead
  letter (any class, including `poison` = a message that exhausted its attempts or kept killing
  workers), or a tenant paused for a 403 / revoked consent / Xero's daily limit. It only updates one
  `AlertState` row per (tenant, error class); it never sends anything, so a storm of 5 000 dead letters
  costs 5 000 cheap row updates and not 5 000 messages.
- Transient errors (timeouts, 5xx, 429s, expired access tokens) are retried and never call
  `note_problem`, so an error that recovered within its retries raises no alert by construction. Only
  when the retries are exhausted does the document become a (poison) dead letter, and that alerts.
- `flush_alerts` runs from beat every 30 s. For each open problem with new occurrences whose last
  message went out more than ALERT_WINDOW_SECONDS ago (or never), it sends ONE alert: the count since
  the previous alert, the total since the problem opened, up to five recent examples, what the class
  means and what to do.
- Recovery: validation, mapping and poison problems recover when the tenant has no open dead letters of
  that class any more (they were requeued and went through, or purged). Other classes (configuration,
  day_limit, ...) recover when the code that paused the tenant calls `note_recovery`, e.g. after the
  next successful Xero write. A recovery notice is sent once, and only if an alert about the problem
  was actually sent; a problem that cleared before anyone was told is closed silently.

The state change and the decision to send are committed under a row lock (plus a conditional update,
for SQLite) before anything is sent, so two flushes running at once send each alert once. Sending is
at most once: a channel that fails is logged and the others still send.

State encoding on `AlertState` (no extra columns): the row is open while `closed_at` is null. An alert
was sent for the current episode when `last_sent_at >= opened_at`. A closed row whose `closed_at` is
later than that `last_sent_at` still owes its recovery notice. `opened_at` is null once a closed
problem has nothing left to announce. The window counts from the last message of either kind, so a
flapping problem cannot produce more than one message per window.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Literal, Protocol

import requests
from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.orm import Session

from pipeline import errors
from pipeline.errors import ErrorClass
from pipeline.ledger.models import AlertState, DeadLetter, utcnow
from pipeline.ledger.ops import insert_ignore
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.context import TenantContext

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5
# An example is a line in a message, not a payload dump.
MAX_EXAMPLE_CHARS = 500

# These classes are about documents sitting in the dead-letter queue: they are over when the queue
# holds none of them any more. Everything else is over when the pipeline says so (note_recovery).
DEAD_LETTER_CLASSES = frozenset({ErrorClass.VALIDATION.value, ErrorClass.MAPPING.value, ErrorClass.POISON.value})

# What an operator should do; the table in pipeline/errors.py says what the class means.
OPERATOR_ACTIONS: dict[str, str] = {
    ErrorClass.TRANSIENT.value: (
        "Usually nothing: the pipeline retries. If it keeps happening, check Cin7/Xero status pages and the "
        "network, then `cin7xero dlq requeue --error-class transient`."
    ),
    ErrorClass.RATE_LIMITED.value: (
        "Check whether another integration shares the Xero app or the Cin7 account; the pipeline waits and retries."
    ),
    ErrorClass.DAY_LIMIT.value: (
        "Writes resume by themselves when Xero's daily limit resets. If it recurs, reduce other API use of this "
        "Xero organisation."
    ),
    ErrorClass.AUTH.value: "If it persists, reconnect Xero with `cin7xero xero connect`.",
    ErrorClass.CONFIGURATION.value: (
        "The tenant is paused. Check the Xero tenant id, the app's scopes and the connection; reconnect with "
        "`cin7xero xero connect` if consent was revoked."
    ),
    ErrorClass.VALIDATION.value: (
        "Read Xero's messages (`cin7xero dlq list --error-class validation`), fix the data in Cin7 or the mapping "
        "rules, then `cin7xero dlq requeue --error-class validation`."
    ),
    ErrorClass.MAPPING.value: (
        "Add the missing value to the mapping rules (MAPPING_RULES_FILE) or fix it in Cin7, then "
        "`cin7xero dlq requeue --error-class mapping`."
    ),
    ErrorClass.CONFLICT.value: "Review the invoice in Xero (paid or locked) and amend it there by hand if needed.",
    ErrorClass.POISON.value: (
        "Look at the dead letter (`cin7xero dlq show ID`) and the worker logs, then "
        "`cin7xero dlq requeue --error-class poison`."
    ),
}

_TABLE_ROW = re.compile(r"^\|\s*([a-z_]+)\s*\|([^|]*)\|([^|]*)\|\s*$")


def _error_table() -> dict[str, tuple[str, str]]:
    # The one error table lives in pipeline/errors.py's docstring (the README copies it): read it rather
    # than keeping a second copy that could drift.
    table: dict[str, tuple[str, str]] = {}
    for line in (errors.__doc__ or "").splitlines():
        match = _TABLE_ROW.match(line.strip())
        if match and match.group(1) != "class":
            table[match.group(1)] = (match.group(2).strip(), match.group(3).strip())
    return table


ERROR_TABLE = _error_table()


def class_meaning(error_class: str) -> str:
    """What an error class means, from the error table."""
    return ERROR_TABLE.get(error_class, ("an error the pipeline could not handle by itself", ""))[0]


def class_handling(error_class: str) -> str:
    """What the pipeline does about an error class, from the error table."""
    return ERROR_TABLE.get(error_class, ("", "records it"))[1]


def class_action(error_class: str) -> str:
    """What an operator should do about an error class."""
    return OPERATOR_ACTIONS.get(error_class, "Look at `cin7xero dlq list` and the worker logs.")


def _class_value(error_class: ErrorClass | str) -> str:
    return error_class.value if isinstance(error_class, ErrorClass) else str(error_class)


# --- recording problems (inside the caller's transaction) -----------------------------------------


def note_problem(
    session: Session,
    tenant_pk: int,
    error_class: ErrorClass | str,
    example: str,
    *,
    now: datetime | None = None,
) -> None:
    """Count one occurrence of a problem that needs a person; the next flush decides whether to alert.

    Call it inside the transaction that records the problem (the dead letter, the pause), so the
    count commits or rolls back with it. One upsert and one locked update; it never sends.
    """
    now = now or utcnow()
    cls = _class_value(error_class)
    insert_ignore(
        session,
        AlertState,
        [
            {
                "tenant_id": tenant_pk,
                "error_class": cls,
                "opened_at": now,
                "last_seen_at": now,
                "pending_count": 0,
                "total_count": 0,
                "examples": [],
            }
        ],
        ["tenant_id", "error_class"],
    )
    state = session.scalar(
        select(AlertState)
        .where(AlertState.tenant_id == tenant_pk, AlertState.error_class == cls)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert state is not None
    if state.closed_at is not None:
        announced = state.last_sent_at is not None and state.last_sent_at >= state.closed_at
        if announced or state.opened_at is None:
            # A new episode: its own counts, and its first alert is not "more of the last one".
            state.opened_at = now
            state.pending_count = 0
            state.total_count = 0
            state.examples = []
        # Otherwise the closure was never announced (or not yet): the problem simply carries on.
        state.closed_at = None
    state.last_seen_at = now
    state.pending_count += 1
    state.total_count += 1
    examples = [str(e) for e in (state.examples or [])]
    examples.append(example[:MAX_EXAMPLE_CHARS])
    state.examples = examples[-MAX_EXAMPLES:]


def note_recovery(
    session: Session, tenant_pk: int, error_class: ErrorClass | str, *, now: datetime | None = None
) -> None:
    """Say that a problem class is over for this tenant (e.g. a Xero write succeeded after a pause).

    Cheap enough to call on every success: one conditional UPDATE that touches a row only while the
    problem is open. The next flush sends the recovery notice if an alert had gone out. Dead-letter
    classes (validation, mapping, poison) ignore this: they are over when their dead letters are.
    """
    cls = _class_value(error_class)
    if cls in DEAD_LETTER_CLASSES:
        return
    session.execute(
        update(AlertState)
        .where(AlertState.tenant_id == tenant_pk, AlertState.error_class == cls, AlertState.closed_at.is_(None))
        .values(closed_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


# --- the messages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One message to operators: a problem (with counts and examples) or its recovery."""

    tenant_key: str
    error_class: str
    kind: Literal["problem", "recovery"]
    # Occurrences since the previous alert about this problem, and since it opened.
    count: int
    total: int
    examples: tuple[str, ...] = ()
    opened_at: datetime | None = None
    at: datetime = field(default_factory=utcnow)

    @property
    def label(self) -> str:
        """The class as words: "day limit"."""
        return self.error_class.replace("_", " ")

    def subject(self) -> str:
        """One line, used as the e-mail subject and the first line elsewhere."""
        if self.kind == "recovery":
            return f"[cin7xero] tenant {self.tenant_key}: {self.label} errors recovered"
        plural = "" if self.count == 1 else "s"
        return f"[cin7xero] tenant {self.tenant_key}: {self.count} {self.label} error{plural}"

    def text(self) -> str:
        """The whole message as plain text."""
        since = f" since {self.opened_at.isoformat(timespec='seconds')}" if self.opened_at else ""
        if self.kind == "recovery":
            return "\n".join(
                [
                    self.subject(),
                    f"The {self.error_class} problem for tenant {self.tenant_key} has cleared "
                    f"({self.total} occurrence{'' if self.total == 1 else 's'}{since}).",
                    *([f"{self.count} more occurred after the last alert."] if self.count else []),
                ]
            )
        lines = [
            self.subject(),
            f"{self.count} new since the last alert, {self.total} in total{since}.",
            f"What it means: {class_meaning(self.error_class)}.",
            f"What the pipeline does: {class_handling(self.error_class)}.",
            f"What to do: {class_action(self.error_class)}",
        ]
        if self.examples:
            lines.append("Examples (most recent last):")
            lines.extend(f"- {example}" for example in self.examples)
        return "\n".join(lines)


# --- channels ---------------------------------------------------------------------------------------


class AlertDeliveryError(Exception):
    """A channel could not deliver; the message is safe to log (no URLs, no credentials)."""


class AlertChannel(Protocol):
    """Somewhere alerts go."""

    name: str

    def send(self, alert: Alert) -> None:
        """Deliver one alert; raise AlertDeliveryError, smtplib.SMTPException or OSError on failure."""
        ...


class LogChannel:
    """Alerts as log records: problems at ERROR, recoveries at INFO."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("cin7xero.alerts")

    def send(self, alert: Alert) -> None:
        """Log the alert text."""
        level = logging.INFO if alert.kind == "recovery" else logging.ERROR
        self._log.log(level, "%s", alert.text())


class SlackChannel:
    """A Slack-compatible incoming webhook: POST {"text": ...}."""

    name = "slack"

    def __init__(self, url: str, *, timeout: float = 10.0, retry_delay: float = 1.0) -> None:
        self._url = url  # the URL is the secret: it never appears in a log line or an exception
        self.timeout = timeout
        self.retry_delay = retry_delay

    def __repr__(self) -> str:
        return "SlackChannel(url=***)"

    def send(self, alert: Alert) -> None:
        """POST the alert; one retry on a 5xx or a connection failure."""
        problem = ""
        for attempt in range(2):
            if attempt:
                time.sleep(self.retry_delay)
            try:
                response = requests.post(self._url, json={"text": alert.text()}, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                # requests' messages quote the URL: keep only the kind of failure.
                problem = type(exc).__name__
                continue
            except requests.RequestException as exc:
                raise AlertDeliveryError(f"Slack webhook request failed ({type(exc).__name__})") from None
            if response.status_code < 300:
                return
            if response.status_code < 500:
                raise AlertDeliveryError(f"Slack webhook answered HTTP {response.status_code}")
            problem = f"HTTP {response.status_code}"
        raise AlertDeliveryError(f"Slack webhook failed twice ({problem})")


class EmailChannel:
    """SMTP e-mail, with optional STARTTLS and login."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        user: str = "",
        password: str = "",
        starttls: bool = False,
        timeout: float = 15.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = list(recipients)
        self.user = user
        self._password = password
        self.starttls = starttls
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"EmailChannel(host={self.host!r}, port={self.port}, recipients={self.recipients!r})"

    def send(self, alert: Alert) -> None:
        """Send the alert as one plain-text e-mail to every recipient."""
        message = EmailMessage()
        message["Subject"] = alert.subject()
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(alert.text())
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self._password)
            smtp.send_message(message)


def channels_from_settings(settings: Settings) -> list[AlertChannel]:
    """The channels ALERT_CHANNELS names; a channel missing its configuration is skipped with a warning."""
    channels: list[AlertChannel] = []
    for name in (part.strip().lower() for part in settings.alert_channels.split(",")):
        if not name:
            continue
        if name == "log":
            channels.append(LogChannel())
        elif name == "slack":
            url = settings.alert_slack_webhook_url.get_secret_value()
            if url:
                channels.append(SlackChannel(url))
            else:
                log.warning("alert channel slack is enabled but ALERT_SLACK_WEBHOOK_URL is empty")
        elif name == "email":
            recipients = [r.strip() for r in settings.alert_email_to.split(",") if r.strip()]
            if settings.alert_smtp_host and recipients:
                channels.append(
                    EmailChannel(
                        settings.alert_smtp_host,
                        settings.alert_smtp_port,
                        settings.alert_email_from,
                        recipients,
                        user=settings.alert_smtp_user,
                        password=settings.alert_smtp_password.get_secret_value(),
                        starttls=settings.alert_smtp_starttls,
                    )
                )
            else:
                log.warning("alert channel email is enabled but ALERT_SMTP_HOST or ALERT_EMAIL_TO is empty")
        else:
            log.warning("unknown alert channel %r in ALERT_CHANNELS (known: log, slack, email)", name)
    return channels


def deliver(alert: Alert, channels: Sequence[AlertChannel]) -> int:
    """Send one alert on every channel; a failing channel is logged and does not stop the others.

    Returns how many channels delivered.
    """
    delivered = 0
    for channel in channels:
        try:
            channel.send(alert)
        except AlertDeliveryError as exc:
            log.error("alert channel %s failed: %s", channel.name, exc)
        except smtplib.SMTPException as exc:
            log.error("alert channel %s failed: %s: %s", channel.name, type(exc).__name__, exc)
        except OSError as exc:
            log.error("alert channel %s failed: %s", channel.name, type(exc).__name__)
        else:
            delivered += 1
    return delivered


# --- the periodic flush -----------------------------------------------------------------------------


def _same(column: Any, value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column.is_(None) if value is None else column == value
    return result


def _claim(session: Session, state: AlertState, values: dict[str, Any]) -> bool:
    # The row is locked already on PostgreSQL; on SQLite (no FOR UPDATE) this conditional update is
    # what makes a second, concurrent flush find nothing left to claim.
    result = session.execute(
        update(AlertState)
        .where(
            AlertState.id == state.id,
            _same(AlertState.last_sent_at, state.last_sent_at),
            _same(AlertState.closed_at, state.closed_at),
            _same(AlertState.opened_at, state.opened_at),
            AlertState.pending_count == state.pending_count,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _has_open_dead_letters(session: Session, tenant_pk: int, error_class: str) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    DeadLetter.tenant_id == tenant_pk,
                    DeadLetter.resolved_at.is_(None),
                    DeadLetter.error_class == error_class,
                )
            )
        )
    )


def _decide(
    session: Session, tenant_pk: int, tenant_key: str, state: AlertState, now: datetime, window: timedelta
) -> Alert | None:
    """Update one state row for this flush; the alert to send if this flush claimed one."""
    cls = state.error_class
    alerted = state.last_sent_at is not None and state.opened_at is not None and state.last_sent_at >= state.opened_at
    examples = tuple(str(e) for e in (state.examples or []))
    cleared: dict[str, Any] = {"pending_count": 0, "examples": []}

    def recovery() -> Alert:
        return Alert(tenant_key, cls, "recovery", state.pending_count, state.total_count, (), state.opened_at, now)

    if state.closed_at is None and cls in DEAD_LETTER_CLASSES and not _has_open_dead_letters(session, tenant_pk, cls):
        if alerted:
            if _claim(session, state, {**cleared, "closed_at": now, "last_sent_at": now}):
                return recovery()
        else:
            _claim(session, state, {**cleared, "closed_at": now, "opened_at": None})
        return None
    if state.closed_at is None:
        due = state.pending_count > 0 and (state.last_sent_at is None or state.last_sent_at <= now - window)
        if due and _claim(session, state, {**cleared, "last_sent_at": now}):
            return Alert(
                tenant_key, cls, "problem", state.pending_count, state.total_count, examples, state.opened_at, now
            )
        return None
    # Closed by note_recovery since the last flush.
    if alerted and state.last_sent_at is not None and state.last_sent_at < state.closed_at:
        if _claim(session, state, {**cleared, "last_sent_at": now}):
            return recovery()
        return None
    if state.opened_at is not None and not alerted:
        # Over before anyone was told: nothing to announce, and the next problem is a new episode.
        _claim(session, state, {**cleared, "opened_at": None})
    return None


def flush_alerts(
    ctx: TenantContext, *, now: datetime | None = None, channels: Sequence[AlertChannel] | None = None
) -> list[Alert]:
    """Send what is due for this tenant: at most one message per (error class) per window.

    The state is committed before anything is sent, so a flush that dies mid-send does not send twice
    (alerts are at most once); `channels` defaults to those ALERT_CHANNELS configures.
    """
    now = now or utcnow()
    window = timedelta(seconds=ctx.settings.alert_window_seconds)
    due: list[Alert] = []
    with ctx.sessions() as session, session.begin():
        states = session.scalars(
            select(AlertState)
            .where(AlertState.tenant_id == ctx.tenant_pk)
            .order_by(AlertState.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        for state in states:
            alert = _decide(session, ctx.tenant_pk, ctx.tenant_key, state, now, window)
            if alert is not None:
                due.append(alert)
    if not due:
        return due
    targets = list(channels) if channels is not None else channels_from_settings(ctx.settings)
    for alert in due:
        delivered = deliver(alert, targets)
        log.info(
            "alert %s/%s for tenant %s: %d of %d channels delivered",
            alert.kind,
            alert.error_class,
            alert.tenant_key,
            delivered,
            len(targets),
        )
    return due

"""Where alerts go: the log, a Slack-compatible webhook and SMTP e-mail, the channels ALERT_CHANNELS
configures (`channels_from_settings`), and `deliver`, which sends one alert on each of them and lets a
failing channel stop none of the others.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Protocol

import requests

from pipeline.operations.alert_message import Alert
from pipeline.settings import Settings

log = logging.getLogger(__name__)


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


def slack_escape(text: str) -> str:
    """Text as Slack shows it literally: `&`, `<` and `>` escaped, so that a Cin7 value such as
    `<!channel>` or `<https://evil|click here>` can neither ping everyone nor become a link.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
                response = requests.post(self._url, json={"text": slack_escape(alert.text())}, timeout=self.timeout)
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
        """Send the alert as one plain-text e-mail to every recipient.

        Credentials never cross the network in clear: with a user set, the server must take STARTTLS
        (ALERT_SMTP_STARTTLS) or the alert is not sent (AlertDeliveryError), rather than logging in bare.
        """
        if self.user and not self.starttls:
            raise AlertDeliveryError(
                "refusing to log in to SMTP without TLS: set ALERT_SMTP_STARTTLS=true (or drop ALERT_SMTP_USER)"
            )
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


def deliver(alert: Alert, channels: Sequence[AlertChannel]) -> list[str]:
    """Send one alert on every channel; a failing channel is logged and does not stop the others.

    Returns the names of the channels that delivered.
    """
    delivered: list[str] = []
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
            delivered.append(channel.name)
    return delivered

"""Cin7 Core's webhook API, and the registrar that creates, updates or reactivates our subscriptions.

Running it again changes nothing: each subscription is compared with what we want first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import requests

from pipeline.errors import SyncError
from pipeline.http import send
from pipeline.ratelimit import limiter_for
from pipeline.settings import Settings
from pipeline.source.cin7core.client import cin7_error, cin7_limit, cin7_session, cin7_throttling
from pipeline.source.cin7core.events import normalise_event_type, subscribed_event_types


def auth_configured(settings: Settings) -> bool:
    """True when a bearer token or a basic user and password is configured."""
    token = settings.cin7_webhook_token.get_secret_value()
    return bool(token) or bool(settings.cin7_webhook_user and settings.cin7_webhook_password.get_secret_value())


class Cin7WebhooksClient:
    """Cin7's `webhooks` endpoint (GET/POST/PUT), with the same auth headers and throttle handling as Cin7Client."""

    def __init__(self, settings: Settings, *, session: requests.Session | None = None) -> None:
        self._settings = settings
        self._base = settings.cin7_api_url.rstrip("/")
        self._session = cin7_session(settings, session)
        self._limiter = limiter_for(settings.redis_url)

    def _call(self, method: str, body: Mapping[str, Any] | None = None) -> Any:
        # Registration shares the per-application 60 calls a minute with the running sync.
        response = send(
            self._session,
            method,
            f"{self._base}/webhooks",
            api="cin7",
            classify=lambda answer: cin7_error(answer, throttle_wait=self._settings.cin7_throttle_wait_seconds),
            limit=cin7_limit(self._settings, self._limiter),
            throttling=cin7_throttling(self._settings),
            data=json.dumps(body) if body else None,
        )
        return response.json() if response.content else None

    @staticmethod
    def _hooks(body: Any) -> list[dict[str, Any]]:
        hooks = body.get("Webhooks") if isinstance(body, dict) else body
        return [dict(h) for h in hooks or [] if isinstance(h, dict)]

    def list(self) -> list[dict[str, Any]]:
        """Every webhook subscription of the account."""
        return self._hooks(self._call("GET"))

    def create(self, hook: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new subscription; returns it as Cin7 stored it."""
        created = self._hooks(self._call("POST", hook))
        return created[0] if created else dict(hook)

    def update(self, hook: Mapping[str, Any]) -> dict[str, Any]:
        """PUT a subscription (by its `ID`); returns it as Cin7 stored it."""
        updated = self._hooks(self._call("PUT", hook))
        return updated[0] if updated else dict(hook)


RegistrationAction = Literal["created", "updated", "reactivated", "unchanged", "failed", "inactive (not ours)"]


@dataclass(frozen=True)
class RegistrationResult:
    """One row of what `register` did."""

    event_type: str
    action: RegistrationAction
    webhook_id: str | None
    url: str
    detail: str = ""


def desired_subscription(settings: Settings, event_type: str, url: str) -> dict[str, Any]:
    """The subscription we want for one event type: bearer auth when a token is set, else basic."""
    hook: dict[str, Any] = {
        "Type": event_type,
        "Name": f"cin7xero {event_type}",
        "IsActive": True,
        "ExternalURL": url,
        "ExternalHeaders": [],
    }
    token = settings.cin7_webhook_token.get_secret_value()
    if token:
        hook.update(
            ExternalAuthorizationType="bearerauth",
            ExternalBearerToken=token,
            ExternalUserName=None,
            ExternalPassword=None,
        )
    else:
        hook.update(
            ExternalAuthorizationType="basicauth",
            ExternalUserName=settings.cin7_webhook_user,
            ExternalPassword=settings.cin7_webhook_password.get_secret_value(),
            ExternalBearerToken=None,
        )
    return hook


def _same_url(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def _secret_differs(current: Any, wanted: Any) -> bool:
    # Cin7 may mask stored secrets when listing; only a value we can read counts as different.
    if current in (None, "") or (isinstance(current, str) and set(current) <= {"*"}):
        return False
    return bool(current != wanted)


def _differences(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    changed: list[str] = []
    if str(current.get("ExternalAuthorizationType") or "").lower() != wanted["ExternalAuthorizationType"]:
        changed.append("ExternalAuthorizationType")
    if wanted["ExternalAuthorizationType"] == "bearerauth":
        if _secret_differs(current.get("ExternalBearerToken"), wanted["ExternalBearerToken"]):
            changed.append("ExternalBearerToken")
    else:
        if (current.get("ExternalUserName") or "") != wanted["ExternalUserName"]:
            changed.append("ExternalUserName")
        if _secret_differs(current.get("ExternalPassword"), wanted["ExternalPassword"]):
            changed.append("ExternalPassword")
    if current.get("ExternalURL") != wanted["ExternalURL"]:
        changed.append("ExternalURL")
    return changed


def register_webhooks(
    settings: Settings,
    url: str,
    *,
    client: Cin7WebhooksClient | None = None,
    event_types: Iterable[str] | None = None,
    force: bool = False,
) -> list[RegistrationResult]:
    """Create or update our subscriptions (one per handled type, pointing at `url`, purchases' types
    too with SYNC_PURCHASES); idempotent.

    An existing subscription is ours when its type matches (loosely) and its URL is `url`. A
    deactivated one (Cin7 gives up after 6 failed deliveries) is reactivated. Inactive
    subscriptions of other URLs for the same types are reported, not touched.
    """
    if not auth_configured(settings):
        raise ValueError("set CIN7_WEBHOOK_TOKEN (or CIN7_WEBHOOK_USER and CIN7_WEBHOOK_PASSWORD) before registering")
    client = client or Cin7WebhooksClient(settings)
    existing = client.list()
    results: list[RegistrationResult] = []
    for event_type in event_types or subscribed_event_types(purchases=settings.sync_purchases):
        wanted = desired_subscription(settings, event_type, url)
        same_type = [
            h for h in existing if normalise_event_type(str(h.get("Type") or "")) == normalise_event_type(event_type)
        ]
        ours = [h for h in same_type if _same_url(h.get("ExternalURL"), url)]
        for other in same_type:
            if other not in ours and other.get("IsActive") is False:
                results.append(
                    RegistrationResult(
                        event_type, "inactive (not ours)", other.get("ID"), str(other.get("ExternalURL"))
                    )
                )
        try:
            if not ours:
                created = client.create(wanted)
                results.append(RegistrationResult(event_type, "created", created.get("ID"), url))
                continue
            current = ours[0]
            inactive = current.get("IsActive") is False
            changed = _differences(current, wanted)
            if not inactive and not changed and not force:
                results.append(RegistrationResult(event_type, "unchanged", current.get("ID"), url))
                continue
            client.update({**current, **wanted, "ID": current.get("ID"), "Name": current.get("Name") or wanted["Name"]})
            action: RegistrationAction = "reactivated" if inactive else "updated"
            detail = "was deactivated by Cin7" if inactive else ", ".join(changed) or "forced"
            results.append(RegistrationResult(event_type, action, current.get("ID"), url, detail))
        except SyncError as exc:
            results.append(RegistrationResult(event_type, "failed", None, url, exc.message))
    return results

"""The Cin7 stand-in's webhooks endpoints: ``GET``/``POST``/``PUT``/``DELETE webhooks``.

Validates and normalises webhook definitions the way Cin7 does, with at most five webhooks of one type.
"""

from __future__ import annotations

import uuid
from typing import Any

from pipeline.standins.cin7.encoding import loads
from pipeline.standins.cin7.responses import BadRequest, Response, error_response, json_response
from pipeline.standins.cin7.state import Cin7State

_WEBHOOKS_PER_TYPE = 5
_AUTH_TYPES = ("noauth", "basicauth", "bearerauth")


class WebhooksMixin(Cin7State):
    """Registered webhooks."""

    def _webhooks_get(self, query: dict[str, str], body: bytes) -> Response:
        with self._lock:
            return json_response(200, {"Webhooks": self._webhooks})

    @staticmethod
    def _webhook_body(body: bytes) -> dict[str, Any]:
        try:
            payload = loads(body)
        except ValueError as exc:
            raise BadRequest("Request body is not valid JSON") from exc
        if isinstance(payload, dict) and isinstance(payload.get("Webhooks"), list) and payload["Webhooks"]:
            payload = payload["Webhooks"][0]
        if not isinstance(payload, dict):
            raise BadRequest("Request body must be a webhook object")
        return payload

    @staticmethod
    def _validate_webhook(hook: dict[str, Any]) -> None:
        if not str(hook.get("Type") or "").strip():
            raise BadRequest("Type is required")
        if not str(hook.get("ExternalURL") or "").strip():
            raise BadRequest("ExternalURL is required")
        auth = str(hook.get("ExternalAuthorizationType") or "noauth").lower()
        if auth not in _AUTH_TYPES:
            raise BadRequest(f"ExternalAuthorizationType must be one of {', '.join(_AUTH_TYPES)}")
        headers = hook.get("ExternalHeaders") or []
        if not isinstance(headers, list) or not all(isinstance(h, dict) and "Key" in h for h in headers):
            raise BadRequest("ExternalHeaders must be a list of {Key, Value}")

    @staticmethod
    def _normalise_webhook(hook: dict[str, Any], hook_id: str) -> dict[str, Any]:
        return {
            "ID": hook_id,
            "Type": str(hook["Type"]).strip(),
            "Name": hook.get("Name") or "",
            "IsActive": bool(hook.get("IsActive", True)),
            "ExternalURL": str(hook["ExternalURL"]).strip(),
            "ExternalAuthorizationType": str(hook.get("ExternalAuthorizationType") or "noauth").lower(),
            "ExternalUserName": hook.get("ExternalUserName"),
            "ExternalPassword": hook.get("ExternalPassword"),
            "ExternalBearerToken": hook.get("ExternalBearerToken"),
            "ExternalHeaders": list(hook.get("ExternalHeaders") or []),
        }

    def _webhooks_post(self, query: dict[str, str], body: bytes) -> Response:
        hook = self._webhook_body(body)
        self._validate_webhook(hook)
        with self._lock:
            same_type = [w for w in self._webhooks if w["Type"].lower() == str(hook["Type"]).strip().lower()]
            if len(same_type) >= _WEBHOOKS_PER_TYPE:
                return error_response(400, f"A maximum of {_WEBHOOKS_PER_TYPE} webhooks per type is allowed.")
            created = self._normalise_webhook(hook, str(uuid.uuid4()))
            self._webhooks.append(created)
            return json_response(200, {"Webhooks": [created]})

    def _webhooks_put(self, query: dict[str, str], body: bytes) -> Response:
        hook = self._webhook_body(body)
        hook_id = str(hook.get("ID") or query.get("id") or "").strip().lower()
        if not hook_id:
            return error_response(400, "ID is required")
        with self._lock:
            for i, existing in enumerate(self._webhooks):
                if existing["ID"].lower() == hook_id:
                    merged = {**existing, **hook}
                    self._validate_webhook(merged)
                    if merged["Type"].strip().lower() != existing["Type"].lower():
                        same_type = [w for w in self._webhooks if w["Type"].lower() == merged["Type"].lower()]
                        if len(same_type) >= _WEBHOOKS_PER_TYPE:
                            limit = _WEBHOOKS_PER_TYPE
                            return error_response(400, f"A maximum of {limit} webhooks per type is allowed.")
                    updated = self._normalise_webhook(merged, existing["ID"])
                    self._webhooks[i] = updated
                    return json_response(200, {"Webhooks": [updated]})
        return error_response(404, "Webhook not found")

    def _webhooks_delete(self, query: dict[str, str], body: bytes) -> Response:
        hook_id = (query.get("id") or "").strip().lower()
        if not hook_id:
            return error_response(400, "ID is required")
        with self._lock:
            remaining = [w for w in self._webhooks if w["ID"].lower() != hook_id]
            if len(remaining) == len(self._webhooks):
                return error_response(404, "Webhook not found")
            self._webhooks = remaining
            return json_response(200, {"Webhooks": remaining})

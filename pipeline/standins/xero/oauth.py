"""The Xero stand-in's OAuth 2.0 and identity endpoints.

Client authentication, the token endpoint (client credentials, authorization code, rotating refresh
tokens), revocation, the auto-consenting authorize endpoint, bearer-token checks for API calls, and
``GET``/``DELETE /connections``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from pipeline.standins.xero.responses import Headers, Response, json_response, not_found, oauth_error, text_response
from pipeline.standins.xero.state import AccessToken, AuthCode, RefreshToken, XeroState

DEFAULT_SCOPE = "accounting.transactions accounting.contacts accounting.settings"
AUTH_CODE_TTL_SECONDS = 300.0
REFRESH_TOKEN_TTL_SECONDS = 60 * 24 * 3600.0


class OAuthMixin(XeroState):
    """Tokens, auth codes, client checks and connections."""

    def _client_from(self, headers: Headers, form: Mapping[str, str]) -> str | None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            client_id, _, secret = decoded.partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
        if (
            client_id == self.client_id
            and secret is not None
            and secrets.compare_digest(secret.encode(), self.client_secret.encode())
        ):
            return client_id
        return None

    def _issue_access_token(self, client_id: str, scope: str, family: str | None) -> tuple[str, int]:
        now = int(time.time())
        ttl = int(self.access_token_ttl_seconds)
        header = {"alg": "RS256", "kid": "standin", "typ": "JWT"}
        payload = {
            "nbf": now,
            "exp": now + ttl,
            "iss": self.url + "/identity",
            "aud": "https://identity.xero.com/resources",
            "client_id": client_id,
            "sub": hashlib.sha256(client_id.encode()).hexdigest()[:32],
            "auth_time": now,
            "xero_userid": self._org_id,
            "global_session_id": family or uuid.uuid4().hex,
            "jti": uuid.uuid4().hex,
            "authentication_event_id": self._auth_event_id,
            "scope": scope.split(),
        }

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

        token = ".".join(
            (b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(secrets.token_bytes(32)))
        )
        self._access_tokens[token] = AccessToken(time.time() + ttl, family, client_id)
        return token, ttl

    def _issue_refresh_token(self, client_id: str, scope: str, family: str) -> str:
        token = secrets.token_hex(32)
        self._refresh_tokens[token] = RefreshToken(family, client_id, scope, time.time() + REFRESH_TOKEN_TTL_SECONDS)
        return token

    def _token(self, headers: Headers, body: bytes) -> Response:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            self._token_requests += 1
            client_id = self._client_from(headers, form)
            if client_id is None:
                return oauth_error(400, "invalid_client")
            grant = form.get("grant_type", "")
            now = time.time()
            if grant == "client_credentials":
                scope = form.get("scope") or DEFAULT_SCOPE
                token, ttl = self._issue_access_token(client_id, scope, None)
                return json_response(
                    200,
                    {"access_token": token, "expires_in": ttl, "token_type": "Bearer", "scope": scope},
                    [("Cache-Control", "no-store")],
                )
            if grant == "authorization_code":
                code = self._auth_codes.pop(form.get("code", ""), None)
                if (
                    code is None
                    or code.expires_at < now
                    or code.client_id != client_id
                    or ("redirect_uri" in form and form["redirect_uri"] != code.redirect_uri)
                ):
                    return oauth_error(400, "invalid_grant")
                family = uuid.uuid4().hex
                return self._token_pair(client_id, code.scope, family)
            if grant == "refresh_token":
                old = self._refresh_tokens.get(form.get("refresh_token", ""))
                if (
                    old is None
                    or old.client_id != client_id
                    or old.family in self._revoked_families
                    or old.expires_at < now
                    or (old.superseded_at is not None and now > old.superseded_at + self.refresh_grace_seconds)
                ):
                    return oauth_error(400, "invalid_grant")
                if old.superseded_at is None:
                    old.superseded_at = now
                return self._token_pair(client_id, old.scope, old.family)
            return oauth_error(400, "unsupported_grant_type")

    def _token_pair(self, client_id: str, scope: str, family: str) -> Response:
        token, ttl = self._issue_access_token(client_id, scope, family)
        payload: dict[str, Any] = {
            "access_token": token,
            "expires_in": ttl,
            "token_type": "Bearer",
            "refresh_token": self._issue_refresh_token(client_id, scope, family),
            "scope": scope,
        }
        if "openid" in scope.split():
            payload["id_token"] = token
        return json_response(200, payload, [("Cache-Control", "no-store")])

    def _revoke(self, headers: Headers, body: bytes) -> Response:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            if self._client_from(headers, form) is None:
                return oauth_error(400, "invalid_client")
            refresh = self._refresh_tokens.get(form.get("token", ""))
            if refresh is not None:
                self._revoked_families.add(refresh.family)
            return Response(200, [], b"")

    def _authorize(self, query: str) -> Response:
        params = dict(parse_qsl(query, keep_blank_values=True))
        if params.get("client_id") != self.client_id:
            return text_response(400, "invalid_client")
        if params.get("response_type") != "code" or not params.get("redirect_uri"):
            return text_response(400, "invalid_request")
        code = secrets.token_urlsafe(24)
        scope = params.get("scope") or DEFAULT_SCOPE
        with self._lock:
            self._auth_codes[code] = AuthCode(
                self.client_id, params["redirect_uri"], scope, time.time() + AUTH_CODE_TTL_SECONDS
            )
        out = {"code": code, "scope": scope}
        if "state" in params:
            out["state"] = params["state"]
        redirect = params["redirect_uri"]
        location = redirect + ("&" if "?" in redirect else "?") + urlencode(out)
        return Response(302, [("Location", location)], b"")

    def _bearer_problem(self, headers: Headers) -> Response | None:
        """401 for a missing, unknown, revoked or expired access token (caller holds the lock)."""
        auth = headers.get("Authorization") or ""
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        record = self._access_tokens.get(token)
        if record is None or (record.family is not None and record.family in self._revoked_families):
            detail = "AuthorizationUnsuccessful"
        elif record.expires_at <= time.time():
            when = dt.datetime.fromtimestamp(record.expires_at, dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
            detail = f"TokenExpired: token expired at {when}"
        else:
            return None
        return json_response(
            401,
            {
                "Type": None,
                "Title": "Unauthorized",
                "Status": 401,
                "Detail": detail,
                "Instance": str(uuid.uuid4()),
                "Extensions": {},
            },
            [("WWW-Authenticate", 'Bearer error="invalid_token"')],
        )

    def _connections(self, headers: Headers) -> Response:
        with self._lock:
            problem = self._bearer_problem(headers)
            if problem is not None:
                return problem
            if not self._connected:
                return json_response(200, [])
            stamp = self._created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            return json_response(
                200,
                [
                    {
                        "id": self._connection_id,
                        "authEventId": self._auth_event_id,
                        "tenantId": self.tenant_id,
                        "tenantType": "ORGANISATION",
                        "tenantName": self.org_name,
                        "createdDateUtc": stamp,
                        "updatedDateUtc": stamp,
                    }
                ],
            )

    def _disconnect(self, headers: Headers, connection_id: str) -> Response:
        with self._lock:
            problem = self._bearer_problem(headers)
            if problem is not None:
                return problem
            if connection_id != self._connection_id or not self._connected:
                return not_found()
            self._connected = False
            return Response(204, [], b"")

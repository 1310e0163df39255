"""Xero OAuth 2.0: client-credentials (custom connection) and authorization-code with rotating refresh tokens.

Tokens live in the ledger, encrypted with Fernet. A refresh happens under a row lock on the token
row, so that concurrent workers refresh once: the others wait, re-read, and find the new token (a
second refresh with the old refresh token would end in `invalid_grant`). The rotated refresh token is
committed before the new access token is used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import requests
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import ErrorClass, SyncError, classify_xero_response, transport_error
from pipeline.ledger.models import OAuthToken, utcnow
from pipeline.settings import Settings

log = logging.getLogger(__name__)

# Refresh this long before expiry; more than the SDK's own 60 s buffer so it never tries itself.
REFRESH_MARGIN_SECONDS = 120
# Xero forgets a refresh token unused for 60 days.
REFRESH_TOKEN_LIFETIME = timedelta(days=60)
# The keys xero-python accepts in a token dict: anything else raises TypeError inside the SDK.
SDK_TOKEN_KEYS = ("access_token", "scope", "expires_in", "token_type", "expires_at", "refresh_token", "id_token")


def configured_keys(settings: Settings) -> list[str]:
    """TOKEN_ENCRYPTION_KEYS (newest first), then TOKEN_ENCRYPTION_KEY: the keys an operator set."""
    keys = [k.strip() for k in settings.token_encryption_keys.get_secret_value().split(",") if k.strip()]
    single = settings.token_encryption_key.get_secret_value().strip()
    return keys + ([single] if single and single not in keys else [])


def _derived_key(settings: Settings) -> Fernet:
    seed = ("cin7xero-token-key:" + settings.xero_client_secret.get_secret_value()).encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(seed).digest()))


def fernet_for(settings: Settings) -> MultiFernet:
    """The cipher for tokens at rest: it encrypts with the newest configured key (else a key derived from
    the client secret) and decrypts with any of them, the derived one last.
    """
    keys = [Fernet(key.encode()) for key in configured_keys(settings)]
    return MultiFernet([*keys, _derived_key(settings)])


@dataclass(frozen=True)
class TokenSet:
    """A decrypted token set; never logged (repr hides the secrets)."""

    access_token: str
    expires_at: float
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret
    scope: str = ""
    refresh_token: str | None = None

    def __repr__(self) -> str:
        return f"TokenSet(expires_at={self.expires_at:.0f}, refresh={'yes' if self.refresh_token else 'no'})"

    def fresh(self, now: float | None = None) -> bool:
        """True while the access token is good for at least the refresh margin."""
        return self.expires_at - (now if now is not None else time.time()) > REFRESH_MARGIN_SECONDS

    def for_sdk(self) -> dict[str, Any]:
        """The dict xero-python's token getter must return (only keys it knows)."""
        token: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "expires_in": max(0, int(self.expires_at - time.time())),
            "scope": self.scope.split() if self.scope else [],
        }
        if self.refresh_token:
            token["refresh_token"] = self.refresh_token
        return token

    @classmethod
    def from_response(cls, body: dict[str, Any], *, previous_refresh: str | None = None) -> TokenSet:
        """Build from a token endpoint response."""
        return cls(
            access_token=str(body["access_token"]),
            expires_at=time.time() + float(body.get("expires_in", 1800)),
            token_type=str(body.get("token_type", "Bearer")),
            scope=str(body.get("scope", "")),
            refresh_token=body.get("refresh_token") or previous_refresh,
        )


class XeroTokenManager:
    """Hands out a valid access token for one tenant; obtains or refreshes it when needed."""

    def __init__(self, settings: Settings, tenant_pk: int, sessions: sessionmaker[Session]) -> None:
        self._settings = settings
        self._tenant_pk = tenant_pk
        self._sessions = sessions
        self._fernet = fernet_for(settings)
        # What encrypts: the newest key. A token read under any other is re-encrypted with it.
        self._newest = Fernet(configured_keys(settings)[0].encode()) if configured_keys(settings) else None
        self._cached: TokenSet | None = None
        self._lock = threading.Lock()
        self._http = requests.Session()
        self._rejected: str | None = None

    # --- storage ---------------------------------------------------------------------------------
    def _encrypt(self, token: TokenSet) -> str:
        raw = json.dumps(
            {
                "access_token": token.access_token,
                "expires_at": token.expires_at,
                "token_type": token.token_type,
                "scope": token.scope,
                "refresh_token": token.refresh_token,
            }
        )
        return self._fernet.encrypt(raw.encode()).decode()

    def _decrypt(self, blob: str) -> TokenSet:
        try:
            data = json.loads(self._fernet.decrypt(blob.encode()))
        except InvalidToken as exc:
            raise SyncError(
                ErrorClass.CONFIGURATION,
                "stored Xero token cannot be decrypted by any of TOKEN_ENCRYPTION_KEYS: keep the old key in the "
                "list (after the new one) until the token is re-encrypted, or reconnect Xero",
                api="xero",
            ) from exc
        return TokenSet(
            access_token=data["access_token"],
            expires_at=float(data["expires_at"]),
            token_type=data.get("token_type", "Bearer"),
            scope=data.get("scope", ""),
            refresh_token=data.get("refresh_token"),
        )

    def store(self, token: TokenSet, grant: str) -> None:
        """Persist a token set obtained outside the refresh path (e.g. `xero connect`)."""
        with self._sessions() as session, session.begin():
            row = session.scalar(
                select(OAuthToken).where(OAuthToken.tenant_id == self._tenant_pk, OAuthToken.provider == "xero")
            )
            self._write_row(session, row, token, grant, new_refresh_token=bool(token.refresh_token))
        self._cached = token

    def _write_row(
        self, session: Session, row: OAuthToken | None, token: TokenSet, grant: str, *, new_refresh_token: bool
    ) -> OAuthToken:
        """The token set, encrypted, on the tenant's row (made if missing); a new refresh token restarts
        its 60-day clock.

        A refresh token is a standing credential to the books: it is never stored under the key derived
        from the client secret (anyone with the secret and the database could read it).
        """
        if token.refresh_token and self._newest is None:
            raise SyncError(
                ErrorClass.CONFIGURATION,
                "set TOKEN_ENCRYPTION_KEYS (a Fernet key: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())') before storing a Xero refresh token",
                api="xero",
            )
        if row is None:
            row = OAuthToken(tenant_id=self._tenant_pk, provider="xero", grant=grant, encrypted_token="")
            session.add(row)
        row.grant = grant
        row.encrypted_token = self._encrypt(token)
        row.access_expires_at = datetime.fromtimestamp(token.expires_at, UTC)
        if new_refresh_token:
            row.refresh_token_issued_at = utcnow()
        return row

    # --- the token the SDK asks for ----------------------------------------------------------------
    def current(self) -> TokenSet:
        """A token valid for at least the refresh margin."""
        with self._lock:
            if self._cached is not None and self._cached.fresh() and self._cached.access_token != self._rejected:
                return self._cached
            for _ in range(2):
                try:
                    self._cached = self._obtain_locked()
                    return self._cached
                except IntegrityError:
                    # Another process inserted the first token row at the same moment: read theirs.
                    continue
            self._cached = self._obtain_locked()
            return self._cached

    def invalidate(self) -> None:
        """Xero rejected the current access token (401): the next call obtains a new one."""
        with self._lock:
            if self._cached is not None:
                self._rejected = self._cached.access_token
            self._cached = None

    def _ensure_row(self) -> None:
        """Make sure the token row exists, so that the very first token is obtained under its lock too.

        Without a row there is nothing to lock: every worker starting at once would ask Xero for a
        token of its own (and, with a refresh token, all but one would end in invalid_grant).
        """
        with self._sessions() as session, session.begin():
            dialect = session.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            session.execute(
                insert(OAuthToken)
                .values(
                    tenant_id=self._tenant_pk,
                    provider="xero",
                    grant="client_credentials",
                    encrypted_token="",
                    updated_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["tenant_id", "provider"])
            )

    def _stored(self, row: OAuthToken | None) -> TokenSet | None:
        """The row's token (re-encrypted with the newest key when an older one encrypted it), or None.

        A client-credentials token is only a cache: one no key opens (the client secret it was derived
        from was rotated) is dropped and fetched anew rather than pausing the tenant.
        """
        if row is None or not row.encrypted_token:
            return None
        try:
            token = self._decrypt(row.encrypted_token)
        except SyncError:
            if row.grant == "client_credentials":
                log.warning("stored Xero client-credentials token unreadable (key or secret rotated): fetching anew")
                return None
            raise
        if self._newest is not None:
            try:
                self._newest.decrypt(row.encrypted_token.encode())
            except InvalidToken:
                row.encrypted_token = self._encrypt(token)
                log.info("stored Xero token re-encrypted with the newest TOKEN_ENCRYPTION_KEYS key")
        return token

    def _obtain_locked(self) -> TokenSet:
        self._ensure_row()
        with self._sessions() as session, session.begin():
            row = session.scalar(
                select(OAuthToken)
                .where(OAuthToken.tenant_id == self._tenant_pk, OAuthToken.provider == "xero")
                .with_for_update()
            )
            stored = self._stored(row)
            # Whoever held the lock before us may already have refreshed: use theirs unless it is the
            # very token Xero just rejected.
            if stored is not None and stored.fresh() and stored.access_token != self._rejected:
                return stored
            if stored is not None and stored.refresh_token:
                token = self._refresh(stored.refresh_token)
                grant = "authorization_code"
            else:
                token = self._client_credentials()
                grant = "client_credentials"
            rotated = bool(token.refresh_token) and (stored is None or token.refresh_token != stored.refresh_token)
            row = self._write_row(session, row, token, grant, new_refresh_token=rotated)
            log.info("xero token obtained by %s, valid until %s", grant, row.access_expires_at)
            return token

    # --- token endpoint ----------------------------------------------------------------------------
    def _post_token(self, form: dict[str, str]) -> dict[str, Any]:
        auth = (self._settings.xero_client_id, self._settings.xero_client_secret.get_secret_value())
        try:
            response = self._http.post(self._settings.xero_token_url, data=form, auth=auth, timeout=(5, 30))
        except requests.RequestException as exc:
            raise transport_error("xero", exc) from exc
        if response.status_code != 200:
            raise classify_xero_response(response.status_code, response.headers, response.content)
        body: dict[str, Any] = response.json()
        return body

    def _client_credentials(self) -> TokenSet:
        if not self._settings.xero_client_id:
            raise SyncError(ErrorClass.CONFIGURATION, "XERO_CLIENT_ID is not set", api="xero")
        return TokenSet.from_response(self._post_token({"grant_type": "client_credentials"}))

    def _refresh(self, refresh_token: str) -> TokenSet:
        body = self._post_token({"grant_type": "refresh_token", "refresh_token": refresh_token})
        return TokenSet.from_response(body, previous_refresh=refresh_token)

    def exchange_code(self, code: str) -> TokenSet:
        """Authorization-code flow: trade the callback's code for tokens and store them."""
        body = self._post_token(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": self._settings.xero_redirect_uri}
        )
        token = TokenSet.from_response(body)
        self.store(token, "authorization_code")
        return token

    def refresh_token_age(self) -> timedelta | None:
        """How long since the stored refresh token was issued (None for client credentials)."""
        with self._sessions() as session:
            row = session.scalar(
                select(OAuthToken).where(OAuthToken.tenant_id == self._tenant_pk, OAuthToken.provider == "xero")
            )
            if row is None or row.refresh_token_issued_at is None:
                return None
            return utcnow() - row.refresh_token_issued_at


def consent_url(settings: Settings, state: str | None = None) -> tuple[str, str]:
    """The URL a person opens to connect an organisation, and the state value to expect back."""
    state = state or secrets.token_urlsafe(16)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.xero_client_id,
            "redirect_uri": settings.xero_redirect_uri,
            "scope": settings.xero_scopes,
            "state": state,
        }
    )
    return f"{settings.xero_authorize_url}?{query}", state


def code_from_callback(callback_url: str, expected_state: str | None) -> str:
    """Extract the authorization code from the redirect URL, checking the state."""
    query = parse_qs(urlparse(callback_url).query)
    if "error" in query:
        raise SyncError(ErrorClass.CONFIGURATION, f"Xero consent failed: {query['error'][0]}", api="xero")
    if expected_state is not None and query.get("state", [None])[0] != expected_state:
        raise SyncError(ErrorClass.CONFIGURATION, "state mismatch in the Xero callback", api="xero")
    codes = query.get("code")
    if not codes:
        raise SyncError(ErrorClass.CONFIGURATION, "the callback URL carries no code", api="xero")
    return codes[0]

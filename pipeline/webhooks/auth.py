"""Webhook credentials: a bearer token or Basic auth, compared in constant time before the body is read."""

from __future__ import annotations

import base64
import binascii
import hmac

from pipeline.settings import Settings


def is_authorised(header: str | None, settings: Settings) -> bool:
    """Check an `Authorization` header against the configured credentials in constant time."""
    if not header:
        return False
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    token = settings.cin7_webhook_token.get_secret_value()
    if scheme.lower() == "bearer" and token:
        return hmac.compare_digest(credential.encode(), token.encode())
    user = settings.cin7_webhook_user
    password = settings.cin7_webhook_password.get_secret_value()
    if scheme.lower() == "basic" and user and password:
        try:
            decoded = base64.b64decode(credential, validate=True)
        except (binascii.Error, ValueError):
            return False
        given_user, _, given_password = decoded.partition(b":")
        # Both comparisons always run: no early exit that would time the user name.
        user_ok = hmac.compare_digest(given_user, user.encode())
        password_ok = hmac.compare_digest(given_password, password.encode())
        return user_ok and password_ok
    return False

"""Idempotency keys for Xero writes, derived from what is sent."""

from __future__ import annotations

import hashlib
from typing import Any

from mappings import canonical_json


def idempotency_key(tenant_key: str, operation: str, body: Any) -> str:
    """Same request -> same key, so Xero replays instead of writing twice within its 6-minute window."""
    digest = hashlib.sha256(f"{tenant_key}|{operation}|{canonical_json({'b': body})}".encode()).hexdigest()
    return f"cin7xero-{digest[:48]}"

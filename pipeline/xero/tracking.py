"""Helpers of `XeroClient`'s tracking-category calls: the per-option Idempotency-Key and the active view.

The SDK's `create_tracking_options` sends one TrackingOption per call (`PUT /TrackingCategories/{id}/Options`),
so a batch of names is several calls, each with its own key derived from the caller's one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

#: Xero's limit on an Idempotency-Key (xero.md "Idempotency-Key").
IDEMPOTENCY_KEY_MAX = 128


def option_idempotency_key(idempotency_key: str, name: str) -> str:
    """The key of one option's call: the caller's key plus a digest of the name, within Xero's 128 characters.

    The same key and name always give the same key, so a retried batch replays rather than duplicates.
    """
    suffix = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
    base = idempotency_key
    if len(base) + 1 + len(suffix) > IDEMPOTENCY_KEY_MAX:
        # Still derived from the whole key, so two long keys that share a prefix stay distinct.
        base = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()
    return f"{base}:{suffix}"


def unique_names(names: Sequence[str]) -> list[str]:
    """The names in order, each once: a repeat would only be refused by Xero as a duplicate of the first."""
    return list(dict.fromkeys(names))


def active_categories(categories: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ACTIVE categories, each with only its ACTIVE options (what lines may name)."""
    return [
        {**category, "Options": [o for o in category.get("Options") or [] if o.get("Status", "ACTIVE") == "ACTIVE"]}
        for category in categories
        if category.get("Status", "ACTIVE") == "ACTIVE"
    ]

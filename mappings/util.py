"""Small pure helpers shared by the mappings and the pipeline: rounding, normalising, hashing."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "CENT",
    "canonical_json",
    "clean_text",
    "content_hash",
    "decimal_to_str",
    "normalise_email",
    "normalise_name",
    "round_half_up",
]

CENT = Decimal("0.01")
_WHITESPACE = re.compile(r"\s+")


def round_half_up(value: Decimal, places: int = 2) -> Decimal:
    """Round as Cin7 and Xero do (half away from zero), not banker's rounding."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def decimal_to_str(value: Decimal) -> str:
    """Plain positional notation: ``Decimal("1E+2")`` must go out as ``"100"``, never ``"1E+2"``."""
    text = format(value, "f")
    return "0" if text in ("-0", "-0.0") else text


def clean_text(value: str | None) -> str | None:
    """Trimmed text, or None when blank, so empty strings never reach a payload."""
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None


def normalise_email(email: str | None) -> str | None:
    """An e-mail for matching: trimmed and casefolded; None when blank."""
    cleaned = clean_text(email)
    return cleaned.casefold() if cleaned is not None else None


def normalise_name(name: str) -> str:
    """A name for matching only (never sent): trimmed, inner whitespace collapsed, casefolded."""
    return _WHITESPACE.sub(" ", name).strip().casefold()


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return decimal_to_str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot hash a value of type {type(value).__name__}")


def canonical_json(payload: Mapping[str, Any]) -> str:
    """The one text form of a payload: sorted keys, no spaces, Unicode kept as is."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def content_hash(payload: Mapping[str, Any]) -> str:
    """SHA-256 hex of :func:`canonical_json`; equal payloads hash equal whatever their key order."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()

"""Cin7's value forms for generated data: timestamps, document dates, ``Decimal`` amounts and seeded UUIDs."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
ONE = Decimal(1)
ZERO = Decimal(0)


def format_timestamp(moment: datetime) -> str:
    """Cin7's ``Updated``/``LastModifiedOn`` form: ``yyyy-MM-ddTHH:mm:ss.fffZ`` (UTC, milliseconds)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def format_date(day: date) -> str:
    """Cin7's document date form: ``yyyy-MM-ddT00:00:00`` without a zone."""
    return f"{day:%Y-%m-%d}T00:00:00"


def parse_timestamp(value: str) -> datetime:
    """Parse a Cin7 timestamp with or without ``Z``/offset; zone-less values are UTC."""
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_decimal(value: Any) -> Decimal:
    """An amount as ``Decimal`` (a float through its text, so ``12.3456`` stays exact); TypeError for others."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise TypeError(f"not an amount: {value!r}")
    # str() first so a float such as 12.3456 becomes exactly Decimal("12.3456")
    return Decimal(str(value))


def round_cents(value: Decimal) -> Decimal:
    """Round half-up to cents."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def random_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng``, so a seed always gives the same IDs."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))

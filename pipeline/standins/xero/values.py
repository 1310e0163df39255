"""Value conversions shared by the Xero stand-in's endpoints: text, GUIDs, lists, dates and amounts.

They turn request values into what the store keeps (``as_text``, ``split_csv``, ``parse_http_date``) and
stored values into Xero JSON (``jsonable`` with a ``Num`` that writes amounts as floats or keeps Decimals).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pipeline.standins.xero.data import ms_date, ms_datetime

ZERO_GUID = "00000000-0000-0000-0000-000000000000"


#: How a rendering writes amounts: ``as_float`` for the HTTP API, ``as_decimal`` for in-process access.
Num = Callable[[Decimal], Any]
#: A stored contact, invoice, line or history record, keyed by its Xero field names.
Record = dict[str, Any]


def as_float(value: Decimal) -> float:
    """An amount as a JSON number, as the HTTP API writes it."""
    return float(value)


def as_decimal(value: Decimal) -> Decimal:
    """An amount kept as it is, as in-process access returns it."""
    return value


def utc_now() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


def is_guid(text: str) -> bool:
    """Whether ``text`` is a GUID in its 36-character form (else it may be a number or a name)."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36


def split_csv(value: str | None) -> list[str]:
    """The items of a comma-separated query parameter (``IDs``, ``Statuses`` ...), quotes stripped."""
    if not value:
        return []
    return [part.strip().strip('"') for part in value.split(",") if part.strip()]


def as_text(value: Any) -> str | None:
    """A request field as text (``None`` stays ``None``)."""
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def jsonable(value: Any, num: Num) -> Any:
    """A stored value as Xero JSON: amounts through ``num``, dates and datetimes as MS-JSON dates."""
    if isinstance(value, Decimal):
        return num(value)
    if isinstance(value, dict):
        return {k: jsonable(v, num) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v, num) for v in value]
    if isinstance(value, dt.datetime):
        return ms_datetime(value)
    if isinstance(value, dt.date):
        return ms_date(value)
    return value


def parse_http_date(value: str) -> dt.datetime | None:
    """If-Modified-Since: xero-python sends ISO 8601; browsers and curl send RFC 1123."""
    text = value.strip()
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)

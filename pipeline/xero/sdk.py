"""Between our Xero JSON and the xero-python SDK's model objects, both ways, and Xero's per-element answers.

The SDK's deserializer builds its models from JSON, so the only conversion we own is dates: the SDK
expects MS-JSON dates (`/Date(ms+0000)/`) where our payloads carry ISO dates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import xero_python.accounting.models as accounting_models
from xero_python.api_client import ModelFinder
from xero_python.api_client.deserializer import deserialize
from xero_python.api_client.serializer import serialize

_models = ModelFinder(accounting_models)
_DATE_KEYS = frozenset({"Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate"})


def _ms_date(value: str) -> str:
    parsed = date.fromisoformat(value[:10])
    epoch_ms = int(datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC).timestamp() * 1000)
    return f"/Date({epoch_ms}+0000)/"


def _with_ms_dates(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                _ms_date(item)
                if key in _DATE_KEYS and isinstance(item, str) and item[:1].isdigit()
                else _with_ms_dates(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_with_ms_dates(item) for item in value]
    return value


_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def parse_xero_date(value: object) -> date | None:
    """A Xero date from `/Date(ms+zzzz)/`, an ISO string, or a date."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    match = _MS_DATE.fullmatch(text.strip())
    if match:
        # The offset only says which zone the timestamp was written in; the instant is UTC epoch ms.
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC).date()
    return date.fromisoformat(text.strip()[:10])


def to_sdk(model_name: str, payload: dict[str, Any]) -> Any:
    """Build an SDK model (e.g. "Invoices") from Xero JSON."""
    return deserialize(model_name, _with_ms_dates(payload), _models)


def from_sdk(model: Any) -> Any:
    """Plain JSON-like dicts from an SDK model (PascalCase keys, as Xero sends them)."""
    return serialize(model)


@dataclass
class ElementResult:
    """One element of a batch write: Xero's verdict on it and what it stored."""

    index: int
    ok: bool
    data: dict[str, Any]
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def element_results(elements: Sequence[dict[str, Any]]) -> list[ElementResult]:
    """Each element of a batch answer (summarizeErrors=false) as its verdict, errors and warnings."""
    results = []
    for index, element in enumerate(elements):
        status = str(element.get("StatusAttributeString") or "OK").upper()
        errors = [str(e.get("Message")) for e in element.get("ValidationErrors") or [] if e.get("Message")]
        warnings = [str(w.get("Message")) for w in element.get("Warnings") or [] if w.get("Message")]
        ok = status != "ERROR" and not errors and not element.get("HasErrors")
        results.append(ElementResult(index=index, ok=ok, data=element, messages=errors, warnings=warnings))
    return results

"""Cin7 webhook events: the types we act on, and parsing a delivery's body into what it names."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.source.cin7core.events import (
    CUSTOMER_EVENT_TYPES,
    HANDLED_EVENT_TYPES,
    PURCHASE_EVENT_TYPES,
    SALE_EVENT_TYPES,
    normalise_event_type,
)

EventKind = Literal["sale", "customer", "purchase"]


class EventState:
    """Values of `WebhookEvent.state`."""

    RECEIVED = "received"
    ENQUEUED = "enqueued"
    DONE = "done"
    IGNORED = "ignored"


_CANONICAL = {normalise_event_type(name): name for name in HANDLED_EVENT_TYPES + PURCHASE_EVENT_TYPES}


def canonical_event_type(value: str) -> str | None:
    """The handled event type `value` stands for, or None when we do not act on it."""
    return _CANONICAL.get(normalise_event_type(value))


def event_kind(event_type: str) -> EventKind | None:
    """What an event type is about, for the types we handle."""
    canonical = canonical_event_type(event_type)
    if canonical in SALE_EVENT_TYPES:
        return "sale"
    if canonical in CUSTOMER_EVENT_TYPES:
        return "customer"
    if canonical in PURCHASE_EVENT_TYPES:
        return "purchase"
    return None


def ci_get(obj: Mapping[str, Any], *keys: str) -> Any:
    """The first present value among `keys`, matching key names case-insensitively."""
    lowered = {str(k).lower(): v for k, v in obj.items()}
    for key in keys:
        value = lowered.get(key.lower())
        if value not in (None, ""):
            return value
    return None


def guid_or_none(value: Any) -> str | None:
    """A lower-case GUID, or None when `value` is not one (webhook payloads are not trusted)."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def _canonical(value: Any) -> Any:
    """The payload with GUIDs lower-cased (their case varies between deliveries) for hashing."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, str):
        return guid_or_none(value) or value
    return value


@dataclass(frozen=True)
class ParsedEvent:
    """What the receiver reads from a thin payload before recording it."""

    event_type: str  # canonical for handled types, else as received (or "unknown")
    kind: EventKind | None
    sale_id: str | None  # for sale (and purchase) events that carry an id
    document_ids: tuple[str, ...]  # every id or number the payload names, for the dedupe key
    dedupe_key: str


def _document_ids(item: Mapping[str, Any]) -> list[str]:
    ids: list[str] = []
    for key in ("SaleID", "SaleTaskID", "PurchaseID", "PurchaseTaskID", "TaskID", "ID", "CustomerID"):
        guid = guid_or_none(ci_get(item, key))
        if guid:
            ids.append(guid)
    for key in ("DocumentNumber", "InvoiceNumber", "CreditNoteNumber", "OrderNumber", "SaleOrderNumber"):
        number = ci_get(item, key)
        if isinstance(number, str | int):
            ids.append(str(number).strip())
    for detail in ci_get(item, "CustomerDetailsList") or []:
        if isinstance(detail, Mapping):
            customer = ci_get(detail, "Customer")
            guid = guid_or_none(ci_get(customer, "ID", "CustomerID")) if isinstance(customer, Mapping) else None
            guid = guid or guid_or_none(ci_get(detail, "CustomerID", "ID"))
            if guid:
                ids.append(guid)
    return ids


def parse_event(payload: Any) -> ParsedEvent:
    """Classify a decoded payload (an object, or an array for `Stock/*` and `Task/Overdue`)."""
    items = [p for p in payload if isinstance(p, Mapping)] if isinstance(payload, list) else [payload]
    first: Mapping[str, Any] = items[0] if items and isinstance(items[0], Mapping) else {}
    raw_type = ci_get(first, "EventType", "Type", "Event")
    if not isinstance(raw_type, str) and ci_get(first, "CustomerDetailsList") is not None:
        raw_type = "Customer/Updated"
    received_type = raw_type.strip()[:64] if isinstance(raw_type, str) and raw_type.strip() else "unknown"
    canonical = canonical_event_type(received_type)
    event_type = canonical or received_type
    kind = event_kind(event_type) if canonical else None
    ids: list[str] = []
    for item in items:
        ids.extend(i for i in _document_ids(item) if i not in ids)
    sale_id = None
    if kind == "sale":
        # Sale/InvoiceAuthorised names the sale `SaleTaskID`; the others `SaleID`.
        sale_id = guid_or_none(ci_get(first, "SaleID")) or guid_or_none(ci_get(first, "SaleTaskID"))
    elif kind == "purchase":
        # Cin7 does not document these payloads; the sale events' spellings, for a purchase.
        sale_id = next(
            (g for key in ("PurchaseID", "PurchaseTaskID", "TaskID", "ID") if (g := guid_or_none(ci_get(first, key)))),
            None,
        )
    body = json.dumps(_canonical(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"{normalise_event_type(event_type)}\n{body}".encode()).hexdigest()
    readable = f"{normalise_event_type(event_type)[:40]}:{(ids[0] if ids else '-')[:36]}:"
    dedupe_key = readable + digest[: 128 - len(readable)]
    return ParsedEvent(event_type, kind, sale_id, tuple(ids), dedupe_key)

"""Shaping Xero requests: split a batch below Xero's request size, and match answers to elements."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from pipeline.context import TenantContext
from pipeline.idempotency import idempotency_key
from pipeline.kinds import AnyKind
from pipeline.ledger.models import SyncDocument
from pipeline.xero.client import XeroClient
from pipeline.xero.sdk import ElementResult, from_sdk, to_sdk

#: One element of a sent chunk: the row, the payload sent for it, and Xero's answer (None if none came).
Sent = tuple[SyncDocument, dict[str, Any], ElementResult | None]


def sdk_body_size(payload: dict[str, Any], model: str = "Invoice") -> int:
    """Bytes this element adds to the request body exactly as xero-python sends it.

    The SDK's JSON is larger than our canonical form (", " separators, /Date()/ dates, defaults),
    so the split measures what goes over the wire.
    """
    return len(json.dumps(from_sdk(to_sdk(model, payload))).encode()) + len(", ")


ENVELOPE_BYTES = len(json.dumps({"Invoices": []}).encode())


def split_by_size(
    items: Sequence[tuple[SyncDocument, dict[str, Any]]],
    max_bytes: int,
    measure: Callable[[dict[str, Any]], int] = sdk_body_size,
) -> list[list[tuple[SyncDocument, dict[str, Any]]]]:
    """Split a batch so that no request body exceeds `max_bytes` (Xero caps a request at 3.5 MB).

    A single element larger than the cap still goes alone: Xero's own 413 then names it.
    """
    chunks: list[list[tuple[SyncDocument, dict[str, Any]]]] = []
    current: list[tuple[SyncDocument, dict[str, Any]]] = []
    size = ENVELOPE_BYTES
    for item in items:
        item_size = measure(item[1])
        if current and size + item_size > max_bytes:
            chunks.append(current)
            current, size = [], ENVELOPE_BYTES
        current.append(item)
        size += item_size
    if current:
        chunks.append(current)
    return chunks


def send_in_chunks(
    ctx: TenantContext,
    kind: AnyKind,
    sendable: Sequence[tuple[SyncDocument, dict[str, Any]]],
    verb: Literal["PUT", "POST"],
    send: Callable[[XeroClient, Sequence[dict[str, Any]], str], list[ElementResult]],
) -> Iterator[list[Sent]]:
    """Send `sendable` in chunks under Xero's request size, each with the Idempotency-Key of its body
    (a retry of the same chunk is the same request); yield each chunk with its answers aligned.
    """
    model = kind.collection[:-1]
    for chunk in split_by_size(
        sendable, ctx.settings.xero_max_request_bytes, lambda payload: sdk_body_size(payload, model)
    ):
        body = [payload for _, payload in chunk]
        results = send(ctx.xero, body, idempotency_key(ctx.tenant_key, f"{verb} /{kind.collection}", body))
        aligned = align_results(kind, results, body)
        yield [(doc, payload, result) for (doc, payload), result in zip(chunk, aligned, strict=True)]


def align_results(
    kind: AnyKind, results: Sequence[ElementResult], body: Sequence[dict[str, Any]]
) -> list[ElementResult | None]:
    """Xero answers elements in request order; check by document number and fall back to it."""
    by_number = {number: r for r in results if (number := kind.number(r.data))}
    aligned: list[ElementResult | None] = []
    for index, payload in enumerate(body):
        number = kind.number(payload)
        if index < len(results) and kind.number(results[index].data) == number:
            aligned.append(results[index])
        else:
            aligned.append(by_number.get(number or ""))
    return aligned


def contact_id_for(payload: dict[str, Any], contacts: dict[str, str]) -> str | None:
    """The ContactID the payload's customer is linked to, if any."""
    number = (payload.get("Contact") or {}).get("ContactNumber")
    return contacts.get(str(number).lower()) if number else None


def customer_of(payload: dict[str, Any]) -> str | None:
    """The Cin7 customer id a payload carries as its ContactNumber, lower-cased."""
    number = (payload.get("Contact") or {}).get("ContactNumber")
    return str(number).lower() if number else None


def with_contact(payload: dict[str, Any], contact_id: str) -> dict[str, Any]:
    """The payload pointed at an existing Xero contact by id."""
    return {**payload, "Contact": {"ContactID": contact_id}}


def with_contact_name(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """The payload naming its contact by Name alone (Xero finds or creates it)."""
    # Name alone: Xero finds the contact by name or creates it. ContactNumber stays out, since
    # sources disagree on whether an unknown number inside an invoice creates or fails.
    return {**payload, "Contact": {"Name": name}}

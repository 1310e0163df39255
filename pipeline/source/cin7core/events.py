"""Cin7 Core's webhook event types: the ones the sync subscribes to and acts on."""

from __future__ import annotations

import re

SALE_EVENT_TYPES: tuple[str, ...] = (
    "Sale/OrderAuthorised",
    "Sale/InvoiceAuthorised",
    "Sale/CreditNoteAuthorised",
    "Sale/Voided",
    "Sale/Undo",
    "Sale/PartialPaymentReceived",
    "Sale/FullPaymentReceived",
)


CUSTOMER_EVENT_TYPES: tuple[str, ...] = ("Customer/Updated",)

# Acted on when SYNC_PURCHASES is on (and only then subscribed to).
PURCHASE_EVENT_TYPES: tuple[str, ...] = (
    "Purchase/OrderAuthorised",
    "Purchase/InvoiceAuthorised",
    "Purchase/StockReceivedAuthorised",
    "Purchase/CreditNoteAuthorised",
    "Purchase/Updated",
)


# What `register` subscribes to, and what the task acts on; everything else is recorded as ignored.
HANDLED_EVENT_TYPES: tuple[str, ...] = SALE_EVENT_TYPES + CUSTOMER_EVENT_TYPES


def subscribed_event_types(*, purchases: bool) -> tuple[str, ...]:
    """The event types to subscribe to: purchases' too when they are synced."""
    return HANDLED_EVENT_TYPES + (PURCHASE_EVENT_TYPES if purchases else ())


def normalise_event_type(value: str) -> str:
    """Loose form of an event type: case-, space- and spelling-insensitive (`Authorized` == `Authorised`)."""
    lowered = re.sub(r"[\s_\-.]", "", value.strip().lower())
    return lowered.replace("authorized", "authorised")

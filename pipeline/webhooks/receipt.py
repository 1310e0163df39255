"""Accepting one authenticated, decoded delivery, independent of HTTP: record it, then enqueue it.

Cin7 signs nothing; it sends the credential configured on the subscription, checked before this is
called. The thin payload is recorded in the ledger's inbox (`WebhookEvent`, unique per tenant and
dedupe key) and committed, then one task is enqueued. Webhooks are never trusted for data: the task
only learns *which* sale or customer changed and re-reads it through the API, so the polling path and
the webhook path produce the same ledger rows. If the broker is down the event stays `received` and
`resend_unsent_events` (called by the sweep) sends it later.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

from pipeline import app
from pipeline.context import tenant_context
from pipeline.webhooks.events import EventState, parse_event
from pipeline.webhooks.inbox import Receipt, mark_enqueued, publish_event, record_event

log = logging.getLogger(__name__)


class WebhookReceiver:
    """The receiver's logic, independent of HTTP: accept one authenticated, decoded delivery."""

    def __init__(self, broker_backoff_seconds: float = 2.0) -> None:
        self._broker_backoff = broker_backoff_seconds
        self._broker_down_until = 0.0
        self._lock = threading.Lock()

    def accept(self, payload: Any) -> Receipt:
        """Record, then enqueue; a broker failure leaves the event `received` for the sweep."""
        ctx = tenant_context()
        parsed = parse_event(payload)
        receipt = record_event(ctx, parsed, payload)
        sendable = receipt.event_id is not None and receipt.state == EventState.RECEIVED
        if sendable and receipt.event_id is not None and self._send(ctx.tenant_key, receipt.event_id):
            mark_enqueued(ctx, [receipt.event_id])
            return replace(receipt, state=EventState.ENQUEUED)
        return receipt

    def _send(self, tenant_key: str, event_id: int) -> bool:
        with self._lock:
            if time.monotonic() < self._broker_down_until:
                return False
        try:
            publish_event(tenant_key, event_id)
        except app.BROKER_ERRORS as exc:
            # Answer 200 anyway: the event is committed and the sweep sends it when the broker is back.
            log.warning("broker unavailable, webhook event %s left for the sweep: %s", event_id, exc)
            with self._lock:
                self._broker_down_until = time.monotonic() + self._broker_backoff
            return False
        return True

"""Counting deliveries, so that a message that keeps killing its worker ends as a poison dead letter.

A message whose task kills its worker never reaches an except clause; the only trace it leaves is a
count taken before the work, which acks_late redelivery and the sweep keep raising until it is a
dead letter. With Redis the count is an INCR on a key per sale or document that the finished work
deletes (one round trip each way, no ledger transaction); without Redis (the demo) it is the row's
`attempts` in a transaction of its own. Either way it is durable before the risky work starts: in
the work's own transaction, the crash would roll it back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from sqlalchemy import select

from pipeline.context import TenantContext
from pipeline.errors import ErrorClass
from pipeline.ledger.models import DocumentState, SaleRecord, SaleState, SyncDocument, utcnow
from pipeline.recovery.deadletters import record_dead_letter, record_sale_dead_letter

log = logging.getLogger(__name__)

# Longer than any run of redeliveries (the broker's visibility timeout and the sweep resend within
# hours), short enough that a count left by a message that vanished does not linger.
DELIVERY_COUNT_TTL_SECONDS = 86_400


def poison_message(stage: str, deliveries: int) -> str:
    """The dead letter's text for work that was started again and again without finishing."""
    return (
        f"{stage} was started {deliveries} times without finishing: the message may be killing workers "
        "(see the worker logs around these attempts)"
    )


def delivery_key(ctx: TenantContext, kind: str, ident: str | int) -> str:
    """The Redis key that counts deliveries of one sale's fetch or one document's mapping."""
    return f"cin7xero:deliveries:{ctx.tenant_key}:{kind}:{ident}"


def count_deliveries(client: redis.Redis | None, keys: Sequence[str]) -> list[int] | None:
    """Count one more delivery under each key; None when Redis cannot (the caller counts in the ledger)."""
    if client is None:
        return None
    try:
        pipe = client.pipeline(transaction=True)
        for key in keys:
            pipe.incr(key)
            pipe.expire(key, DELIVERY_COUNT_TTL_SECONDS)
        replies = pipe.execute()
    except redis.RedisError as exc:
        log.warning("delivery counts: Redis unavailable (%s); counting in the ledger", exc)
        return None
    return [int(n) for n in replies[::2]]


def forget_deliveries(client: redis.Redis | None, keys: Sequence[str]) -> None:
    """The work finished (or failed in a way the ledger recorded): its deliveries stop counting."""
    if client is None or not keys:
        return
    try:
        client.delete(*keys)
    except redis.RedisError as exc:
        log.warning("delivery counts not reset (they expire in a day): %s", exc)


def uncount_delivery(client: redis.Redis | None, key: str) -> None:
    """Take back one delivery that only waited (a pause, throttling): it says nothing about the work."""
    if client is None:
        return
    try:
        if int(client.decr(key)) <= 0:
            client.delete(key)
    except redis.RedisError as exc:
        log.warning("delivery count not taken back: %s", exc)


def sale_delivery(ctx: TenantContext, sale_id: str, deliveries: int | None) -> tuple[bool, bool]:
    """Record a delivery of a sale's fetch in the ledger: (counted in the sale row, now poison).

    `deliveries` is Redis's count including this one (callers come here only once it passes
    MAX_ATTEMPTS), or None without Redis: then the sale row counts, before any work.
    """
    with ctx.sessions() as session, session.begin():
        sale = session.scalar(
            select(SaleRecord)
            .where(SaleRecord.tenant_id == ctx.tenant_pk, SaleRecord.sale_id == sale_id.lower())
            .with_for_update()
        )
        if sale is None or sale.state != SaleState.DISCOVERED:
            # Its detail was stored: what keeps dying comes after the fetch, and is counted there.
            return False, False
        sale.attempts = sale.attempts + 1 if deliveries is None else max(sale.attempts, deliveries)
        count = sale.attempts if deliveries is None else deliveries
        if count <= ctx.settings.max_attempts:
            return deliveries is None, False
        record_sale_dead_letter(session, sale, error_class=ErrorClass.POISON, messages=[poison_message("fetch", count)])
        return deliveries is None, True


@dataclass(frozen=True)
class MapDelivery:
    """How one attempt at mapping a document was counted, so that it can be taken back or reset."""

    key: str
    in_redis: bool = False  # INCR'd under `key`
    in_ledger: bool = False  # the row's attempts were raised
    deliveries: int = 0  # the count in Redis after this one, for a dead letter's "attempts"


def map_delivery_poisons(ctx: TenantContext, doc_id: int, deliveries: int | None) -> bool:
    """Record a delivery of a document's mapping in the ledger; True when it is now poison.

    `deliveries` is Redis's count including this one (callers come here only once it passes
    MAX_ATTEMPTS), or None without Redis: then the row's attempts count, before mapping.
    The mapping resets them when it finishes, so only deliveries that died (or failed) in between
    add up.
    """
    with ctx.sessions() as session, session.begin():
        doc = session.scalar(select(SyncDocument).where(SyncDocument.id == doc_id).with_for_update())
        if doc is None or doc.state != DocumentState.PENDING:
            return False
        doc.attempts = doc.attempts + 1 if deliveries is None else max(doc.attempts, deliveries)
        count = doc.attempts if deliveries is None else deliveries
        if count <= ctx.settings.max_attempts:
            return False
        record_dead_letter(
            session,
            doc,
            stage="map",
            error_class=ErrorClass.POISON,
            messages=[poison_message("mapping", count)],
            payload=None,
        )
        return True


def uncount_map_delivery(ctx: TenantContext, client: redis.Redis | None, doc_id: int, delivery: MapDelivery) -> None:
    """A delivery that only waited (tenant pause, rate limit) does not count towards poison."""
    if delivery.in_redis:
        uncount_delivery(client, delivery.key)
    with ctx.sessions() as session, session.begin():
        doc = session.scalar(select(SyncDocument).where(SyncDocument.id == doc_id).with_for_update())
        if doc is not None and doc.state == DocumentState.PENDING:
            if delivery.in_ledger:
                doc.attempts = max(0, doc.attempts - 1)
            # The sweep sends it again once STUCK_AFTER_SECONDS have passed from here.
            doc.enqueued_at = utcnow()


def count_map_delivery(ctx: TenantContext, client: redis.Redis | None, doc_id: int) -> MapDelivery | None:
    """Count a delivery of one document's mapping before it starts; None when it is now poison."""
    key = delivery_key(ctx, "document", doc_id)
    deliveries = count_deliveries(client, [key])
    if deliveries is None:
        if map_delivery_poisons(ctx, doc_id, None):
            return None
        return MapDelivery(key, in_ledger=True)
    if deliveries[0] > ctx.settings.max_attempts and map_delivery_poisons(ctx, doc_id, deliveries[0]):
        forget_deliveries(client, [key])
        return None
    return MapDelivery(key, in_redis=True, deliveries=deliveries[0])

"""Dead letters: the documents that need a person, durable in the ledger.

A dead letter holds the Cin7 ids, the stage that failed, the error class, Xero's messages verbatim and
the payload that was sent. Requeue re-reads the document from Cin7 and re-maps it, so fixed data or
fixed rules take effect; requeueing twice creates nothing twice (the ledger row is the guard).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from mappings import content_hash
from pipeline.app import QueueName, TaskName, app
from pipeline.context import shared_redis
from pipeline.errors import ErrorClass
from pipeline.ledger.models import DeadLetter, DocumentState, SaleRecord, SaleState, SyncDocument, utcnow
from pipeline.operations.alerts import note_problem
from pipeline.settings import get_settings

log = logging.getLogger(__name__)


def record_dead_letter(
    session: Session,
    doc: SyncDocument,
    *,
    stage: str,
    error_class: ErrorClass,
    messages: Sequence[str],
    payload: dict[str, Any] | None,
) -> DeadLetter:
    """Mark the document dead and upsert its open dead letter (one open letter per document)."""
    doc.state = DocumentState.DEAD
    doc.error_class = error_class.value
    doc.last_error = "; ".join(messages)[:4000]
    doc.claim_token = None
    letter = session.scalar(
        select(DeadLetter).where(DeadLetter.document_id == doc.id, DeadLetter.resolved_at.is_(None))
    )
    now = utcnow()
    if letter is None:
        letter = DeadLetter(
            tenant_id=doc.tenant_id,
            document_id=doc.id,
            kind=doc.kind,
            sale_id=doc.sale_id,
            task_id=doc.task_id,
            document_number=doc.document_number,
            first_failed_at=now,
        )
        session.add(letter)
    letter.stage = stage
    letter.error_class = error_class.value
    letter.messages = list(messages)
    letter.payload = payload
    letter.attempts = doc.attempts
    letter.last_failed_at = now
    # Only a recorded letter alerts: a transient error that recovered within its retries never does.
    note_problem(session, doc.tenant_id, error_class, f"{doc.kind} {doc.document_number}: {'; '.join(messages)}")
    log.warning(
        "dead letter: %s %s stage=%s class=%s: %s",
        doc.kind,
        doc.document_number,
        stage,
        error_class.value,
        "; ".join(messages)[:500],
        extra={"kind": doc.kind, "number": doc.document_number},
    )
    return letter


def record_sale_dead_letter(
    session: Session, sale: SaleRecord, *, error_class: ErrorClass, messages: Sequence[str]
) -> DeadLetter:
    """A sale whose detail could not be read or parsed (no invoice rows exist yet)."""
    sale.state = SaleState.DEAD
    sale.last_error = "; ".join(messages)[:4000]
    letter = session.scalar(
        select(DeadLetter).where(
            DeadLetter.tenant_id == sale.tenant_id,
            DeadLetter.sale_id == sale.sale_id,
            DeadLetter.document_id.is_(None),
            DeadLetter.resolved_at.is_(None),
        )
    )
    now = utcnow()
    if letter is None:
        letter = DeadLetter(
            tenant_id=sale.tenant_id,
            kind="sale",
            sale_id=sale.sale_id,
            document_number=sale.order_number,
            first_failed_at=now,
        )
        session.add(letter)
    letter.stage = "fetch"
    letter.error_class = error_class.value
    letter.messages = list(messages)
    letter.payload = None
    letter.attempts = sale.attempts
    letter.last_failed_at = now
    note_problem(
        session, sale.tenant_id, error_class, f"sale {sale.order_number or sale.sale_id}: {'; '.join(messages)}"
    )
    return letter


def record_row_dead_letter(
    session: Session,
    tenant_pk: int,
    *,
    kind: str,
    record_id: str | None,
    number: str | None,
    reasons: Sequence[str],
    row: dict[str, Any],
    stage: str = "poll",
) -> DeadLetter:
    """A row of a Cin7 list page that the poll could not read (`kind` "sale" or "customer"), or (stage
    "webhook") a customer event that kept failing.

    One open letter per record id (or, for a row without one, per content), so that the overlap of
    the next poll, which reads the row again, updates the letter rather than adding another.
    """
    label = number or record_id or "without an id"
    key = record_id if record_id is not None else f"row:{content_hash(row)[:32]}"
    letter = session.scalar(
        select(DeadLetter).where(
            DeadLetter.tenant_id == tenant_pk,
            DeadLetter.kind == kind,
            DeadLetter.stage == stage,
            DeadLetter.sale_id == key,
            DeadLetter.resolved_at.is_(None),
        )
    )
    now = utcnow()
    # A row the poll could not read is bad data (mapping); an event that kept failing spent its attempts.
    error_class = ErrorClass.MAPPING if stage == "poll" else ErrorClass.POISON
    if stage == "poll":
        messages = [f"Cin7 {kind} {label} cannot be read: {reason}" for reason in reasons]
    else:
        messages = list(reasons)
    if letter is not None:
        letter.document_number, letter.messages, letter.payload, letter.last_failed_at = number, messages, row, now
        return letter
    letter = DeadLetter(
        tenant_id=tenant_pk,
        kind=kind,
        sale_id=key,
        document_number=number,
        stage=stage,
        error_class=error_class.value,
        messages=messages,
        payload=row,
        attempts=0,
        first_failed_at=now,
        last_failed_at=now,
    )
    session.add(letter)
    note_problem(session, tenant_pk, error_class, f"Cin7 {kind} {label}: {'; '.join(reasons)}")
    log.warning("dead letter: Cin7 %s %s unreadable in its list: %s", kind, label, "; ".join(reasons)[:500])
    return letter


def resolve_row_dead_letters(session: Session, tenant_pk: int, kind: str, record_ids: Sequence[str]) -> None:
    """Rows read cleanly at last (fixed in Cin7): close their poll letters."""
    if not record_ids:
        return
    for letter in session.scalars(
        select(DeadLetter).where(
            DeadLetter.tenant_id == tenant_pk,
            DeadLetter.kind == kind,
            DeadLetter.stage == "poll",
            DeadLetter.sale_id.in_(list(record_ids)),
            DeadLetter.resolved_at.is_(None),
        )
    ):
        letter.resolved_at = utcnow()


def resolve_dead_letters(session: Session, doc: SyncDocument) -> None:
    """The document went through: close its open letters."""
    for letter in session.scalars(
        select(DeadLetter).where(DeadLetter.document_id == doc.id, DeadLetter.resolved_at.is_(None))
    ):
        letter.resolved_at = utcnow()


@dataclass(frozen=True)
class DeadLetterView:
    """A dead letter as the CLI shows it."""

    id: int
    kind: str
    sale_id: str | None
    task_id: str | None
    document_number: str | None
    stage: str
    error_class: str
    messages: list[str]
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    requeued_at: datetime | None
    payload: dict[str, Any] | None
    #: Documents of the same sale that wait for this one (payments of a dead invoice), as "kind number".
    holds: tuple[str, ...] = ()

    def as_json(self, *, with_payload: bool = False) -> dict[str, Any]:
        """JSON-ready dict."""
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "sale_id": self.sale_id,
            "task_id": self.task_id,
            "document_number": self.document_number,
            "stage": self.stage,
            "error_class": self.error_class,
            "messages": self.messages,
            "attempts": self.attempts,
            "first_failed_at": self.first_failed_at.isoformat(),
            "last_failed_at": self.last_failed_at.isoformat(),
            "requeued_at": self.requeued_at.isoformat() if self.requeued_at else None,
            "holds": list(self.holds),
        }
        if with_payload:
            data["payload"] = self.payload
        return data


def _view(letter: DeadLetter, holds: Sequence[str] = ()) -> DeadLetterView:
    return DeadLetterView(
        id=letter.id,
        kind=letter.kind,
        sale_id=letter.sale_id,
        task_id=letter.task_id,
        document_number=letter.document_number,
        stage=letter.stage,
        error_class=letter.error_class,
        messages=[str(m) for m in letter.messages or []],
        attempts=letter.attempts,
        first_failed_at=letter.first_failed_at,
        last_failed_at=letter.last_failed_at,
        requeued_at=letter.requeued_at,
        payload=letter.payload,
        holds=tuple(holds),
    )


def list_dead_letters(
    session: Session,
    tenant_pk: int,
    *,
    error_class: str | None = None,
    since: datetime | None = None,
    ids: Sequence[int] = (),
) -> list[DeadLetterView]:
    """Open dead letters, oldest first."""
    query = select(DeadLetter).where(DeadLetter.tenant_id == tenant_pk, DeadLetter.resolved_at.is_(None))
    if error_class:
        query = query.where(DeadLetter.error_class == error_class)
    if since is not None:
        query = query.where(DeadLetter.last_failed_at >= since)
    if ids:
        query = query.where(DeadLetter.id.in_(list(ids)))
    letters = list(session.scalars(query.order_by(DeadLetter.id)))
    held: dict[str, list[str]] = {}
    sale_ids = sorted({letter.sale_id for letter in letters if letter.sale_id})
    if sale_ids:
        for sale_id, kind, number, task_id in session.execute(
            select(SyncDocument.sale_id, SyncDocument.kind, SyncDocument.document_number, SyncDocument.task_id)
            .where(
                SyncDocument.tenant_id == tenant_pk,
                SyncDocument.sale_id.in_(sale_ids),
                SyncDocument.state == DocumentState.WAITING,
            )
            .order_by(SyncDocument.id)
        ):
            held.setdefault(sale_id, []).append(f"{kind.replace('_', ' ')} {number or task_id} ({task_id})")
    return [_view(letter, held.get(letter.sale_id or "", ())) for letter in letters]


def requeue(session: Session, tenant_pk: int, letter_ids: Sequence[int]) -> list[tuple[str, str]]:
    """Send the sales (and purchases) behind these letters back through fetch -> map -> write.

    Returns (id, parent kind) of each to enqueue (the caller enqueues after commit, with
    `app.FETCH_TASKS`). The letters stay open until the document goes through; a second requeue of
    the same letter is harmless.
    """
    sale_ids: list[tuple[str, str]] = []
    for letter in session.scalars(
        select(DeadLetter).where(DeadLetter.tenant_id == tenant_pk, DeadLetter.id.in_(list(letter_ids)))
    ):
        letter.requeued_at = utcnow()
        if letter.kind in ("customer", "supplier") or (letter.sale_id or "").startswith(("row:", "event:")):
            # Nothing to fetch: a customer or supplier, or a list row without an id, is read again by the next poll
            # once it is fixed in Cin7 (and its letter is then closed).
            continue
        if letter.document_id is not None:
            doc = session.get(SyncDocument, letter.document_id)
            if doc is not None and doc.state == DocumentState.DEAD:
                # Forget the source hash so the re-read always re-maps, even if Cin7 did not change.
                doc.source_hash = None
                doc.state = DocumentState.PENDING
                doc.attempts = 0
                doc.error_class = None
        sale = session.scalar(
            select(SaleRecord).where(SaleRecord.tenant_id == tenant_pk, SaleRecord.sale_id == letter.sale_id)
        )
        if sale is not None:
            sale.state = SaleState.DISCOVERED
            sale.attempts = 0
            sale.enqueued_at = utcnow()
        # A purchase's letter (a bill, or the purchase itself) is re-read as a purchase.
        kind = sale.kind if sale is not None else ("purchase" if letter.kind in ("purchase", "bill") else "sale")
        if letter.sale_id and (letter.sale_id, kind) not in sale_ids:
            sale_ids.append((letter.sale_id, kind))
    return sale_ids


# Flower learns of the mirror's messages from their task-sent events, and forgets them when it restarts:
# the mirror is sent again this often even when nothing changed, so a restarted Flower shows every
# open letter again within it.
MIRROR_REFRESH_SECONDS = 300
_MIRROR_FRESH_KEY = "cin7xero:dead_letter_mirror:{tenant_pk}:fresh"


def mirror_dead_letter_queue(session: Session, tenant_pk: int) -> int:
    """Make the `dead_letter` queue hold one message per open dead letter, for Flower to show.

    The ledger is the record; the queue is a view that nobody consumes. When the counts differ, or
    every MIRROR_REFRESH_SECONDS, the queue is rebuilt from the ledger. Returns the number of open letters.
    """
    letters = list_dead_letters(session, tenant_pk)
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        _, length, _ = channel.queue_declare(
            QueueName.DEAD_LETTER.value, passive=False, durable=True, auto_delete=False
        )
        if length == len(letters) and not _refresh_due(tenant_pk):
            return len(letters)
        channel.queue_purge(QueueName.DEAD_LETTER.value)
        with app.producer_or_acquire() as producer:
            for letter in letters:
                app.send_task(
                    TaskName.DEAD_LETTER.value,
                    args=(
                        letter.id,
                        letter.document_number,
                        letter.stage,
                        letter.error_class,
                        "; ".join(letter.messages)[:500],
                    ),
                    queue=QueueName.DEAD_LETTER.value,
                    producer=producer,
                )
    return len(letters)


def _refresh_due(tenant_pk: int) -> bool:
    """True once per MIRROR_REFRESH_SECONDS (always, without a shared Redis to remember it in)."""
    client = shared_redis(get_settings())
    if client is None:
        return False
    try:
        return bool(client.set(_MIRROR_FRESH_KEY.format(tenant_pk=tenant_pk), "1", ex=MIRROR_REFRESH_SECONDS, nx=True))
    except redis.RedisError as exc:
        log.warning("dead letter mirror: Redis unavailable (%s); not refreshed", exc)
        return False

"""Noting problems and recoveries in the ledger: `note_problem` and `note_recovery`, called inside the
transaction that records the problem (or its end); they update one `AlertState` row and never send.
Alerts as a whole: what needs a person reaches one, once per problem per window, with a count and
examples; `alert_flush` decides what is due, `alert_message` says it and `alert_channels` sends it.

How a problem becomes an alert:

- `note_problem` is called inside the transaction that records something a person must act on: a dead
  letter (any class, including `poison` = a message that exhausted its attempts or kept killing
  workers), or a tenant paused for a 403 / revoked consent / Xero's daily limit. It only updates one
  `AlertState` row per (tenant, error class); it never sends anything, so a storm of 5 000 dead letters
  costs 5 000 cheap row updates and not 5 000 messages.
- Transient errors (timeouts, 5xx, 429s, expired access tokens) are retried and never call
  `note_problem`, so an error that recovered within its retries raises no alert by construction. Only
  when the retries are exhausted does the document become a (poison) dead letter, and that alerts.
- `flush_alerts` runs from beat every 30 s. For each open problem with new occurrences whose last
  message went out more than ALERT_WINDOW_SECONDS ago (or never), it sends ONE alert: the count since
  the previous alert, the total since the problem opened, up to five recent examples, what the class
  means and what to do.
- Recovery: validation, mapping and poison problems recover when the tenant has no open dead letters of
  that class any more (they were requeued and went through, or purged). Other classes (configuration,
  day_limit, ...) recover when the code that paused the tenant calls `note_recovery`, e.g. after the
  next successful Xero write. A recovery notice is sent once, and only if an alert about the problem
  was actually sent; a problem that cleared before anyone was told is closed silently.

The state change and the decision to send are committed under a row lock (plus a conditional update,
for SQLite) before anything is sent, so two flushes running at once send each alert once. Sending is
at most once: a channel that fails is logged and the others still send.

State encoding on `AlertState` (no extra columns): the row is open while `closed_at` is null. An alert
was sent for the current episode when `last_sent_at >= opened_at`. A closed row whose `closed_at` is
later than that `last_sent_at` still owes its recovery notice. `opened_at` is null once a closed
problem has nothing left to announce. The window counts from the last message of either kind, so a
flapping problem cannot produce more than one message per window.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pipeline.errors import ErrorClass
from pipeline.ledger.models import AlertState, utcnow
from pipeline.ledger.ops import insert_ignore

MAX_EXAMPLES = 5
# An example is a line in a message, not a payload dump.
MAX_EXAMPLE_CHARS = 500

# These classes are about documents sitting in the dead-letter queue: they are over when the queue
# holds none of them any more. Everything else is over when the pipeline says so (note_recovery).
DEAD_LETTER_CLASSES = frozenset({ErrorClass.VALIDATION.value, ErrorClass.MAPPING.value, ErrorClass.POISON.value})


def _class_value(error_class: ErrorClass | str) -> str:
    return error_class.value if isinstance(error_class, ErrorClass) else str(error_class)


# --- recording problems (inside the caller's transaction) -----------------------------------------


def note_problem(
    session: Session,
    tenant_pk: int,
    error_class: ErrorClass | str,
    example: str,
    *,
    now: datetime | None = None,
) -> None:
    """Count one occurrence of a problem that needs a person; the next flush decides whether to alert.

    Call it inside the transaction that records the problem (the dead letter, the pause), so the
    count commits or rolls back with it. One upsert and one locked update; it never sends.
    """
    now = now or utcnow()
    cls = _class_value(error_class)
    insert_ignore(
        session,
        AlertState,
        [
            {
                "tenant_id": tenant_pk,
                "error_class": cls,
                "opened_at": now,
                "last_seen_at": now,
                "pending_count": 0,
                "total_count": 0,
                "examples": [],
            }
        ],
        ["tenant_id", "error_class"],
    )
    state = session.scalar(
        select(AlertState)
        .where(AlertState.tenant_id == tenant_pk, AlertState.error_class == cls)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert state is not None
    if state.closed_at is not None:
        announced = state.last_sent_at is not None and state.last_sent_at >= state.closed_at
        if announced or state.opened_at is None:
            # A new episode: its own counts, and its first alert is not "more of the last one".
            state.opened_at = now
            state.pending_count = 0
            state.total_count = 0
            state.examples = []
        # Otherwise the closure was never announced (or not yet): the problem simply carries on.
        state.closed_at = None
    state.last_seen_at = now
    state.pending_count += 1
    state.total_count += 1
    examples = [str(e) for e in (state.examples or [])]
    examples.append(example[:MAX_EXAMPLE_CHARS])
    state.examples = examples[-MAX_EXAMPLES:]


def note_recovery(
    session: Session, tenant_pk: int, error_class: ErrorClass | str, *, now: datetime | None = None
) -> None:
    """Say that a problem class is over for this tenant (e.g. a Xero write succeeded after a pause).

    Cheap enough to call on every success: one conditional UPDATE that touches a row only while the
    problem is open. The next flush sends the recovery notice if an alert had gone out. Dead-letter
    classes (validation, mapping, poison) ignore this: they are over when their dead letters are.
    """
    cls = _class_value(error_class)
    if cls in DEAD_LETTER_CLASSES:
        return
    session.execute(
        update(AlertState)
        .where(AlertState.tenant_id == tenant_pk, AlertState.error_class == cls, AlertState.closed_at.is_(None))
        .values(closed_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )

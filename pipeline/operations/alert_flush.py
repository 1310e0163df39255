"""The periodic flush: for each of a tenant's problems, decide under a row lock whether an alert or a
recovery notice is due, commit that decision, then send what is due (at most once per class per window;
see `pipeline.operations.alerts` for how problems are counted and how `AlertState` encodes the state).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.orm import Session

from pipeline.ledger.models import AlertState, DeadLetter, utcnow
from pipeline.operations.alert_channels import AlertChannel, channels_from_settings, deliver
from pipeline.operations.alert_message import Alert
from pipeline.operations.alerts import DEAD_LETTER_CLASSES, MAX_EXAMPLES

if TYPE_CHECKING:
    from pipeline.context import TenantContext

log = logging.getLogger(__name__)


def _same(column: Any, value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column.is_(None) if value is None else column == value
    return result


def _claim(session: Session, state: AlertState, values: dict[str, Any]) -> bool:
    # The row is locked already on PostgreSQL; on SQLite (no FOR UPDATE) this conditional update is
    # what makes a second, concurrent flush find nothing left to claim.
    result = session.execute(
        update(AlertState)
        .where(
            AlertState.id == state.id,
            _same(AlertState.last_sent_at, state.last_sent_at),
            _same(AlertState.closed_at, state.closed_at),
            _same(AlertState.opened_at, state.opened_at),
            AlertState.pending_count == state.pending_count,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _has_open_dead_letters(session: Session, tenant_pk: int, error_class: str) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    DeadLetter.tenant_id == tenant_pk,
                    DeadLetter.resolved_at.is_(None),
                    DeadLetter.error_class == error_class,
                )
            )
        )
    )


def _decide(
    session: Session, tenant_pk: int, tenant_key: str, state: AlertState, now: datetime, window: timedelta
) -> Alert | None:
    """Update one state row for this flush; the alert to send if this flush claimed one."""
    cls = state.error_class
    alerted = state.last_sent_at is not None and state.opened_at is not None and state.last_sent_at >= state.opened_at
    examples = tuple(str(e) for e in (state.examples or []))
    cleared: dict[str, Any] = {"pending_count": 0, "examples": []}

    def recovery() -> Alert:
        return Alert(tenant_key, cls, "recovery", state.pending_count, state.total_count, (), state.opened_at, now)

    if state.closed_at is None and cls in DEAD_LETTER_CLASSES and not _has_open_dead_letters(session, tenant_pk, cls):
        if alerted:
            if _claim(session, state, {**cleared, "closed_at": now, "last_sent_at": now}):
                return recovery()
        else:
            _claim(session, state, {**cleared, "closed_at": now, "opened_at": None})
        return None
    if state.closed_at is None:
        due = state.pending_count > 0 and (state.last_sent_at is None or state.last_sent_at <= now - window)
        if due and _claim(session, state, {**cleared, "last_sent_at": now}):
            return Alert(
                tenant_key, cls, "problem", state.pending_count, state.total_count, examples, state.opened_at, now
            )
        return None
    # Closed by note_recovery since the last flush.
    if alerted and state.last_sent_at is not None and state.last_sent_at < state.closed_at:
        if _claim(session, state, {**cleared, "last_sent_at": now}):
            return recovery()
        return None
    if state.opened_at is not None and not alerted:
        # Over before anyone was told: nothing to announce, and the next problem is a new episode.
        _claim(session, state, {**cleared, "opened_at": None})
    return None


def flush_alerts(
    ctx: TenantContext, *, now: datetime | None = None, channels: Sequence[AlertChannel] | None = None
) -> list[Alert]:
    """Send what is due for this tenant: at most one message per (error class) per window.

    The state is committed before anything is sent, so a flush that dies mid-send does not send twice
    (alerts are at most once); `channels` defaults to those ALERT_CHANNELS configures.
    """
    now = now or utcnow()
    window = timedelta(seconds=ctx.settings.alert_window_seconds)
    due: list[Alert] = []
    with ctx.sessions() as session, session.begin():
        states = session.scalars(
            select(AlertState)
            .where(AlertState.tenant_id == ctx.tenant_pk)
            .order_by(AlertState.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        for state in states:
            alert = _decide(session, ctx.tenant_pk, ctx.tenant_key, state, now, window)
            if alert is not None:
                due.append(alert)
    if not due:
        return due
    targets = list(channels) if channels is not None else channels_from_settings(ctx.settings)
    # The log is a channel, but it tells nobody: when people's channels are configured, only they count.
    people = {c.name for c in targets if c.name != "log"} or {c.name for c in targets}
    undelivered: list[Alert] = []
    for alert in due:
        delivered = deliver(alert, targets)
        log.info(
            "alert %s/%s for tenant %s: %d of %d channels delivered",
            alert.kind,
            alert.error_class,
            alert.tenant_key,
            len(delivered),
            len(targets),
        )
        if people and not people & set(delivered):
            undelivered.append(alert)
    if undelivered:
        with ctx.sessions() as session, session.begin():
            for alert in undelivered:
                _send_again(session, ctx.tenant_pk, alert)
    return due


def _send_again(session: Session, tenant_pk: int, alert: Alert) -> None:
    """Every channel failed: put the alert back so that the next flush sends it, not the next problem."""
    state = session.scalar(
        select(AlertState)
        .where(AlertState.tenant_id == tenant_pk, AlertState.error_class == alert.error_class)
        .with_for_update()
    )
    if state is None:
        return
    if alert.kind == "problem":
        # Never sent: the count and examples are pending again, and the window starts over.
        state.pending_count += alert.count
        state.examples = [*alert.examples, *(state.examples or [])][:MAX_EXAMPLES]
        state.last_sent_at = None
    elif state.opened_at is not None and state.closed_at is not None:
        # "Alerted, then recovered, recovery not yet sent" is what the next flush announces.
        state.last_sent_at = state.opened_at
    log.warning("alert %s/%s reached no channel; the next flush sends it again", alert.kind, alert.error_class)

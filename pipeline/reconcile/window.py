"""The dates a reconciliation covers: --since/--until, or the last RECONCILE_LOOKBACK_DAYS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Window:
    """Invoice dates `start <= date < end`; `last` is the inclusive last day a person reads."""

    start: date
    end: date

    @property
    def last(self) -> date:
        """The last day in the window."""
        return self.end - timedelta(days=1)

    def xero_where(self, document_type: str = "ACCREC") -> str:
        """Xero's `where` filter for documents of this Type (ACCREC invoices, ACCRECCREDIT credit notes)
        dated in the window.
        """
        s, e = self.start, self.end
        return (
            f"Date >= DateTime({s.year}, {s.month}, {s.day}) && Date < DateTime({e.year}, {e.month}, {e.day})"
            f' && Type == "{document_type}"'
        )


def resolve_window(since: date | None, until: date | None, lookback_days: int, today: date) -> Window:
    """`since`..`until` inclusive; defaults: the last `lookback_days` days up to and including today."""
    last = until or today
    start = since or (last - timedelta(days=lookback_days))
    if start > last:
        raise ValueError(f"--since {start.isoformat()} is after --until {last.isoformat()}")
    return Window(start, last + timedelta(days=1))


def parse_day(value: str | date | None) -> date | None:
    """A date from `YYYY-MM-DD` (a datetime string is cut to its date)."""
    if value is None or isinstance(value, date):
        return value
    text = value.strip()
    return date.fromisoformat(text[:10]) if text else None

"""What a migration plan says, as plain data: each document's fate, the counts and the cost.

Pure: the plan is computed in `migration.plan` and rendered in `migration.report`.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any


class Fate(enum.StrEnum):
    """What the cutover would do with one Cin7 document (stable values: they are in plan.json)."""

    CREATE = "create"
    ADOPT = "adopt"
    CONFLICT = "conflict"
    BLOCKED = "blocked"
    LOCKED = "locked"
    SKIPPED = "skipped"
    SYNCED = "synced"


FATE_LABELS: dict[Fate, str] = {
    Fate.CREATE: "Create in Xero",
    Fate.ADOPT: "Adopt (Xero has it already)",
    Fate.CONFLICT: "Conflict (Xero has that number with other values)",
    Fate.BLOCKED: "Blocked (mapping problem)",
    Fate.LOCKED: "Locked (on or before Xero's lock date)",
    Fate.SKIPPED: "Skipped (draft or void)",
    Fate.SYNCED: "Already synced",
}


@dataclass(frozen=True)
class PlanRow:
    """One Cin7 document and its fate."""

    kind: str  # invoice | credit_note | payment | refund | allocation
    sale_id: str
    task_id: str
    number: str
    date: date | None
    customer: str
    currency: str | None
    total: Decimal | None
    fate: Fate
    #: Why (the mapping problem, the differing values, the lock date); empty for a plain create.
    reason: str = ""
    #: The Xero document it would adopt or conflicts with.
    xero_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-safe form (amounts as strings)."""
        return {
            "kind": self.kind,
            "sale_id": self.sale_id,
            "task_id": self.task_id,
            "number": self.number,
            "date": self.date.isoformat() if self.date else None,
            "customer": self.customer,
            "currency": self.currency,
            "total": str(self.total) if self.total is not None else None,
            "fate": self.fate.value,
            "reason": self.reason,
            "xero_id": self.xero_id,
        }


@dataclass(frozen=True)
class PlanCost:
    """What the cutover would cost, in calls and in time at the configured limits."""

    cin7_list_calls: int
    cin7_detail_calls: int
    xero_read_calls: int
    xero_write_calls: int
    cin7_calls_per_minute: int
    xero_calls_per_minute: int
    xero_calls_per_day: int

    @property
    def cin7_calls(self) -> int:
        """Every Cin7 call: list pages and sale details."""
        return self.cin7_list_calls + self.cin7_detail_calls

    @property
    def xero_calls(self) -> int:
        """Every Xero call: reads and writes."""
        return self.xero_read_calls + self.xero_write_calls

    @property
    def hours(self) -> float:
        """Wall time at the binding limit: Cin7's and Xero's minutes, and Xero's day."""
        cin7 = self.cin7_calls / self.cin7_calls_per_minute / 60
        xero_minutes = self.xero_calls / self.xero_calls_per_minute / 60
        # A day's budget spent waits for the next day.
        xero_days = (self.xero_calls // max(1, self.xero_calls_per_day)) * 24.0
        return max(cin7, xero_minutes + xero_days)

    @property
    def xero_days(self) -> float:
        """Days of Xero's daily budget the cutover uses."""
        return self.xero_calls / max(1, self.xero_calls_per_day)

    def as_json(self) -> dict[str, Any]:
        """JSON-safe form, with the derived totals."""
        return {
            "cin7_list_calls": self.cin7_list_calls,
            "cin7_detail_calls": self.cin7_detail_calls,
            "cin7_calls": self.cin7_calls,
            "xero_read_calls": self.xero_read_calls,
            "xero_write_calls": self.xero_write_calls,
            "xero_calls": self.xero_calls,
            "cin7_calls_per_minute": self.cin7_calls_per_minute,
            "xero_calls_per_minute": self.xero_calls_per_minute,
            "xero_calls_per_day": self.xero_calls_per_day,
            "hours": round(self.hours, 2),
            "xero_days": round(self.xero_days, 2),
        }


@dataclass
class MigrationPlan:
    """A test run's result: every document of the window with its fate, and the cost."""

    migration_id: int
    tenant: str
    window_from: date
    window_until: date
    generated_at: datetime
    lock_date: date | None
    cost: PlanCost
    rows: list[PlanRow] = field(default_factory=list)
    #: What could not be read (a sale whose detail failed); the plan is still written.
    errors: list[str] = field(default_factory=list)
    #: What this test run itself read: saleList pages, sale details from Cin7 and from the ledger.
    reads: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Documents per fate, every fate present."""
        found = Counter(row.fate for row in self.rows)
        return {fate.value: found.get(fate, 0) for fate in Fate}

    def counts_by_kind(self) -> dict[str, dict[str, int]]:
        """Documents per kind and fate."""
        table: dict[str, dict[str, int]] = {}
        for row in self.rows:
            table.setdefault(row.kind, {fate.value: 0 for fate in Fate})[row.fate.value] += 1
        return table

    def as_json(self) -> dict[str, Any]:
        """The plan.json document."""
        return {
            "migration_id": self.migration_id,
            "tenant": self.tenant,
            "window_from": self.window_from.isoformat(),
            "window_until": self.window_until.isoformat(),
            "generated_at": self.generated_at.isoformat(),
            "lock_date": self.lock_date.isoformat() if self.lock_date else None,
            "counts": self.counts(),
            "counts_by_kind": self.counts_by_kind(),
            "cost": self.cost.as_json(),
            "errors": list(self.errors),
            "reads": dict(self.reads),
            "documents": [row.as_json() for row in self.rows],
        }

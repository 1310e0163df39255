"""One alert message to operators, a problem with its counts and examples or its recovery, as a
subject line and plain text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pipeline.ledger.models import utcnow
from pipeline.operations.alert_texts import class_action, class_handling, class_meaning


@dataclass(frozen=True)
class Alert:
    """One message to operators: a problem (with counts and examples) or its recovery."""

    tenant_key: str
    error_class: str
    kind: Literal["problem", "recovery"]
    # Occurrences since the previous alert about this problem, and since it opened.
    count: int
    total: int
    examples: tuple[str, ...] = ()
    opened_at: datetime | None = None
    at: datetime = field(default_factory=utcnow)

    @property
    def label(self) -> str:
        """The class as words: "day limit"."""
        return self.error_class.replace("_", " ")

    def subject(self) -> str:
        """One line, used as the e-mail subject and the first line elsewhere."""
        if self.kind == "recovery":
            return f"[cin7xero] tenant {self.tenant_key}: {self.label} errors recovered"
        plural = "" if self.count == 1 else "s"
        return f"[cin7xero] tenant {self.tenant_key}: {self.count} {self.label} error{plural}"

    def text(self) -> str:
        """The whole message as plain text."""
        since = f" since {self.opened_at.isoformat(timespec='seconds')}" if self.opened_at else ""
        if self.kind == "recovery":
            return "\n".join(
                [
                    self.subject(),
                    f"The {self.error_class} problem for tenant {self.tenant_key} has cleared "
                    f"({self.total} occurrence{'' if self.total == 1 else 's'}{since}).",
                    *([f"{self.count} more occurred after the last alert."] if self.count else []),
                ]
            )
        lines = [
            self.subject(),
            f"{self.count} new since the last alert, {self.total} in total{since}.",
            f"What it means: {class_meaning(self.error_class)}.",
            f"What the pipeline does: {class_handling(self.error_class)}.",
            f"What to do: {class_action(self.error_class)}",
        ]
        if self.examples:
            lines.append("Examples (most recent last):")
            lines.extend(f"- {example}" for example in self.examples)
        return "\n".join(lines)

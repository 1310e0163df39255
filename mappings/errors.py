"""Errors raised by the pure mappings.

A mapping never guesses: when Cin7 data cannot be turned into a Xero payload that Xero will accept
*and* that shows Cin7's own totals, it raises :class:`MappingError`. The pipeline treats it as permanent
(no retry) and shows the operator every problem of the document at once, so the rules file or the Cin7
data can be fixed in one pass instead of one error per sync run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MappingError", "MappingProblem"]


@dataclass(frozen=True, slots=True)
class MappingProblem:
    """One thing wrong with a document: which field, which value, and what to do about it."""

    field: str
    value: str | None
    message: str

    def __str__(self) -> str:
        return self.message


class MappingError(ValueError):
    """A Cin7 document cannot be mapped to Xero; never retried, shown to the operator.

    ``field``/``value``/``message`` describe the first (or only) problem; ``problems`` holds all of them.
    ``str(error)`` lists every problem, one per line after the first.
    """

    field: str
    value: str | None
    message: str
    problems: list[MappingProblem]

    def __init__(
        self,
        field: str,
        value: str | None,
        message: str,
        *,
        problems: Iterable[MappingProblem] | None = None,
    ) -> None:
        self.field = field
        self.value = value
        self.message = message
        collected = list(problems) if problems is not None else []
        self.problems = collected or [MappingProblem(field, value, message)]
        super().__init__(self._render())

    @property
    def problem(self) -> MappingProblem:
        """The first problem, as a :class:`MappingProblem`."""
        return self.problems[0]

    @classmethod
    def from_problems(cls, problems: Iterable[MappingProblem]) -> MappingError:
        """One error carrying every problem (at least one is required)."""
        collected = list(problems)
        if not collected:
            raise ValueError("MappingError.from_problems needs at least one problem")
        first = collected[0]
        if len(collected) == 1:
            return cls(first.field, first.value, first.message)
        message = f"{len(collected)} problems: " + "; ".join(p.message for p in collected)
        return cls(first.field, first.value, message, problems=collected)

    def _render(self) -> str:
        if len(self.problems) <= 1:
            return self.message
        return "\n".join([f"{len(self.problems)} problems:", *(f"- {p.message}" for p in self.problems)])

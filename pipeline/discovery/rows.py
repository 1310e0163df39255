"""Row-by-row reading of Cin7's list pages: one bad row becomes a dead letter, the poll goes on past it.

A list page is parsed one row at a time and only for what the poll needs (the id, the number, the
timestamp). A row that does not parse, or whose text the ledger cannot hold, is returned as rejected
with its id (when it has one) and the reason naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class RejectedRow:
    """A list row the poll could not use, and why."""

    record_id: str | None
    number: str | None
    reasons: list[str]
    raw: dict[str, Any]


def validation_reasons(exc: ValidationError) -> list[str]:
    """Pydantic's errors as "Field: what is wrong (got value)", one per field."""
    reasons = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())) or "row"
        shown = repr(error.get("input"))
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        reasons.append(f"{where}: {error.get('msg')} (got {shown})")
    return reasons


def text_reasons(row: Mapping[str, Any], limits: Mapping[str, int]) -> list[str]:
    """Text fields the ledger stores that are too long for their column or carry a NUL byte."""
    reasons = []
    for name, limit in limits.items():
        value = row.get(name)
        reason = unstorable(value, limit) if isinstance(value, str) else None
        if reason is not None:
            reasons.append(f"{name}: {reason}")
    return reasons


def unstorable(value: str, limit: int) -> str | None:
    """Why a ledger column of `limit` characters cannot hold this text, or None when it can."""
    if "\x00" in value:
        return "contains a NUL character, which the ledger cannot store"
    if len(value) > limit:
        return f"{len(value)} characters, more than the ledger's {limit}"
    return None


def parse_rows(
    rows: Iterable[Any],
    model: type[ModelT],
    *,
    id_field: str,
    number_field: str | None,
    text_limits: Mapping[str, int],
) -> tuple[list[ModelT], list[RejectedRow]]:
    """Each row as `model`, or rejected with its reasons; nothing raises."""
    parsed: list[ModelT] = []
    rejected: list[RejectedRow] = []
    for row in rows:
        if not isinstance(row, Mapping):
            rejected.append(RejectedRow(None, None, [f"not an object: {str(row)[:80]!r}"], {"row": repr(row)[:500]}))
            continue
        record_id = _text(row.get(id_field))
        number = _text(row.get(number_field)) if number_field else None
        reasons = text_reasons(row, text_limits)
        if not reasons:
            try:
                parsed.append(model.model_validate(row))
                continue
            except ValidationError as exc:
                reasons = validation_reasons(exc)
        rejected.append(RejectedRow(record_id, number, reasons, _storable(row)))
    return parsed, rejected


def _text(value: object) -> str | None:
    if value is None:
        return None
    # Kept short and NUL-free: it goes into the dead letter's own columns.
    return str(value).replace("\x00", "")[:64] or None


def _storable(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as JSON the ledger can hold (PostgreSQL's JSON refuses NUL characters)."""
    return {str(k): _clean(v) for k, v in row.items()}


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [_clean(v) for v in value]
    return value


def named_unstorable(fields: Iterable[tuple[str, str | None, int]]) -> list[str]:
    """Each (field name, value, column size) the ledger cannot hold, as "Field: why"."""
    reasons = ((name, unstorable(value, limit)) for name, value, limit in fields if value is not None)
    return [f"{name}: {reason}" for name, reason in reasons if reason is not None]

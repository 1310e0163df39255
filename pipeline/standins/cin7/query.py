"""Query parameters shared by the Cin7 stand-in's list endpoints: ``Page``/``Limit`` and ``...Since`` dates,
and the watermark-ordered listing that ``saleList`` and ``purchaseList`` share.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pipeline.standins.cin7.encoding import dumps
from pipeline.standins.cin7.responses import BadRequest, Response, error_response
from pipeline.standins.cin7.state import Cin7State, SaleEntry
from pipeline.standins.generator import parse_timestamp

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class QueryMixin(Cin7State):
    """Paging and since-date parsing (Cin7 clamps ``Limit`` to 1..1000)."""

    @staticmethod
    def _paging(query: dict[str, str]) -> tuple[int, int]:
        try:
            page = int(query.get("page") or 1)
            limit = int(query.get("limit") or DEFAULT_LIMIT)
        except ValueError as exc:
            raise BadRequest("Page and Limit must be integers") from exc
        return max(1, page), min(MAX_LIMIT, max(1, limit))

    @staticmethod
    def _since(query: dict[str, str], name: str) -> datetime | None:
        value = query.get(name.lower())
        if not value:
            return None
        try:
            # a "+" in the offset arrives as a space after form decoding
            return parse_timestamp(value.replace(" ", "+") if re.search(r"T.* \d\d:?\d\d$", value) else value)
        except ValueError as exc:
            raise BadRequest(f"{name} is not a valid date: {value!r}") from exc


def watermarked_rows(
    entries: dict[str, SaleEntry],
    ordered: list[tuple[datetime, str]],
    since: datetime | None,
    filters: dict[str, str],
    search: tuple[str, tuple[str, ...]],
) -> list[dict[str, Any]]:
    """The list rows of ``entries`` at or after ``since`` in watermark order, matching every filter.

    ``ordered`` is (watermark, key) sorted; ``filters`` maps a row field to a lower-case value it must
    equal (ignoring case); ``search`` is (lower-case text, the fields it may be found in). Call under the lock.
    """
    start = bisect.bisect_left(ordered, (since, "")) if since is not None else 0
    rows: Iterable[dict[str, Any]] = (entries[key].row for _, key in ordered[start:])
    if filters:
        rows = (r for r in rows if all(str(r.get(k) or "").lower() == v for k, v in filters.items()))
    text, fields = search
    if text:
        rows = (r for r in rows if any(text in str(r.get(k) or "").lower() for k in fields))
    return list(rows)


def equality_filters(query: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """The ``names`` given in ``query`` as {row field: lower-case value} (query keys are lower case)."""
    return {key: query[key.lower()].strip().lower() for key in names if query.get(key.lower())}


def detail_response(entry: SaleEntry | None, missing: str) -> Response:
    """A stored detail as JSON (encoded once, until it changes), or Cin7's wrapped 404 ``missing``."""
    if entry is None or not entry.detail:
        return error_response(404, missing)
    if entry.encoded is None:
        entry.encoded = dumps(entry.detail).encode("utf-8")
    return Response(200, entry.encoded)

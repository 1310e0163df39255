"""Query parameters shared by the Cin7 stand-in's list endpoints: ``Page``/``Limit`` and ``...Since`` dates."""

from __future__ import annotations

import re
from datetime import datetime

from pipeline.standins.cin7.responses import BadRequest
from pipeline.standins.cin7.state import Cin7State
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

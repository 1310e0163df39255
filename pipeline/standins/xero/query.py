"""Query and body handling shared by the Xero stand-in's list and write endpoints.

Xero's response envelope, the JSON request body, paging, ``where`` and ``order`` clauses, and
``If-Modified-Since``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from pipeline.standins.xero.data import ms_datetime
from pipeline.standins.xero.responses import BadRequest, Request, Response, json_response, query_error, validation_error
from pipeline.standins.xero.state import XeroState
from pipeline.standins.xero.values import Record, parse_http_date, utc_now
from pipeline.standins.xero.where import FieldSpec, Node, WhereError, evaluate, parse_where

PROVIDER_NAME = "cin7xero standin"


class Candidates:
    """The IDs that index lookups (``IDs=``, equalities in ``where``) narrow a listing to; ``None``: not narrowed."""

    def __init__(self) -> None:
        self.ids: set[str] | None = None

    def narrow(self, found: Iterable[str]) -> None:
        """Keep only the IDs also in ``found``."""
        found_set = set(found)
        self.ids = found_set if self.ids is None else self.ids & found_set


class QueryMixin(XeroState):
    """The envelope, body, paging, filter, order and modified-since helpers of the API endpoints."""

    def _envelope(self, key: str, items: list[Any], pagination: dict[str, int] | None = None) -> Response:
        payload: dict[str, Any] = {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": PROVIDER_NAME,
            "DateTimeUTC": ms_datetime(utc_now()),
        }
        if pagination is not None:
            payload["pagination"] = pagination
        payload[key] = items
        return json_response(200, payload)

    @staticmethod
    def _json_body(request: Request, key: str, singular: str) -> list[Any]:
        try:
            payload = json.loads(request.body, parse_float=Decimal) if request.body.strip() else None
        except ValueError as exc:
            raise BadRequest(
                json_response(
                    400, {"ErrorNumber": 17, "Type": "PostDataInvalidException", "Message": f"Invalid Json data: {exc}"}
                )
            ) from exc
        if isinstance(payload, dict):
            items = next((v for k, v in payload.items() if k.lower() == key.lower()), None)
            if items is None and payload:
                items = [payload]
        elif isinstance(payload, list):
            items = payload
        else:
            items = None
        if not isinstance(items, list) or not items:
            raise BadRequest(
                validation_error(
                    f"No data has been processed for this endpoint. This endpoint is expecting {singular} data "
                    "to be specifed in the request body."
                )
            )
        return items

    @staticmethod
    def _paging(request: Request) -> tuple[int, int] | None:
        if "page" not in request.query and "pagesize" not in request.query:
            return None
        try:
            page = max(1, int(request.query.get("page") or 1))
            size = int(request.query.get("pagesize") or 100)
        except ValueError as exc:
            raise BadRequest(validation_error("page and pageSize must be integers")) from exc
        return page, min(max(size, 1), 1000)

    @staticmethod
    def _paginate(items: list[Record], paging: tuple[int, int] | None) -> tuple[list[Record], dict[str, int] | None]:
        if paging is None:
            return items, None
        page, size = paging
        total = len(items)
        block = {"page": page, "pageSize": size, "pageCount": math.ceil(total / size), "itemCount": total}
        return items[(page - 1) * size : page * size], block

    @staticmethod
    def _where(request: Request, schema: FieldSpec, entity: str) -> Node | None:
        text = request.query.get("where")
        if text is None or not text.strip():
            return None
        try:
            return parse_where(text, schema, entity)
        except WhereError as exc:
            raise BadRequest(query_error(str(exc))) from exc

    def _order(
        self,
        request: Request,
        items: list[Record],
        schema: FieldSpec,
        entity: str,
        getter: Callable[[Record, tuple[str, ...]], Any],
    ) -> list[Record]:
        text = request.query.get("order")
        if not text or not text.strip():
            return items
        keys: list[tuple[tuple[str, ...], bool]] = []
        for part in text.split(","):
            words = part.split()
            if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
                raise BadRequest(query_error(f"Invalid order clause '{part.strip()}'"))
            path = tuple(words[0].split("."))
            try:
                parse_where(f"{words[0]} == null", schema, entity)
            except WhereError as exc:
                raise BadRequest(query_error(str(exc))) from exc
            keys.append((path, len(words) == 2 and words[1].upper() == "DESC"))
        ordered = list(items)
        for path, descending in reversed(keys):

            def sort_key(record: Record, path: tuple[str, ...] = path) -> tuple[bool, Any]:
                value = getter(record, path)
                if isinstance(value, str):
                    value = value.casefold()
                elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                    value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
                return (value is None, value if value is not None else 0)

            present = [r for r in ordered if getter(r, path) is not None]
            missing = [r for r in ordered if getter(r, path) is None]
            present.sort(key=sort_key, reverse=descending)
            ordered = present + missing
        return ordered

    def _select(
        self,
        request: Request,
        table: dict[str, Record],
        candidates: Candidates,
        node: Node | None,
        getter: Callable[[Record, tuple[str, ...]], Any],
        keep: Callable[[Record], bool] | None = None,
    ) -> list[Record]:
        """The records of a listing: narrowed by ``candidates``, then If-Modified-Since, ``keep`` and ``where``."""
        since, newer = self._modified_since(request, table)
        out: list[Record] = []
        for record in self._records_to_scan(table, candidates, newer):
            if since is not None and record["UpdatedDateUTC"] < since:
                continue
            if keep is not None and not keep(record):
                continue
            if node is not None and not evaluate(node, functools.partial(getter, record)):
                continue
            out.append(record)
        return out

    @staticmethod
    def _records_to_scan(table: dict[str, Record], candidates: Candidates, newer: list[Record] | None) -> list[Record]:
        # The narrowest start for a listing's filters, in UpdatedDateUTC order.
        if candidates.ids is not None:
            return sorted((table[i] for i in candidates.ids), key=lambda r: r["_seq"])
        if newer is not None:
            return newer
        return list(table.values())

    def _modified_since(
        self, request: Request, table: dict[str, Record]
    ) -> tuple[dt.datetime | None, list[Record] | None]:
        raw = request.headers.get("If-Modified-Since")
        since = parse_http_date(raw) if raw else None
        if since is None:
            return None, None
        newer: list[Record] = []
        # Records are kept in UpdatedDateUTC order, so walk back from the newest and stop early.
        for record in reversed(table.values()):
            if record["UpdatedDateUTC"] < since:
                break
            newer.append(record)
        newer.reverse()
        return since, newer

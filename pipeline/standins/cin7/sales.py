"""The Cin7 stand-in's sales endpoints: ``GET saleList`` (ordered by ``Updated``) and ``GET sale?ID=``."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from pipeline.standins.cin7.encoding import dumps
from pipeline.standins.cin7.query import QueryMixin
from pipeline.standins.cin7.responses import Response, error_response, json_response


class SalesMixin(QueryMixin):
    """Sale list rows and sale details."""

    def _sale_list(self, query: dict[str, str], body: bytes) -> Response:
        page, limit = self._paging(query)
        since = self._since(query, "UpdatedSince")
        self._since(query, "CreatedSince")  # validated, not filtered: the stand-in keeps no created time
        filters = {
            key: query[key.lower()].strip().lower()
            for key in ("Status", "OrderStatus", "CombinedInvoiceStatus", "ExternalID")
            if query.get(key.lower())
        }
        search = (query.get("search") or "").strip().lower()
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted((e.updated, sid) for sid, e in self._sales.items())
            ordered = self._sorted
            start = bisect.bisect_left(ordered, (since, "")) if since is not None else 0
            rows: Iterable[dict[str, Any]] = (self._sales[sid].row for _, sid in ordered[start:])
            if filters:
                rows = (r for r in rows if all(str(r.get(k) or "").lower() == v for k, v in filters.items()))
            if search:
                rows = (
                    r
                    for r in rows
                    if any(
                        search in str(r.get(k) or "").lower()
                        for k in ("OrderNumber", "InvoiceNumber", "Customer", "CustomerReference")
                    )
                )
            matched = list(rows)
        chunk = matched[(page - 1) * limit : page * limit]
        return json_response(200, {"Total": len(matched), "Page": page, "SaleList": chunk})

    def _sale_detail(self, query: dict[str, str], body: bytes) -> Response:
        sale_id = (query.get("id") or query.get("saleid") or "").strip().lower()
        if not sale_id:
            return error_response(400, "ID is required")
        with self._lock:
            entry = self._sales.get(sale_id)
            if entry is None or not entry.detail:
                return error_response(404, "Sale not found")
            if entry.encoded is None:
                entry.encoded = dumps(entry.detail).encode("utf-8")
            return Response(200, entry.encoded)

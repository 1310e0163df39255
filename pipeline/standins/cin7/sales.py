"""The Cin7 stand-in's sales endpoints: ``GET saleList`` (ordered by ``Updated``) and ``GET sale?ID=``."""

from __future__ import annotations

from pipeline.standins.cin7.query import QueryMixin, detail_response, equality_filters, watermarked_rows
from pipeline.standins.cin7.responses import Response, error_response, json_response


class SalesMixin(QueryMixin):
    """Sale list rows and sale details."""

    def _sale_list(self, query: dict[str, str], body: bytes) -> Response:
        page, limit = self._paging(query)
        since = self._since(query, "UpdatedSince")
        self._since(query, "CreatedSince")  # validated, not filtered: the stand-in keeps no created time
        filters = equality_filters(query, ("Status", "OrderStatus", "CombinedInvoiceStatus", "ExternalID"))
        search = (query.get("search") or "").strip().lower()
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted((e.updated, sid) for sid, e in self._sales.items())
            fields = ("OrderNumber", "InvoiceNumber", "Customer", "CustomerReference")
            matched = watermarked_rows(self._sales, self._sorted, since, filters, (search, fields))
        chunk = matched[(page - 1) * limit : page * limit]
        return json_response(200, {"Total": len(matched), "Page": page, "SaleList": chunk})

    def _sale_detail(self, query: dict[str, str], body: bytes) -> Response:
        sale_id = (query.get("id") or query.get("saleid") or "").strip().lower()
        if not sale_id:
            return error_response(400, "ID is required")
        with self._lock:
            return detail_response(self._sales.get(sale_id), "Sale not found")

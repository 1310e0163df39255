"""The Cin7 stand-in's purchase endpoints: ``GET purchaseList`` (ordered by ``LastUpdatedDate``) and
``GET advanced-purchase?ID=``, which serves simple, advanced and service purchases alike.

``UpdatedSince`` keeps rows with ``LastUpdatedDate >= UpdatedSince`` (the same ``>=`` as ``saleList``).
"""

from __future__ import annotations

from pipeline.standins.cin7.query import QueryMixin, detail_response, equality_filters, watermarked_rows
from pipeline.standins.cin7.responses import Response, error_response, json_response

_FILTERS = ("Status", "OrderStatus", "InvoiceStatus", "CreditNoteStatus", "CombinedInvoiceStatus")
_SEARCHED = ("OrderNumber", "InvoiceNumber", "Supplier", "CreditNoteNumber")


class PurchasesMixin(QueryMixin):
    """Purchase list rows and purchase details."""

    def _purchase_list(self, query: dict[str, str], body: bytes) -> Response:
        page, limit = self._paging(query)
        since = self._since(query, "UpdatedSince")
        self._since(query, "RequiredBy")  # validated, not filtered: generated purchases have none
        filters = equality_filters(query, _FILTERS)
        search = (query.get("search") or "").strip().lower()
        with self._lock:
            if self._purchases_sorted is None:
                self._purchases_sorted = sorted((e.updated, pid) for pid, e in self._purchases.items())
            matched = watermarked_rows(self._purchases, self._purchases_sorted, since, filters, (search, _SEARCHED))
        chunk = matched[(page - 1) * limit : page * limit]
        return json_response(200, {"Total": len(matched), "Page": page, "PurchaseList": chunk})

    def _purchase_detail(self, query: dict[str, str], body: bytes) -> Response:
        purchase_id = (query.get("id") or "").strip().lower()
        if not purchase_id:
            return error_response(400, "ID is required")
        with self._lock:
            return detail_response(self._purchases.get(purchase_id), "Purchase not found")

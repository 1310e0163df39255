"""The Cin7 stand-in's contact endpoints: ``GET customer`` and ``GET supplier``, with their filters and paging.

Both take ``Page``, ``Limit``, ``ID``, ``Name``, ``ModifiedSince`` and ``IncludeDeprecated`` and answer
``{Total, Page, <List>}`` ordered by name, so one implementation serves both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.standins.cin7.query import QueryMixin
from pipeline.standins.cin7.responses import Response, json_response
from pipeline.standins.generator import parse_timestamp


def _modified_since(record: dict[str, Any], since: datetime) -> bool:
    # A hostile stamp (a test's) is served on every read rather than crash the stand-in.
    try:
        return parse_timestamp(str(record["LastModifiedOn"])) >= since
    except (KeyError, ValueError, OverflowError):
        return True


class CustomersMixin(QueryMixin):
    """The customer and supplier lists."""

    def _customer_list(self, query: dict[str, str], body: bytes) -> Response:
        with self._lock:
            customers = list(self._customers.values())
        return self._contact_list(query, customers, "CustomerList")

    def _supplier_list(self, query: dict[str, str], body: bytes) -> Response:
        with self._lock:
            suppliers = list(self._suppliers.values())
        return self._contact_list(query, suppliers, "SupplierList")

    def _contact_list(self, query: dict[str, str], records: list[dict[str, Any]], list_key: str) -> Response:
        page, limit = self._paging(query)
        since = self._since(query, "ModifiedSince")
        wanted_id = (query.get("id") or "").strip().lower()
        name = (query.get("name") or "").strip().lower()
        include_deprecated = (query.get("includedeprecated") or "").strip().lower() == "true"
        if wanted_id:
            records = [c for c in records if str(c["ID"]).lower() == wanted_id]
        if name:
            records = [c for c in records if name in str(c.get("Name") or "").lower()]
        if since is not None:
            records = [c for c in records if _modified_since(c, since)]
        if not include_deprecated:
            records = [c for c in records if str(c.get("Status") or "").lower() != "deprecated"]
        records.sort(key=lambda c: (str(c.get("Name") or "").strip().lower(), str(c["ID"])))
        chunk = records[(page - 1) * limit : page * limit]
        return json_response(200, {"Total": len(records), "Page": page, list_key: chunk})

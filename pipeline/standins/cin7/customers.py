"""The Cin7 stand-in's customers endpoint: ``GET customer`` with its filters and paging."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.standins.cin7.query import QueryMixin
from pipeline.standins.cin7.responses import Response, json_response
from pipeline.standins.generator import parse_timestamp


def _modified_since(customer: dict[str, Any], since: datetime) -> bool:
    # A hostile stamp (a test's) is served on every read rather than crash the stand-in.
    try:
        return parse_timestamp(str(customer["LastModifiedOn"])) >= since
    except (KeyError, ValueError, OverflowError):
        return True


class CustomersMixin(QueryMixin):
    """The customer list."""

    def _customer_list(self, query: dict[str, str], body: bytes) -> Response:
        page, limit = self._paging(query)
        since = self._since(query, "ModifiedSince")
        wanted_id = (query.get("id") or "").strip().lower()
        name = (query.get("name") or "").strip().lower()
        include_deprecated = (query.get("includedeprecated") or "").strip().lower() == "true"
        with self._lock:
            customers = list(self._customers.values())
        if wanted_id:
            customers = [c for c in customers if str(c["ID"]).lower() == wanted_id]
        if name:
            customers = [c for c in customers if name in str(c.get("Name") or "").lower()]
        if since is not None:
            customers = [c for c in customers if _modified_since(c, since)]
        if not include_deprecated:
            customers = [c for c in customers if str(c.get("Status") or "").lower() != "deprecated"]
        customers.sort(key=lambda c: (str(c.get("Name") or "").strip().lower(), str(c["ID"])))
        chunk = customers[(page - 1) * limit : page * limit]
        return json_response(200, {"Total": len(customers), "Page": page, "CustomerList": chunk})

"""The Xero stand-in's history and notes: ``GET``/``PUT`` ``/Invoices/{id}/History`` and ``/Contacts/{id}/History``."""

from __future__ import annotations

from typing import Any

from pipeline.standins.xero.data import ms_datetime
from pipeline.standins.xero.invoices import InvoicesMixin
from pipeline.standins.xero.responses import Request, Response, not_found, validation_error
from pipeline.standins.xero.values import Record, as_text


class HistoryMixin(InvoicesMixin):
    """History records (notes) of invoices and contacts."""

    def _history_owner(self, request: Request) -> str | None:
        ref = request.segments[1]
        if request.segments[0].lower() == "invoices":
            inv = self._find_invoice(ref)
            return inv["InvoiceID"] if inv else None
        contact = self._find_contact(ref)
        return contact["ContactID"] if contact else None

    def _render_history(self, record: Record) -> dict[str, Any]:
        return {
            "Changes": record["Changes"],
            "DateUTCString": record["DateUTC"].strftime("%Y-%m-%dT%H:%M:%S"),
            "DateUTC": ms_datetime(record["DateUTC"]),
            "User": record["User"],
            "Details": record["Details"],
        }

    def _get_history(self, request: Request) -> Response:
        owner = self._history_owner(request)
        if owner is None:
            return not_found()
        return self._envelope("HistoryRecords", [self._render_history(r) for r in self._history.get(owner, [])])

    def _put_history(self, request: Request) -> Response:
        owner = self._history_owner(request)
        if owner is None:
            return not_found()
        items = self._json_body(request, "HistoryRecords", "HistoryRecord")
        failures: list[dict[str, Any]] = []
        for item in items:
            details = as_text(item.get("Details")) if isinstance(item, dict) else None
            message = None
            if not details:
                message = "The Details field is required."
            elif len(details) > 250:
                message = "The Details field must be 250 characters or less."
            if message:
                failures.append({"Details": details, "ValidationErrors": [{"Message": message}]})
        if failures:
            return validation_error("A validation exception occurred", failures)
        added = [
            {"Changes": "Note", "DateUTC": self._stamp(), "User": "System Generated", "Details": item["Details"]}
            for item in items
        ]
        self._history.setdefault(owner, []).extend(added)
        return self._envelope("HistoryRecords", [self._render_history(r) for r in added])

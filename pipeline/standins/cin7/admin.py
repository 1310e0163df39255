"""The Cin7 stand-in's admin endpoints under ``/_standin/``: stats, reset, faults, sales, customers, suppliers,
purchases, edits.

They are not counted, limited or authenticated, so tests and benchmarks can drive the stand-in over HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pipeline.standins.cin7.encoding import loads
from pipeline.standins.cin7.responses import Response, error_response, json_response
from pipeline.standins.cin7.state import Cin7State
from pipeline.standins.generator import edit_invoice, parse_timestamp, void_invoice

_INVOICE_ACTION = re.compile(r"sales/([^/]+)/invoices/([^/]+)/(edit|void)", flags=re.IGNORECASE)


class AdminMixin(Cin7State):
    """``/_standin/`` requests."""

    def _admin(self, method: str, path: str, body: bytes) -> Response:
        route = path[len("/_standin/") :].strip("/")
        try:
            payload = loads(body)
        except ValueError:
            return error_response(400, "Request body is not valid JSON", wrap=False)
        routes: dict[tuple[str, str], Callable[[Any], Response]] = {
            ("GET", "stats"): self._admin_stats,
            ("POST", "reset"): self._admin_reset,
            ("POST", "faults"): self._admin_set_faults,
            ("PUT", "sales"): self._admin_put_sale,
            ("PUT", "customers"): self._admin_put_customer,
            ("PUT", "suppliers"): self._admin_put_supplier,
            ("PUT", "purchases"): self._admin_put_purchase,
            ("PUT", "sale-rows"): self._admin_put_list_row,
        }
        handler = routes.get((method, route.lower()))
        if handler is not None:
            return handler(payload)
        match = _INVOICE_ACTION.fullmatch(route)
        if method == "POST" and match:
            return self._admin_invoice_action(match, payload)
        return error_response(404, "Not found", wrap=False)

    def _admin_stats(self, _payload: Any) -> Response:
        return json_response(200, self.stats())

    def _admin_reset(self, payload: Any) -> Response:
        restore = bool(isinstance(payload, dict) and payload.get("restore_data"))
        self.reset(restore_data=restore)
        return json_response(200, {"ok": True})

    def _admin_set_faults(self, payload: Any) -> Response:
        try:
            self.set_faults(**(payload or {}))
        except (TypeError, ValueError) as exc:
            return error_response(400, str(exc), wrap=False)
        return json_response(200, {"ok": True})

    def _admin_put_sale(self, payload: Any) -> Response:
        return _put_record(payload, "a sale detail", self.put_sale)

    def _admin_put_list_row(self, payload: Any) -> Response:
        """``{"row": {...}, "updated": "2026-01-01T00:00:00Z"}``: a raw saleList row (see put_list_row)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("row"), dict) or not payload.get("updated"):
            return error_response(400, 'body must be {"row": {...}, "updated": timestamp}', wrap=False)
        key = self.put_list_row(payload["row"], updated=parse_timestamp(str(payload["updated"])))
        return json_response(200, {"ok": True, "key": key})

    def _admin_put_customer(self, payload: Any) -> Response:
        return _put_record(payload, "a customer", self.put_customer)

    def _admin_put_supplier(self, payload: Any) -> Response:
        return _put_record(payload, "a supplier", self.put_supplier)

    def _admin_put_purchase(self, payload: Any) -> Response:
        return _put_record(payload, "a purchase detail", self.put_purchase)

    def _admin_invoice_action(self, match: re.Match[str], payload: Any) -> Response:
        """``sales/{id}/invoices/{task}/edit`` or ``.../void``: change the invoice as a Cin7 user would."""
        options = payload if isinstance(payload, dict) else {}
        try:
            now = parse_timestamp(str(options["now"])) if options.get("now") else datetime.now(UTC)
            with self._lock:
                entry = self._sales.get(match.group(1).lower())
                if entry is None:
                    return error_response(404, "Sale not found", wrap=False)
                if match.group(3).lower() == "edit":
                    delta = int(options.get("quantity_delta", 1))
                    changed = edit_invoice(entry.detail, match.group(2), now=now, quantity_delta=delta)
                else:
                    changed = void_invoice(entry.detail, match.group(2), now=now)
                self._put_sale_locked(changed)
        except KeyError as exc:
            return error_response(404, str(exc), wrap=False)
        except ValueError as exc:
            return error_response(400, str(exc), wrap=False)
        return json_response(200, changed)


def _put_record(payload: Any, what: str, put: Callable[[dict[str, Any]], None]) -> Response:
    """Store a JSON object with an ``ID`` through ``put``; 400 naming ``what`` for anything else."""
    if not isinstance(payload, dict) or "ID" not in payload:
        return error_response(400, f"body must be {what} with an ID", wrap=False)
    try:
        put(payload)
    except (KeyError, TypeError, ValueError) as exc:
        # e.g. a purchase whose LastUpdatedDate does not parse: it cannot be ordered in purchaseList
        return error_response(400, f"body is not {what} the stand-in can serve: {exc}", wrap=False)
    return json_response(200, {"ok": True})

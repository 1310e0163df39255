"""The Cin7 stand-in's admin endpoints under ``/_standin/``: stats, reset, faults, sales, customers, edits.

They are not counted, limited or authenticated, so tests and benchmarks can drive the stand-in over HTTP.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pipeline.standins.cin7.encoding import loads
from pipeline.standins.cin7.responses import Response, error_response, json_response
from pipeline.standins.cin7.state import Cin7State
from pipeline.standins.generator import edit_invoice, parse_timestamp, void_invoice


class AdminMixin(Cin7State):
    """``/_standin/`` requests."""

    def _admin(self, method: str, path: str, body: bytes) -> Response:
        route = path[len("/_standin/") :].strip("/")
        try:
            payload = loads(body)
        except ValueError:
            return error_response(400, "Request body is not valid JSON", wrap=False)
        if (method, route.lower()) == ("GET", "stats"):
            return json_response(200, self.stats())
        if (method, route.lower()) == ("POST", "reset"):
            restore = bool(isinstance(payload, dict) and payload.get("restore_data"))
            self.reset(restore_data=restore)
            return json_response(200, {"ok": True})
        if (method, route.lower()) == ("POST", "faults"):
            try:
                self.set_faults(**(payload or {}))
            except (TypeError, ValueError) as exc:
                return error_response(400, str(exc), wrap=False)
            return json_response(200, {"ok": True})
        if (method, route.lower()) == ("PUT", "sales"):
            if not isinstance(payload, dict) or "ID" not in payload:
                return error_response(400, "body must be a sale detail with an ID", wrap=False)
            self.put_sale(payload)
            return json_response(200, {"ok": True})
        if (method, route.lower()) == ("PUT", "customers"):
            if not isinstance(payload, dict) or "ID" not in payload:
                return error_response(400, "body must be a customer with an ID", wrap=False)
            self.put_customer(payload)
            return json_response(200, {"ok": True})
        match = re.fullmatch(r"sales/([^/]+)/invoices/([^/]+)/(edit|void)", route, flags=re.IGNORECASE)
        if method == "POST" and match:
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
        return error_response(404, "Not found", wrap=False)

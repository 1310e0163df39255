"""The Xero stand-in's admin endpoints under ``/_standin/``: data, stats, reset, faults, seeds and payments.

They are never counted, limited, faulted or authenticated, so tests and benchmarks can drive the stand-in
over HTTP from another process.
"""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import unquote

from pipeline.standins.xero.invoices import InvoicesMixin
from pipeline.standins.xero.limits import LimitsMixin
from pipeline.standins.xero.responses import Response, json_response, not_found
from pipeline.standins.xero.values import Num, jsonable


class AdminMixin(InvoicesMixin, LimitsMixin):
    """``/_standin/`` requests."""

    def _admin(self, method: str, path: str, body: bytes) -> Response:
        parts = [unquote(p) for p in path.split("/") if p][1:]
        num: Num = str
        try:
            payload = json.loads(body, parse_float=Decimal) if body.strip() else None
        except ValueError:
            return json_response(400, {"error": "invalid JSON"})
        key = (method, tuple(p.lower() for p in parts))
        if key == ("GET", ("invoices",)):
            with self._lock:
                items = [self._render_invoice(i, lines=True, num=num) for i in self._invoices.values()]
            return json_response(200, items)
        if key == ("GET", ("contacts",)):
            with self._lock:
                contacts = [self._render_contact(c, num=num) for c in self._contacts.values()]
            return json_response(200, contacts)
        if key == ("GET", ("stats",)):
            return json_response(200, self.stats())
        if key == ("POST", ("reset",)):
            self.reset()
            return json_response(200, {"ok": True})
        if key in (("POST", ("faults",)), ("GET", ("faults",))):
            if method == "POST":
                try:
                    self.set_faults(**(payload or {}))
                except (TypeError, ValueError) as exc:
                    return json_response(400, {"error": str(exc)})
            return json_response(200, {"ok": True, "faults": self.faults()})
        if key == ("POST", ("contacts",)):
            seeds = payload.get("Contacts") if isinstance(payload, dict) else payload
            if not isinstance(seeds, list):
                return json_response(400, {"error": "expected a list of contacts"})
            try:
                created = self.seed_contacts(seeds)
            except ValueError as exc:
                return json_response(400, {"error": str(exc)})
            return json_response(200, jsonable(created, num))
        if method == "POST" and len(parts) == 3 and parts[0].lower() == "invoices" and parts[2].lower() == "pay":
            try:
                paid = self.pay_invoice(parts[1])
            except KeyError:
                return not_found()
            except ValueError as exc:
                return json_response(400, {"error": str(exc)})
            return json_response(200, jsonable(paid, num))
        return not_found()

"""The Xero stand-in's admin endpoints under ``/_standin/``: data, stats, reset, faults, seeds and payments.

``POST /_standin/invoices/{id}/pay`` pays an invoice in full and ``POST /_standin/payments/{id}/reconcile``
marks a payment reconciled, as a person in Xero would. ``POST /_standin/contacts`` and ``POST /_standin/invoices``
seed contacts and invoices (a list, or ``{"Contacts": [...]}`` / ``{"Invoices": [...]}``) as typed in Xero, and
``POST /_standin/tracking-categories`` tracking categories (``{"Sales Rep": ["Alice"]}``, a list of categories,
or ``{"TrackingCategories": [...]}``); ``GET /_standin/tracking-categories`` lists them.

They are never counted, limited, faulted or authenticated, so tests and benchmarks can drive the stand-in
over HTTP from another process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from pipeline.standins.xero.allocations import AllocationsMixin
from pipeline.standins.xero.limits import LimitsMixin
from pipeline.standins.xero.payments import PaymentsMixin
from pipeline.standins.xero.responses import Response, json_response, not_found
from pipeline.standins.xero.seeding import SeedingMixin
from pipeline.standins.xero.values import Num, jsonable

#: Admin views give amounts as exact decimal strings, not as the floats the API sends.
_NUM: Num = str


class AdminMixin(SeedingMixin, PaymentsMixin, AllocationsMixin, LimitsMixin):
    """``/_standin/`` requests."""

    def _admin(self, method: str, path: str, body: bytes) -> Response:
        parts = [unquote(p) for p in path.split("/") if p][1:]
        try:
            payload = json.loads(body, parse_float=Decimal) if body.strip() else None
        except ValueError:
            return json_response(400, {"error": "invalid JSON"})
        routes: dict[tuple[str, tuple[str, ...]], Callable[[Any], Response]] = {
            ("GET", ("invoices",)): self._admin_invoices,
            ("GET", ("contacts",)): self._admin_contacts,
            ("GET", ("payments",)): self._admin_payments,
            ("GET", ("credit-notes",)): self._admin_credit_notes,
            ("GET", ("stats",)): self._admin_stats,
            ("POST", ("reset",)): self._admin_reset,
            ("GET", ("faults",)): self._admin_faults,
            ("POST", ("faults",)): self._admin_set_faults,
            ("POST", ("contacts",)): self._admin_seed_contacts,
            ("POST", ("invoices",)): self._admin_seed_invoices,
            ("GET", ("tracking-categories",)): self._admin_tracking,
            ("POST", ("tracking-categories",)): self._admin_seed_tracking,
        }
        handler = routes.get((method, tuple(p.lower() for p in parts)))
        if handler is not None:
            return handler(payload)
        if method == "POST" and len(parts) == 3:
            action = (parts[0].lower(), parts[2].lower())
            if action == ("invoices", "pay"):
                return self._admin_pay(parts[1])
            if action == ("payments", "reconcile"):
                return self._admin_reconcile(parts[1])
        return not_found()

    def _admin_invoices(self, _payload: Any) -> Response:
        with self._lock:
            items = [self._render_invoice(i, lines=True, num=_NUM) for i in self._invoices.values()]
        return json_response(200, items)

    def _admin_payments(self, _payload: Any) -> Response:
        with self._lock:
            items = [self._render_payment(p, _NUM) for p in self._payments.values()]
        return json_response(200, items)

    def _admin_credit_notes(self, _payload: Any) -> Response:
        with self._lock:
            items = [self._render_credit_note(c, lines=True, num=_NUM) for c in self._credit_notes.values()]
        return json_response(200, items)

    def _admin_contacts(self, _payload: Any) -> Response:
        with self._lock:
            contacts = [self._render_contact(c, num=_NUM) for c in self._contacts.values()]
        return json_response(200, contacts)

    def _admin_stats(self, _payload: Any) -> Response:
        return json_response(200, self.stats())

    def _admin_reset(self, _payload: Any) -> Response:
        self.reset()
        return json_response(200, {"ok": True})

    def _admin_faults(self, _payload: Any) -> Response:
        return json_response(200, {"ok": True, "faults": self.faults()})

    def _admin_set_faults(self, payload: Any) -> Response:
        try:
            self.set_faults(**(payload or {}))
        except (TypeError, ValueError) as exc:
            return json_response(400, {"error": str(exc)})
        return self._admin_faults(payload)

    def _admin_seed_contacts(self, payload: Any) -> Response:
        return _seed(payload, "Contacts", self.seed_contacts)

    def _admin_seed_invoices(self, payload: Any) -> Response:
        return _seed(payload, "Invoices", self.seed_invoices)

    def _admin_tracking(self, _payload: Any) -> Response:
        return json_response(200, self.tracking_categories())

    def _admin_seed_tracking(self, payload: Any) -> Response:
        if isinstance(payload, dict) and isinstance(payload.get("TrackingCategories"), list):
            payload = payload["TrackingCategories"]
        if not isinstance(payload, (dict, list)):
            return json_response(400, {"error": "expected tracking categories"})
        try:
            return json_response(200, self.seed_tracking(payload))
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})

    def _admin_pay(self, invoice_id: str) -> Response:
        try:
            paid = self.pay_invoice(invoice_id)
        except KeyError:
            return not_found()
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(200, jsonable(paid, _NUM))

    def _admin_reconcile(self, payment_id: str) -> Response:
        try:
            payment = self.reconcile_payment(payment_id)
        except KeyError:
            return not_found()
        return json_response(200, jsonable(payment, _NUM))


def _seed(payload: Any, key: str, seed: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> Response:
    """Seed a list given as it is or as ``{key: [...]}``; answer what was seeded, or 400 with why not."""
    seeds = payload.get(key) if isinstance(payload, dict) else payload
    if not isinstance(seeds, list):
        return json_response(400, {"error": f"expected a list of {key.lower()}"})
    try:
        created = seed(seeds)
    except ValueError as exc:
        return json_response(400, {"error": str(exc)})
    return json_response(200, jsonable(created, _NUM))

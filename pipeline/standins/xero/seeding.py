"""Documents put into the Xero stand-in as if a person had typed them in Xero: ``seed_invoices()``.

A seeded invoice takes the path of ``PUT /Invoices?unitdp=4`` (the same validation, contact by name,
line amounts and totals, numbering and commit), all or nothing, but outside the API gate: it is never
counted, rate limited or faulted, like a seeded contact. Unlike an API write it may be dated on or before
the period lock date, since it was typed before the books were locked. The constructor's
``seed_invoices`` are applied after its seed contacts, and again on every ``reset()``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipeline.standins.xero.batches import Claims
from pipeline.standins.xero.documents import INVOICE_SPEC, DocumentPlan, DocumentSpec
from pipeline.standins.xero.transactions import TransactionsMixin
from pipeline.standins.xero.values import Record, as_decimal


class SeedingMixin(TransactionsMixin):
    """In-process seeding of invoices (``seed_invoices()``), and of the constructor's seeds on every reset."""

    #: True while seeds are validated: the period lock date does not apply to them.
    _seeding = False

    def _clear_state(self) -> None:
        # The seed contacts come back first (ContactsMixin), so that seeded invoices can name them.
        super()._clear_state()
        self._seed_documents(INVOICE_SPEC, self._seed_invoices)

    def seed_invoices(self, invoices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert invoices (``PUT /Invoices`` JSON) as typed in Xero; return them as ``invoices()`` does.

        All or nothing: ``ValueError`` naming every refused element (by its index) when any is refused,
        e.g. for a number Xero already has. Their status is kept (DRAFT, SUBMITTED or AUTHORISED).
        """
        with self._lock:
            records = self._seed_documents(INVOICE_SPEC, invoices)
            return [self._render_invoice(record, lines=True, num=as_decimal) for record in records]

    def _seed_documents(self, spec: DocumentSpec, elems: list[dict[str, Any]]) -> list[Record]:
        """Validate every element as a ``PUT`` would, then commit them all; the caller holds the lock."""
        claims = Claims()
        plans: list[DocumentPlan] = []
        refused: list[str] = []
        self._seeding = True
        try:
            for index, elem in enumerate(elems):
                plan, errors = self._prepare_document(spec, elem, "PUT", None, True, claims)
                if plan is None:
                    refused.append(f"{spec.noun} {index}: {'; '.join(errors)}")
                    continue
                self._claim_document(spec, plan, claims)
                plans.append(plan)
        finally:
            self._seeding = False
        if refused:
            raise ValueError(" | ".join(refused))
        return [self._commit_document(spec, plan) for plan in plans]

    def _check_lock_date(self, date: dt.date, errors: list[str]) -> None:
        if not self._seeding:
            super()._check_lock_date(date, errors)

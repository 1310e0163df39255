"""The sale invoice: a Cin7 Core sale invoice becomes one Xero ACCREC invoice."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from mappings import (
    Cin7Invoice,
    Cin7InvoiceStatus,
    InvoiceAction,
    map_invoice,
    recheck_invoice_action,
    void_payload,
)
from pipeline.kinds.base import Dependency, Parent, PlanInput, as_sale
from pipeline.kinds.numbered import NumberedKind, xero_status_of
from pipeline.xero.client import XeroClient


class InvoiceWrites:
    """How a document of Xero's Invoices collection (a sale invoice, a bill) is voided and rechecked."""

    def void_payload(self, xero_id: str, number: str, action: InvoiceAction) -> dict[str, Any]:
        """Only InvoiceID, InvoiceNumber and the new Status."""
        return void_payload(xero_id, number, action).to_json()

    def recheck(self, action: InvoiceAction, current: dict[str, Any]) -> InvoiceAction:
        """Paid or credited in Xero since the mapping: a conflict; voided there already: nothing to do."""
        paid = Decimal(str(current.get("AmountPaid") or 0)) + Decimal(str(current.get("AmountCredited") or 0))
        return recheck_invoice_action(action, xero_status_of(current.get("Status")), paid)


class InvoiceKind(InvoiceWrites, NumberedKind[Cin7Invoice]):
    """Sale invoices (`Invoices[]` of a Cin7 sale, keyed by TaskID) as Xero ACCREC invoices."""

    name = "invoice"
    collection = "Invoices"
    id_field = "InvoiceID"
    number_field = "InvoiceNumber"
    xero_type = "ACCREC"
    sent_statuses = frozenset({Cin7InvoiceStatus.AUTHORISED, Cin7InvoiceStatus.PAID})

    def dependencies(self, parent: Parent, task_id: str, *, cin7_status: str | None) -> list[Dependency]:
        """Nothing, to be created; to be voided, its payments and credit taken off Xero first (Cin7 asks
        for them to be removed before a void, and Xero refuses to void a paid or credited invoice).
        """
        sale = as_sale(parent)
        invoice = sale.invoice_by_task_id(task_id)
        if invoice is not None and Cin7InvoiceStatus.parse(invoice.status) is not Cin7InvoiceStatus.VOIDED:
            return []
        return [Dependency("payment", "*", need="undone")]

    def document(self, given: PlanInput) -> Cin7Invoice | None:
        """`Invoices[]` of the sale by TaskID."""
        return given.sale.invoice_by_task_id(given.task_id)

    def map(self, given: PlanInput, document: Cin7Invoice) -> dict[str, Any]:
        """`mappings.map_invoice`."""
        return map_invoice(
            given.sale, document, customer=given.customer, rules=given.rules, reference=given.reference
        ).to_json()

    def get(self, xero: XeroClient, *, numbers: Sequence[str] = (), ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """`GET /Invoices?InvoiceNumbers=` or `?IDs=`."""
        return xero.get_invoices(numbers=numbers, ids=ids)


INVOICE = InvoiceKind()

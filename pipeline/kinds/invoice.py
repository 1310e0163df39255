"""The sale invoice: a Cin7 Core sale invoice becomes one Xero ACCREC invoice."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from mappings import (
    Cin7Customer,
    Cin7InvoiceStatus,
    Cin7Sale,
    InvoiceAction,
    MappingRules,
    OrgReference,
    XeroInvoiceStatus,
    content_hash,
    decide_invoice_action,
    map_invoice,
    recheck_invoice_action,
    void_payload,
)
from pipeline.kinds.base import Dependency, InXero, MappedDocument
from pipeline.kinds.numbered import NumberedKind
from pipeline.xero.client import ElementResult, XeroClient


def xero_status_of(value: str | None) -> XeroInvoiceStatus | None:
    """Xero's status text as the enum; None when missing or one we do not know."""
    try:
        return XeroInvoiceStatus(str(value).upper()) if value else None
    except ValueError:
        return None


class InvoiceKind(NumberedKind):
    """Sale invoices (`Invoices[]` of a Cin7 sale, keyed by TaskID) as Xero ACCREC invoices."""

    name = "invoice"
    collection = "Invoices"
    id_field = "InvoiceID"
    number_field = "InvoiceNumber"
    xero_type = "ACCREC"

    def dependencies(self, sale: Cin7Sale, task_id: str, *, cin7_status: str | None) -> list[Dependency]:
        """Nothing, to be created; to be voided, its payments and credit taken off Xero first (Cin7 asks
        for them to be removed before a void, and Xero refuses to void a paid or credited invoice).
        """
        invoice = sale.invoice_by_task_id(task_id)
        if invoice is not None and Cin7InvoiceStatus.parse(invoice.status) is not Cin7InvoiceStatus.VOIDED:
            return []
        return [Dependency("payment", "*", need="undone")]

    def plan(
        self,
        sale: Cin7Sale,
        task_id: str,
        *,
        cin7_status: str | None,
        customer: Cin7Customer | None,
        rules: MappingRules,
        reference: OrgReference,
        in_xero: InXero,
    ) -> MappedDocument:
        """Map the invoice (when Cin7 has it authorised or paid) and decide create/update/void/skip."""
        invoice = sale.invoice_by_task_id(task_id)
        # An invoice gone from its sale (Cin7 "Undo") counts as voided.
        status = "VOIDED" if invoice is None else (cin7_status or "NOT AVAILABLE")
        payload: dict[str, Any] | None = None
        if invoice is not None and Cin7InvoiceStatus.parse(status) in (
            Cin7InvoiceStatus.AUTHORISED,
            Cin7InvoiceStatus.PAID,
        ):
            payload = map_invoice(sale, invoice, customer=customer, rules=rules, reference=reference).to_json()
        action = decide_invoice_action(
            status,
            synced=in_xero.synced,
            xero_status=xero_status_of(in_xero.xero_status),
            xero_amount_paid=None,
            content_changed=payload is not None and content_hash(payload) != in_xero.synced_hash,
        )
        return MappedDocument(action, payload, status)

    def void_payload(self, xero_id: str, number: str, action: InvoiceAction) -> dict[str, Any]:
        """Only InvoiceID, InvoiceNumber and the new Status."""
        return void_payload(xero_id, number, action).to_json()

    def recheck(self, action: InvoiceAction, current: dict[str, Any]) -> InvoiceAction:
        """Paid or credited in Xero since the mapping: a conflict; voided there already: nothing to do."""
        paid = Decimal(str(current.get("AmountPaid") or 0)) + Decimal(str(current.get("AmountCredited") or 0))
        return recheck_invoice_action(action, xero_status_of(current.get("Status")), paid)

    def create(self, xero: XeroClient, body: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """`PUT /Invoices`."""
        return xero.create_invoices(body, idempotency_key)

    def update(self, xero: XeroClient, body: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """`POST /Invoices`."""
        return xero.update_invoices(body, idempotency_key)

    def find_by_numbers(self, xero: XeroClient, numbers: Sequence[str]) -> list[dict[str, Any]]:
        """Our invoices only: an ACCPAY bill may carry the same number."""
        return [inv for inv in xero.get_invoices(numbers=numbers) if self.ours(inv)]

    def find_by_ids(self, xero: XeroClient, ids: Sequence[str]) -> list[dict[str, Any]]:
        """`GET /Invoices?IDs=`."""
        return xero.get_invoices(ids=ids)


INVOICE = InvoiceKind()

"""The sale credit note: a Cin7 Core credit note becomes one Xero ACCRECCREDIT credit note."""

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
    credit_note_void_payload,
    decide_invoice_action,
    map_credit_note,
    recheck_invoice_action,
)
from pipeline.kinds.base import Dependency, InXero, MappedDocument
from pipeline.kinds.invoice import xero_status_of
from pipeline.kinds.numbered import NumberedKind
from pipeline.xero.client import ElementResult, XeroClient


def credited_amount(current: dict[str, Any]) -> Decimal:
    """What of a Xero credit note is already used: allocated to invoices or refunded."""
    total = Decimal(str(current.get("Total") or 0))
    remaining = current.get("RemainingCredit")
    return total - Decimal(str(remaining)) if remaining is not None else Decimal(0)


class CreditNoteKind(NumberedKind):
    """Sale credit notes (`CreditNotes[]` of a Cin7 sale, keyed by TaskID) as Xero ACCRECCREDIT."""

    name = "credit_note"
    collection = "CreditNotes"
    id_field = "CreditNoteID"
    number_field = "CreditNoteNumber"
    xero_type = "ACCRECCREDIT"

    def dependencies(self, sale: Cin7Sale, task_id: str, *, cin7_status: str | None) -> list[Dependency]:
        """A credit note is voided only after its allocation is taken off (Xero refuses otherwise)."""
        note = sale.credit_note_by_task_id(task_id)
        if note is None or Cin7InvoiceStatus.parse(note.status) is Cin7InvoiceStatus.VOIDED:
            return [Dependency("allocation", task_id, need="undone")]
        return []

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
        """Map an AUTHORISED credit note; decide create/update/void/skip as for invoices."""
        note = sale.credit_note_by_task_id(task_id)
        status = "VOIDED" if note is None else (cin7_status or "NOT AVAILABLE")
        payload: dict[str, Any] | None = None
        if note is not None and Cin7InvoiceStatus.parse(status) is Cin7InvoiceStatus.AUTHORISED:
            payload = map_credit_note(sale, note, customer=customer, rules=rules, reference=reference).to_json()
        action = decide_invoice_action(
            status,
            synced=in_xero.synced,
            xero_status=xero_status_of(in_xero.xero_status),
            xero_amount_paid=None,
            content_changed=payload is not None and content_hash(payload) != in_xero.synced_hash,
        )
        return MappedDocument(action, payload, status)

    def void_payload(self, xero_id: str, number: str, action: InvoiceAction) -> dict[str, Any]:
        """Only CreditNoteID, CreditNoteNumber and the new Status."""
        status = XeroInvoiceStatus.VOIDED if action is InvoiceAction.VOID else XeroInvoiceStatus.DELETED
        return credit_note_void_payload(xero_id, number, status).to_json()

    def recheck(self, action: InvoiceAction, current: dict[str, Any]) -> InvoiceAction:
        """Allocated or refunded in Xero: a change would be refused, so it is a conflict."""
        return recheck_invoice_action(action, xero_status_of(current.get("Status")), credited_amount(current))

    def create(self, xero: XeroClient, body: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """`PUT /CreditNotes`."""
        return xero.create_credit_notes(body, idempotency_key)

    def update(self, xero: XeroClient, body: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """`POST /CreditNotes`."""
        return xero.update_credit_notes(body, idempotency_key)

    def find_by_numbers(self, xero: XeroClient, numbers: Sequence[str]) -> list[dict[str, Any]]:
        """Our credit notes only: a supplier's ACCPAYCREDIT may carry the same number."""
        return [note for note in xero.get_credit_notes(numbers=numbers) if self.ours(note)]

    def find_by_ids(self, xero: XeroClient, ids: Sequence[str]) -> list[dict[str, Any]]:
        """`GET /CreditNotes?where=CreditNoteID==…`."""
        return xero.get_credit_notes(ids=ids)


CREDIT_NOTE = CreditNoteKind()

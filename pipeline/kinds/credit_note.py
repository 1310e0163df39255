"""The sale credit note: a Cin7 Core credit note becomes one Xero ACCRECCREDIT credit note."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from mappings import (
    Cin7CreditNote,
    Cin7InvoiceStatus,
    InvoiceAction,
    XeroInvoiceStatus,
    credit_note_void_payload,
    map_credit_note,
    recheck_invoice_action,
)
from pipeline.kinds.base import Dependency, Parent, PlanInput, as_sale
from pipeline.kinds.numbered import NumberedKind, xero_status_of
from pipeline.xero.client import XeroClient


def credited_amount(current: dict[str, Any]) -> Decimal:
    """What of a Xero credit note is already used: allocated to invoices or refunded."""
    total = Decimal(str(current.get("Total") or 0))
    remaining = current.get("RemainingCredit")
    return total - Decimal(str(remaining)) if remaining is not None else Decimal(0)


class CreditNoteWrites:
    """How a document of Xero's CreditNotes collection (a sale's, a supplier's) is voided and rechecked."""

    def void_payload(self, xero_id: str, number: str, action: InvoiceAction) -> dict[str, Any]:
        """Only CreditNoteID, CreditNoteNumber and the new Status."""
        status = XeroInvoiceStatus.VOIDED if action is InvoiceAction.VOID else XeroInvoiceStatus.DELETED
        return credit_note_void_payload(xero_id, number, status).to_json()

    def recheck(self, action: InvoiceAction, current: dict[str, Any]) -> InvoiceAction:
        """Allocated or refunded in Xero: a change would be refused, so it is a conflict."""
        return recheck_invoice_action(action, xero_status_of(current.get("Status")), credited_amount(current))


class CreditNoteKind(CreditNoteWrites, NumberedKind[Cin7CreditNote]):
    """Sale credit notes (`CreditNotes[]` of a Cin7 sale, keyed by TaskID) as Xero ACCRECCREDIT."""

    name = "credit_note"
    collection = "CreditNotes"
    id_field = "CreditNoteID"
    number_field = "CreditNoteNumber"
    xero_type = "ACCRECCREDIT"
    sent_statuses = frozenset({Cin7InvoiceStatus.AUTHORISED})

    def dependencies(self, parent: Parent, task_id: str, *, cin7_status: str | None) -> list[Dependency]:
        """A credit note is voided only after its allocation is taken off (Xero refuses otherwise)."""
        sale = as_sale(parent)
        note = sale.credit_note_by_task_id(task_id)
        if note is None or Cin7InvoiceStatus.parse(note.status) is Cin7InvoiceStatus.VOIDED:
            return [Dependency("allocation", task_id, need="undone")]
        return []

    def document(self, given: PlanInput) -> Cin7CreditNote | None:
        """`CreditNotes[]` of the sale by TaskID."""
        return given.sale.credit_note_by_task_id(given.task_id)

    def map(self, given: PlanInput, document: Cin7CreditNote) -> dict[str, Any]:
        """`mappings.map_credit_note`."""
        return map_credit_note(
            given.sale, document, customer=given.customer, rules=given.rules, reference=given.reference
        ).to_json()

    def get(self, xero: XeroClient, *, numbers: Sequence[str] = (), ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """`GET /CreditNotes?where=…` (with their allocations)."""
        return xero.get_credit_notes(numbers=numbers, ids=ids)


CREDIT_NOTE = CreditNoteKind()

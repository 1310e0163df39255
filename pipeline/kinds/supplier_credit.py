"""Supplier credit: a Cin7 purchase's credit notes as Xero ACCPAYCREDIT credit notes, allocated to their
bill by the sales rule, and the supplier's refunds of them as payments on the credit note.

Like bill numbers, supplier credit-note numbers are not kept unique by Xero, so a credit note is
known by its purchase and TaskID, and one found after a lost answer is adopted only on the supplier's
contact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mappings import (
    Cin7CreditNote,
    Cin7InvoiceStatus,
    Cin7Purchase,
    Cin7PurchaseCreditNote,
    CreditAllocation,
    credit_allocations,
    map_purchase_credit_note,
)
from pipeline.kinds.applied import AllocationKind, PaymentKind
from pipeline.kinds.base import Dependency, Parent, PlanInput, as_purchase
from pipeline.kinds.bill import bill_task_id
from pipeline.kinds.credit_note import CreditNoteWrites
from pipeline.kinds.numbered import NumberedKind
from pipeline.xero.client import XeroClient


def credit_task_id(purchase: Cin7Purchase, note: Cin7PurchaseCreditNote) -> str:
    """The ledger key of a purchase's credit note: its TaskID, or the purchase's ID when it has none."""
    return (note.task_id or purchase.id).lower()


def supplier_credit_notes(purchase: Cin7Purchase) -> list[Cin7PurchaseCreditNote]:
    """The purchase's credit notes that exist (a simple purchase never credited holds an empty one)."""
    return [
        note
        for note in purchase.credit_notes
        if (note.credit_note_number or "").strip() or str(note.status or "").upper() != "NOT AVAILABLE"
    ]


def credit_of(purchase: Cin7Purchase, task_id: str) -> Cin7PurchaseCreditNote | None:
    """The purchase's credit note with this ledger key, or None when Cin7 no longer lists it."""
    return next((n for n in supplier_credit_notes(purchase) if credit_task_id(purchase, n) == task_id.lower()), None)


class SupplierCreditNoteKind(CreditNoteWrites, NumberedKind[Cin7PurchaseCreditNote]):
    """Purchase credit notes (`CreditNote` of a Cin7 purchase) as Xero ACCPAYCREDIT credit notes."""

    name = "supplier_credit_note"
    collection = "CreditNotes"
    id_field = "CreditNoteID"
    number_field = "CreditNoteNumber"
    xero_type = "ACCPAYCREDIT"
    parent_kind = "purchase"
    unique_numbers = False
    sent_statuses = frozenset({Cin7InvoiceStatus.AUTHORISED})

    def dependencies(self, parent: Parent, task_id: str, *, cin7_status: str | None) -> list[Dependency]:
        """Voided only after its allocation is taken off (Xero refuses otherwise)."""
        note = credit_of(as_purchase(parent), task_id)
        if note is None or Cin7InvoiceStatus.parse(note.status) is Cin7InvoiceStatus.VOIDED:
            return [Dependency("supplier_allocation", task_id, need="undone")]
        return []

    def document(self, given: PlanInput) -> Cin7PurchaseCreditNote | None:
        """The purchase's credit note by its ledger key."""
        return credit_of(given.purchase, given.task_id)

    def map(self, given: PlanInput, document: Cin7PurchaseCreditNote) -> dict[str, Any]:
        """`mappings.map_purchase_credit_note`."""
        return map_purchase_credit_note(
            given.purchase, document, supplier=given.supplier, rules=given.rules, reference=given.reference
        ).to_json()

    def get(self, xero: XeroClient, *, numbers: Sequence[str] = (), ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """`GET /CreditNotes?where=…` (sale and supplier ones alike; `ours` tells them apart)."""
        return xero.get_credit_notes(numbers=numbers, ids=ids)


class SupplierRefundKind(PaymentKind):
    """A supplier's refunds of a purchase credit note (`CreditNote.Refunds[]`) as payments on it."""

    name = "supplier_refund"
    parent_kind = "purchase"
    target_key = "CreditNote"
    target_kind = "supplier_credit_note"
    target_field = "CreditNoteID"

    def _find(self, parent: Parent, task_id: str) -> tuple[str, Any, str] | None:
        purchase = as_purchase(parent)
        for note in supplier_credit_notes(purchase):
            for refund in note.refunds:
                if (refund.id or "").lower() == task_id.lower():
                    number = note.credit_note_number or "(no number)"
                    return credit_task_id(purchase, note), refund, f"supplier refund {task_id} of credit note {number}"
        return None


class SupplierAllocationKind(AllocationKind):
    """A purchase credit note applied to the bill it credits (keyed by the credit note's ledger key)."""

    name = "supplier_allocation"
    parent_kind = "purchase"
    note_kind = "supplier_credit_note"
    document_kind = "bill"

    def _allocation(self, parent: Parent, task_id: str) -> tuple[Cin7CreditNote | None, CreditAllocation | None]:
        purchase = as_purchase(parent)
        note = credit_of(purchase, task_id)
        allocation = credit_allocations(purchase).get(note.task_id or "") if note is not None else None
        return note, allocation

    def _document_key(self, parent: Parent, allocation: CreditAllocation) -> str:
        return bill_task_id(as_purchase(parent), allocation.invoice)


SUPPLIER_CREDIT_NOTE = SupplierCreditNoteKind()
SUPPLIER_REFUND = SupplierRefundKind()
SUPPLIER_ALLOCATION = SupplierAllocationKind()

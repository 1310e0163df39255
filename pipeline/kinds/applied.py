"""Documents applied to another one: payments on invoices, refunds on credit notes, allocations of credit.

They have no number of their own, so a write whose answer was lost is found again by what it is (the
document it applies to, date, amount, account, reference) and adopted, never sent twice. Xero cannot
edit them: a changed one is taken off (deleted) and made again, and one Xero has reconciled against a
bank line is left alone as a conflict.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from mappings import (
    Cin7CreditNote,
    Cin7InvoiceStatus,
    CreditAllocation,
    InvoiceAction,
    XeroDocumentRef,
    content_hash,
    credit_allocations,
    map_allocation,
    map_payment,
)
from pipeline.kinds.base import Dependency, InXero, MappedDocument, Parent, PlanInput, as_sale
from pipeline.xero.client import XeroClient
from pipeline.xero.sdk import ElementResult, parse_xero_date

CENT = Decimal("0.01")
DELETED = "DELETED"


def _amount(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(CENT) if value is not None else None
    except InvalidOperation:
        return None


def _day(value: object) -> date | None:
    try:
        return parse_xero_date(value)
    except ValueError:
        return None


def _decide(present: bool, *, in_xero: InXero, payload: dict[str, Any] | None) -> InvoiceAction:
    """Create what Xero lacks, take off what Cin7 no longer has, replace (UPDATE) what changed."""
    live = in_xero.synced and (in_xero.xero_status or "").upper() != DELETED
    if not present or payload is None:
        return InvoiceAction.DELETE if live else InvoiceAction.SKIP
    if not live:
        return InvoiceAction.CREATE
    return InvoiceAction.NOTHING if content_hash(payload) == in_xero.synced_hash else InvoiceAction.UPDATE


class AppliedKind(ABC):
    """What payments, refunds and allocations share: no contact, no number, delete-and-recreate.

    Each kind says how it is mapped, matched, created, looked up and taken off (the abstract methods).
    """

    name = ""
    collection = ""
    id_field = ""
    numbered = False
    parent_kind = "sale"

    @abstractmethod
    def dependencies(self, parent: Parent, task_id: str, *, cin7_status: str | None) -> list[Dependency]:
        """What must be in Xero before this is applied."""

    @abstractmethod
    def plan(self, given: PlanInput) -> MappedDocument:
        """Map onto the parents' Xero ids and decide create, replace (UPDATE), delete or nothing."""

    def void_payload(self, xero_id: str, number: str, action: InvoiceAction) -> dict[str, Any]:
        """What taking it off Xero needs: its id."""
        return {self.id_field: xero_id, "Status": DELETED}

    def xero_id(self, data: dict[str, Any]) -> str | None:
        """The Xero id in an answer."""
        value = data.get(self.id_field)
        return str(value) if value else None

    def number(self, data: dict[str, Any]) -> str | None:
        """Payments and allocations have no number."""
        return None

    def totals(self, data: dict[str, Any]) -> dict[str, Decimal]:
        """The amount (what reconciliation and the ledger keep)."""
        return {"Amount": _amount(data.get("Amount")) or Decimal(0)}

    @abstractmethod
    def matches(self, found: dict[str, Any], payload: dict[str, Any]) -> bool:
        """The Xero record is the one this payload made: same target, date and amount (and more per kind)."""

    @abstractmethod
    def create(self, xero: XeroClient, body: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """Create many in as few calls as Xero allows; one result per element, in order."""

    @abstractmethod
    def lookup(self, xero: XeroClient, payloads: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Xero's live records on the documents these payloads apply to: the candidates to adopt."""

    @abstractmethod
    def current(self, xero: XeroClient, xero_id: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The record as Xero holds it now, or None when it is gone."""

    @abstractmethod
    def undo(self, xero: XeroClient, xero_id: str, payload: dict[str, Any], idempotency_key: str) -> None:
        """Take the record off Xero."""

    def refusal(self, current: dict[str, Any]) -> str | None:
        """Why the record must not be taken off (a person decides), or None."""
        return None


class PaymentKind(AppliedKind):
    """Cin7 invoice payments (`Invoices[].Payments[]`, keyed by payment ID) as Xero payments."""

    name = "payment"
    collection = "Payments"
    id_field = "PaymentID"
    #: The payload's key for the document paid, and the kind and field of that document.
    target_key = "Invoice"
    target_kind = "invoice"
    target_field = "InvoiceID"

    def _find(self, parent: Parent, task_id: str) -> tuple[str, Any, str] | None:
        """(parent task id, the Cin7 payment, how messages name it), or None when Cin7 no longer has it."""
        found = as_sale(parent).payment_by_id(task_id)
        if found is None:
            return None
        invoice, payment = found
        return invoice.task_id or "", payment, f"payment {task_id} of invoice {invoice.invoice_number}"

    def dependencies(self, parent: Parent, task_id: str, *, cin7_status: str | None) -> list[Dependency]:
        """Its invoice (credit note, for a refund; bill, for a supplier payment) must be in Xero and open."""
        found = self._find(parent, task_id)
        return [Dependency(self.target_kind, found[0])] if found is not None else []

    def plan(self, given: PlanInput) -> MappedDocument:
        """Map the payment onto its document's Xero id; a payment gone from Cin7 is taken off."""
        found = self._find(given.parent, given.task_id)
        payload: dict[str, Any] | None = None
        if found is not None:
            parent_task, payment, document = found
            target_id = given.in_xero.parents.get((self.target_kind, parent_task))
            if target_id is not None:
                target = XeroDocumentRef.model_validate({self.target_field: target_id})
                payload = map_payment(
                    payment,
                    sale=given.parent,
                    target=target,
                    document=document,
                    rules=given.rules,
                    reference=given.reference,
                ).to_json()
        action = _decide(found is not None, in_xero=given.in_xero, payload=payload)
        return MappedDocument(action, payload, "AUTHORISED" if found is not None else "VOIDED")

    def matches(self, found: dict[str, Any], payload: dict[str, Any]) -> bool:
        """Same document, date, amount, account and reference, and not deleted."""
        target = (payload.get(self.target_key) or {}).get(self.target_field)
        return (
            str(found.get("Status") or "AUTHORISED").upper() != DELETED
            and str((found.get(self.target_key) or {}).get(self.target_field) or "").lower() == str(target).lower()
            and _day(found.get("Date")) == _day(payload.get("Date"))
            and _amount(found.get("Amount")) == _amount(payload.get("Amount"))
            and str((found.get("Account") or {}).get("Code") or "") == str((payload.get("Account") or {}).get("Code"))
            and (found.get("Reference") or None) == (payload.get("Reference") or None)
        )

    def create(self, xero: XeroClient, body: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """`PUT /Payments`, every payment of the batch in one call."""
        return xero.create_payments(body, idempotency_key)

    def lookup(self, xero: XeroClient, payloads: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """`GET /Payments` on the documents paid (one filter of ORs, chunked)."""
        targets = sorted({str((p.get(self.target_key) or {}).get(self.target_field)) for p in payloads})
        found: list[dict[str, Any]] = []
        for start in range(0, len(targets), 20):
            chunk = targets[start : start + 20]
            where = " OR ".join(f'{self.target_key}.{self.target_field}==guid("{t}")' for t in chunk)
            found.extend(xero.get_payments(f"({where})"))
        return found

    def current(self, xero: XeroClient, xero_id: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """`GET /Payments/{id}`."""
        return xero.get_payment(xero_id)

    def undo(self, xero: XeroClient, xero_id: str, payload: dict[str, Any], idempotency_key: str) -> None:
        """`POST /Payments/{id}` with Status DELETED."""
        xero.delete_payment(xero_id, idempotency_key)

    def refusal(self, current: dict[str, Any]) -> str | None:
        """A payment reconciled against a bank line belongs to the bookkeeper now."""
        if current.get("IsReconciled") is True:
            return (
                f"Xero payment {current.get(self.id_field)} is reconciled against a bank statement line; "
                "the change in Cin7 was not applied (unreconcile it in Xero, then requeue)"
            )
        return None


class RefundKind(PaymentKind):
    """Cin7 credit-note refunds (`CreditNotes[].Refunds[]`) as Xero payments on the credit note."""

    name = "refund"
    target_key = "CreditNote"
    target_kind = "credit_note"
    target_field = "CreditNoteID"

    def _find(self, parent: Parent, task_id: str) -> tuple[str, Any, str] | None:
        found = as_sale(parent).refund_by_id(task_id)
        if found is None:
            return None
        note, refund = found
        return note.task_id or "", refund, f"refund {task_id} of credit note {note.credit_note_number}"


class AllocationKind(AppliedKind):
    """A credit note applied to the invoice it credits (keyed by the credit note's TaskID)."""

    name = "allocation"
    collection = "Allocations"
    id_field = "AllocationID"
    #: The kinds of the credit note and of the document it is allocated to.
    note_kind = "credit_note"
    document_kind = "invoice"

    def _allocation(self, parent: Parent, task_id: str) -> tuple[Cin7CreditNote | None, CreditAllocation | None]:
        """The credit note with this key, and what of it goes to its document (by the sales rule)."""
        sale = as_sale(parent)
        return sale.credit_note_by_task_id(task_id), credit_allocations(sale).get(task_id)

    def _document_key(self, parent: Parent, allocation: CreditAllocation) -> str:
        """The ledger key of the document an allocation goes to."""
        return allocation.invoice.task_id or ""

    def dependencies(self, parent: Parent, task_id: str, *, cin7_status: str | None) -> list[Dependency]:
        """Both the credit note and its invoice in Xero; with nothing to allocate, nothing to wait for
        (but taking an earlier allocation off needs its credit note's id, when the ledger has it).
        """
        _note, allocation = self._allocation(parent, task_id)
        if allocation is None or allocation.amount <= 0:
            return [Dependency(self.note_kind, task_id, need="known")]
        return [
            Dependency(self.note_kind, task_id),
            Dependency(self.document_kind, self._document_key(parent, allocation)),
        ]

    def plan(self, given: PlanInput) -> MappedDocument:
        """Allocate what Cin7's figures leave owing; nothing to allocate takes an earlier one off."""
        note, allocation = self._allocation(given.parent, given.task_id)
        parents = given.in_xero.parents
        credit_note_id = parents.get((self.note_kind, given.task_id))
        present = note is not None and allocation is not None and allocation.amount > 0
        payload: dict[str, Any] | None = None
        if note is not None and allocation is not None and present and credit_note_id is not None:
            invoice_id = parents.get((self.document_kind, self._document_key(given.parent, allocation)))
            if invoice_id is not None:
                payload = map_allocation(
                    note, allocation, invoice_id=invoice_id, credit_note_id=credit_note_id
                ).to_json()
        action = _decide(present, in_xero=given.in_xero, payload=payload)
        if action is InvoiceAction.DELETE and credit_note_id is not None:
            # Taking it off needs the credit note it belongs to.
            payload = {"CreditNote": {"CreditNoteID": credit_note_id}}
        status = str(Cin7InvoiceStatus.parse(note.status) or note.status) if note is not None else "VOIDED"
        return MappedDocument(action, payload, status)

    def void_payload(self, xero_id: str, number: str, action: InvoiceAction) -> dict[str, Any]:
        """Only the allocation id; the credit note's id comes with the planned payload."""
        return {self.id_field: xero_id}

    def matches(self, found: dict[str, Any], payload: dict[str, Any]) -> bool:
        """Same credit note, invoice and amount, and not deleted."""
        return (
            found.get("IsDeleted") is not True
            and _credit_note_of(found) == _credit_note_of(payload)
            and str((found.get("Invoice") or {}).get("InvoiceID") or "").lower()
            == str((payload.get("Invoice") or {}).get("InvoiceID") or "").lower()
            and _amount(found.get("Amount")) == _amount(payload.get("Amount"))
        )

    def create(self, xero: XeroClient, body: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """`PUT /CreditNotes/{id}/Allocations`: one call per credit note (Xero's only way)."""
        results: list[ElementResult | None] = [None] * len(body)
        by_note: dict[str, list[int]] = {}
        for index, payload in enumerate(body):
            by_note.setdefault(_credit_note_of(payload), []).append(index)
        for note_id, indexes in by_note.items():
            elements = [{k: v for k, v in body[i].items() if k != "CreditNote"} for i in indexes]
            answered = xero.create_allocations(note_id, elements, f"{idempotency_key}:{note_id}"[:128])
            for position, index in enumerate(indexes):
                if position < len(answered):
                    results[index] = answered[position]
        return [
            result if result is not None else ElementResult(i, False, {}, ["Xero returned no result"])
            for i, result in enumerate(results)
        ]

    def lookup(self, xero: XeroClient, payloads: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The credit notes' allocations, each marked with its credit note."""
        notes = xero.get_credit_notes(ids=sorted({_credit_note_of(p) for p in payloads}))
        return [
            {**allocation, "CreditNote": {"CreditNoteID": note.get("CreditNoteID")}}
            for note in notes
            for allocation in note.get("Allocations") or []
        ]

    def current(self, xero: XeroClient, xero_id: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The allocation among its credit note's, or None once it is gone."""
        for found in self.lookup(xero, [payload]):
            if str(found.get(self.id_field) or "").lower() == xero_id.lower() and found.get("IsDeleted") is not True:
                return found
        return None

    def undo(self, xero: XeroClient, xero_id: str, payload: dict[str, Any], idempotency_key: str) -> None:
        """`DELETE /CreditNotes/{id}/Allocations/{AllocationID}`."""
        xero.delete_allocation(_credit_note_of(payload), xero_id)


def _credit_note_of(data: dict[str, Any]) -> str:
    return str((data.get("CreditNote") or {}).get("CreditNoteID") or "").lower()


PAYMENT = PaymentKind()
REFUND = RefundKind()
ALLOCATION = AllocationKind()

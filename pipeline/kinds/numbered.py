"""What numbered documents on a contact share (invoices, credit notes, and bills next): they are
planned, written, found and read the same way, only under other field names and Xero collections.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Generic, TypeVar

from mappings import Cin7InvoiceStatus, XeroInvoiceStatus, content_hash, decide_invoice_action
from pipeline.kinds.base import MappedDocument, PlanInput
from pipeline.xero.client import WritableCollection, XeroClient
from pipeline.xero.sdk import ElementResult

TOTAL_FIELDS = ("SubTotal", "TotalTax", "Total")

#: The Cin7 document (a sale's invoice or credit note) a kind reads.
Cin7Document = TypeVar("Cin7Document")


def xero_status_of(value: str | None) -> XeroInvoiceStatus | None:
    """Xero's status text as the enum; None when missing or one we do not know."""
    try:
        return XeroInvoiceStatus(str(value).upper()) if value else None
    except ValueError:
        return None


class NumberedKind(ABC, Generic[Cin7Document]):
    """`DocumentKind` for a document with a number, a type and a contact; each kind says where its
    Cin7 document is, how it maps, and how Xero finds it (the abstract methods).
    """

    name = ""
    collection: WritableCollection
    id_field = ""
    #: The field of the document number, e.g. "InvoiceNumber".
    number_field = ""
    #: Xero's `Type` for ours (ACCREC, ACCRECCREDIT): another type with our number is someone else's.
    xero_type = ""
    numbered = True
    parent_kind = "sale"
    #: Xero refuses a second document of this type with the number (sale invoices and credit notes);
    #: not so for bills and supplier credit notes, whose numbers are the suppliers'.
    unique_numbers = True
    #: The Cin7 statuses in which the document is mapped and sent (others void it or skip it).
    sent_statuses: frozenset[Cin7InvoiceStatus] = frozenset()

    @abstractmethod
    def document(self, given: PlanInput) -> Cin7Document | None:
        """The Cin7 document in its sale, or None when it is gone (Cin7 "Undo")."""

    @abstractmethod
    def map(self, given: PlanInput, document: Cin7Document) -> dict[str, Any]:
        """The Xero payload (raises mappings.MappingError naming the problem)."""

    @abstractmethod
    def get(self, xero: XeroClient, *, numbers: Sequence[str] = (), ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Xero's documents in this collection with these numbers or ids, of any type."""

    def plan(self, given: PlanInput) -> MappedDocument:
        """Map the document (when Cin7 has it in a sent status) and decide create/update/void/skip."""
        document = self.document(given)
        # A document gone from its sale counts as voided.
        status = "VOIDED" if document is None else (given.cin7_status or "NOT AVAILABLE")
        payload: dict[str, Any] | None = None
        if document is not None and Cin7InvoiceStatus.parse(status) in self.sent_statuses:
            payload = self.map(given, document)
        in_xero = given.in_xero
        action = decide_invoice_action(
            status,
            synced=in_xero.synced,
            xero_status=xero_status_of(in_xero.xero_status),
            xero_amount_paid=None,
            content_changed=payload is not None and content_hash(payload) != in_xero.synced_hash,
        )
        return MappedDocument(action, payload, status)

    def create(self, xero: XeroClient, body: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """PUT: create only, so a retry never makes a second one."""
        return xero.write("PUT", self.collection, body, idempotency_key)

    def update(self, xero: XeroClient, body: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """POST with ids: updates, voids and deletes."""
        return xero.write("POST", self.collection, body, idempotency_key)

    def find_by_numbers(self, xero: XeroClient, numbers: Sequence[str]) -> list[dict[str, Any]]:
        """Ours only: a bill or a supplier's credit may carry the same number."""
        return [found for found in self.get(xero, numbers=numbers) if self.ours(found)]

    def find_by_ids(self, xero: XeroClient, ids: Sequence[str]) -> list[dict[str, Any]]:
        """As Xero holds them now."""
        return self.get(xero, ids=ids)

    def number(self, data: dict[str, Any]) -> str | None:
        """The document number in a payload or answer."""
        value = data.get(self.number_field)
        return str(value) if value else None

    def xero_id(self, data: dict[str, Any]) -> str | None:
        """The Xero id in an answer."""
        value = data.get(self.id_field)
        return str(value) if value else None

    def ours(self, found: dict[str, Any]) -> bool:
        """Of our type (a bill or a supplier credit may carry the same number)."""
        return str(found.get("Type", self.xero_type)).upper() == self.xero_type

    def adoptable(self, found: dict[str, Any], contact_id: str | None) -> bool:
        """A Xero document with our number is ours if it is of our type and on the same contact (which
        must be known where Xero lets the number repeat: another supplier may use it too).
        """
        contact = (found.get("Contact") or {}).get("ContactID")
        if contact_id is None:
            return self.ours(found) and self.unique_numbers
        return self.ours(found) and contact == contact_id

    def totals(self, data: dict[str, Any]) -> dict[str, Decimal]:
        """SubTotal, TotalTax and Total: what reconciliation compares and the ledger keeps."""
        return {key: Decimal(str(data.get(key) or 0)) for key in TOTAL_FIELDS}

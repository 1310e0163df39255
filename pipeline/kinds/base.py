"""The document-kind interface, written from what the mapping stage and the writer call today.

The ledger's natural key is (tenant, source, kind, parent document id, document id); everything a
stage does differently for an invoice, a credit note or a bill goes through these methods, so that a
new kind is one module, not edits across the writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

from mappings import Cin7Customer, Cin7Purchase, Cin7Sale, Cin7Supplier, InvoiceAction, MappingRules, OrgReference
from pipeline.xero.client import XeroClient
from pipeline.xero.sdk import ElementResult


@dataclass(frozen=True)
class MappedDocument:
    """What the mapping decided for one document: the action, and the payload when one is sent."""

    action: InvoiceAction
    payload: dict[str, Any] | None
    # The document's Cin7 status as the mapping read it (VOIDED when it vanished from its parent).
    cin7_status: str


@dataclass(frozen=True)
class Dependency:
    """A document of the same sale that must be in a given state in Xero before this one is written.

    `in_xero`: there, and open (a payment needs its AUTHORISED invoice). `undone`: not (or no longer)
    there (a credit note is voided only once its allocation is taken off). `known`: never waited for;
    its Xero id is passed on when the ledger has one (taking an allocation off needs its credit note's).
    """

    kind: str
    #: The document's id, or "*": every document of that kind in the sale with the waiting one's number
    #: (a sale's payments carry the number of the invoice they pay).
    task_id: str
    need: Literal["in_xero", "undone", "known"] = "in_xero"


#: The Xero id of each met `in_xero` dependency, by (kind, task id): what a payment or allocation points at.
Parents = Mapping[tuple[str, str], str]


@dataclass(frozen=True)
class InXero:
    """What the ledger knows of the document's Xero side when it is mapped."""

    #: Xero has (or had) it: the ledger holds its Xero id.
    synced: bool
    xero_status: str | None
    #: The hash of the payload Xero last confirmed.
    synced_hash: str | None
    parents: Parents


#: The Cin7 document whose detail holds the ledger's documents: a sale, or a purchase.
Parent = Cin7Sale | Cin7Purchase
#: Whom the Xero contact stands for: the sale's customer or the purchase's supplier.
Party = Cin7Customer | Cin7Supplier


@dataclass(frozen=True)
class ParentRead:
    """A parent and its party as a fetch has just read and parsed them: the mapping of that parent's
    documents in the same task neither reads their snapshots again nor validates them twice.
    """

    parent_id: str
    parent: Parent
    party: Party | None
    #: False when the party could not be parsed here: the mapping reads it again and reports why.
    party_known: bool = True


def as_sale(parent: Parent) -> Cin7Sale:
    """The parent of a sale's document (the kind registry pairs each kind with its parent's kind)."""
    if not isinstance(parent, Cin7Sale):
        raise TypeError(f"a sale document was given a {type(parent).__name__}")
    return parent


def as_purchase(parent: Parent) -> Cin7Purchase:
    """The parent of a purchase's document."""
    if not isinstance(parent, Cin7Purchase):
        raise TypeError(f"a purchase document was given a {type(parent).__name__}")
    return parent


@dataclass(frozen=True)
class PlanInput:
    """Everything a kind's `plan` reads: the document in its parent, and what is known of it elsewhere."""

    parent: Parent
    #: The document's key within its parent (TaskID of an invoice or credit note, ID of a payment).
    task_id: str
    #: The status the ledger recorded for it at discovery.
    cin7_status: str | None
    party: Party | None
    rules: MappingRules
    reference: OrgReference
    in_xero: InXero

    @property
    def sale(self) -> Cin7Sale:
        """The parent, for a sale's document."""
        return as_sale(self.parent)

    @property
    def customer(self) -> Cin7Customer | None:
        """The party, for a sale's document."""
        if self.party is not None and not isinstance(self.party, Cin7Customer):
            raise TypeError(f"a sale document was given a {type(self.party).__name__}")
        return self.party

    @property
    def purchase(self) -> Cin7Purchase:
        """The parent, for a purchase's document."""
        return as_purchase(self.parent)

    @property
    def supplier(self) -> Cin7Supplier | None:
        """The party, for a purchase's document."""
        if self.party is not None and not isinstance(self.party, Cin7Supplier):
            raise TypeError(f"a purchase document was given a {type(self.party).__name__}")
        return self.party


class DocumentKind(Protocol):
    """One kind of Cin7 document and the Xero document it becomes."""

    #: The ledger's `kind` value.
    name: str

    @property
    def collection(self) -> str:
        """Xero's name for the collection, e.g. "Invoices" (request envelopes, log lines)."""
        ...

    #: The field that carries the Xero id in a payload, e.g. "InvoiceID".
    id_field: str
    #: Numbered and on a contact (invoices, credit notes): written by number, with contacts resolved
    #: first. Otherwise applied to another document (payments, refunds, allocations).
    numbered: bool
    #: The kind of parent record the document lives in (`ledger.models.ParentKind`: sale, purchase).
    parent_kind: str

    def dependencies(self, parent: Parent, task_id: str, *, cin7_status: str | None) -> list[Dependency]:
        """What must be in (or out of) Xero before this document can be written."""
        ...

    def plan(self, given: PlanInput) -> MappedDocument:
        """Map the document and decide the action (raises mappings.MappingError naming the problem)."""
        ...

    def void_payload(self, xero_id: str, number: str, action: InvoiceAction) -> dict[str, Any]:
        """The payload that voids or deletes the Xero document."""
        ...

    def recheck(self, action: InvoiceAction, current: dict[str, Any]) -> InvoiceAction:
        """The planned update or void, checked again against the document as Xero holds it now."""
        ...

    def create(self, xero: XeroClient, body: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """Create many in one call (PUT: a retry never makes a second one)."""
        ...

    def update(self, xero: XeroClient, body: Sequence[dict[str, Any]], idempotency_key: str) -> list[ElementResult]:
        """Update, void or delete many in one call."""
        ...

    def find_by_numbers(self, xero: XeroClient, numbers: Sequence[str]) -> list[dict[str, Any]]:
        """Xero's documents of this kind with these numbers: the lookup after a lost answer."""
        ...

    def find_by_ids(self, xero: XeroClient, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Xero's documents of this kind with these ids, as they are now."""
        ...

    def number(self, data: dict[str, Any]) -> str | None:
        """The document number in a Xero payload or answer."""
        ...

    def xero_id(self, data: dict[str, Any]) -> str | None:
        """The Xero id in an answer."""
        ...

    def adoptable(self, found: dict[str, Any], contact_id: str | None) -> bool:
        """A Xero document with our number is ours (same type and contact): adopt it, do not create."""
        ...

    def totals(self, data: dict[str, Any]) -> dict[str, Decimal]:
        """The totals reconciliation compares (and the ledger keeps) for a Xero document."""
        ...

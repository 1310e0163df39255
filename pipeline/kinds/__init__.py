"""Document kinds: what the writer and the mapping stage ask of each kind of document.

Each kind is one module here: sale invoices, credit notes and supplier bills implement `DocumentKind`;
payments, refunds and allocations, applied to them, are `AppliedKind`s. `kind_of` finds one by the row's `kind`.
"""

from __future__ import annotations

from pipeline.kinds.applied import ALLOCATION, PAYMENT, REFUND, AppliedKind
from pipeline.kinds.base import (
    Dependency,
    DocumentKind,
    InXero,
    MappedDocument,
    Parent,
    ParentRead,
    Parents,
    Party,
    PlanInput,
)
from pipeline.kinds.bill import BILL, BILL_PAYMENT
from pipeline.kinds.credit_note import CREDIT_NOTE
from pipeline.kinds.invoice import INVOICE
from pipeline.kinds.supplier_credit import SUPPLIER_ALLOCATION, SUPPLIER_CREDIT_NOTE, SUPPLIER_REFUND

AnyKind = DocumentKind | AppliedKind

KINDS: dict[str, AnyKind] = {
    kind.name: kind
    for kind in (
        INVOICE,
        CREDIT_NOTE,
        PAYMENT,
        REFUND,
        ALLOCATION,
        BILL,
        BILL_PAYMENT,
        SUPPLIER_CREDIT_NOTE,
        SUPPLIER_REFUND,
        SUPPLIER_ALLOCATION,
    )
}


def kind_of(name: str) -> AnyKind:
    """The kind a ledger row names; an unknown name is a bug or a newer row than this code."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown document kind {name!r} (known: {', '.join(sorted(KINDS))})") from None


__all__ = [
    "KINDS",
    "AnyKind",
    "AppliedKind",
    "Dependency",
    "DocumentKind",
    "InXero",
    "MappedDocument",
    "Parent",
    "ParentRead",
    "Parents",
    "Party",
    "PlanInput",
    "kind_of",
]

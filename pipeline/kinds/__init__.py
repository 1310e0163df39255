"""Document kinds: what the writer and the mapping stage ask of each kind of document.

Each kind (today the sale invoice; next credit notes, payments, bills) is one module here that
implements `DocumentKind`; `kind_of` finds it by the ledger row's `kind`.
"""

from __future__ import annotations

from pipeline.kinds.base import DocumentKind, MappedDocument
from pipeline.kinds.invoice import INVOICE

KINDS: dict[str, DocumentKind] = {INVOICE.name: INVOICE}


def kind_of(name: str) -> DocumentKind:
    """The kind a ledger row names; an unknown name is a bug or a newer row than this code."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown document kind {name!r} (known: {', '.join(sorted(KINDS))})") from None


__all__ = ["KINDS", "DocumentKind", "MappedDocument", "kind_of"]

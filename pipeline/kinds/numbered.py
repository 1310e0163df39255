"""What numbered documents on a contact share (invoices, credit notes, and bills next): their number,
id, type and totals are read the same way, only under other field names.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

TOTAL_FIELDS = ("SubTotal", "TotalTax", "Total")


class NumberedKind:
    """The reading half of `DocumentKind` for a document with a number, a type and a contact."""

    id_field = ""
    #: The field of the document number, e.g. "InvoiceNumber".
    number_field = ""
    #: Xero's `Type` for ours (ACCREC, ACCRECCREDIT): another type with our number is someone else's.
    xero_type = ""
    numbered = True

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
        """A Xero document with our number is ours if it is of our type and on the same contact."""
        contact = (found.get("Contact") or {}).get("ContactID")
        return self.ours(found) and (contact_id is None or contact == contact_id)

    def totals(self, data: dict[str, Any]) -> dict[str, Decimal]:
        """SubTotal, TotalTax and Total: what reconciliation compares and the ledger keeps."""
        return {key: Decimal(str(data.get(key) or 0)) for key in TOTAL_FIELDS}

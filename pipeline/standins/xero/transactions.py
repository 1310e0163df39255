"""What the Xero stand-in's payments and allocations share: reading their fields and settling documents.

Both name a document (an invoice, or a credit note), take an ``Amount`` and a ``Date`` (not in a locked
period), and move money between a document's total and what it has outstanding; ``settlement.py`` does
the arithmetic, and this mixin stamps the documents it changes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pipeline.standins.xero.credit_notes import CreditNotesMixin
from pipeline.standins.xero.data import parse_decimal, parse_input_date, round2
from pipeline.standins.xero.documents import DocumentSpec
from pipeline.standins.xero.invoices import InvoicesMixin
from pipeline.standins.xero.settlement import settle, spec_of, unsettle
from pipeline.standins.xero.values import ZERO_GUID, Record, as_text, is_guid


class TransactionsMixin(InvoicesMixin, CreditNotesMixin):
    """Field checks and document settlement for payments and allocations."""

    def _referenced_document(self, spec: DocumentSpec, ref: Any, flat_number: Any, errors: list[str]) -> Record | None:
        """The document a payment or an allocation names by ID or number (``flat_number``: a top-level one)."""
        ref = ref if isinstance(ref, dict) else {}
        doc_id = as_text(ref.get(spec.id_key))
        number = as_text(ref.get(spec.number_key)) or as_text(flat_number)
        lower = spec.noun.lower()
        if doc_id and doc_id != ZERO_GUID:
            doc = self._documents[spec.store_key].records.get(doc_id.lower()) if is_guid(doc_id) else None
            if doc is None:
                errors.append(f"The {lower} with {spec.id_key} {doc_id} could not be found.")
            return doc
        if number:
            doc = self._find_document(spec, number)
            if doc is None:
                errors.append(f"The {lower} with {spec.number_key} {number} could not be found.")
            return doc
        errors.append(f"The {spec.noun} must be given by its {spec.id_key} or {spec.number_key}.")
        return None

    def _transaction_date(self, value: Any, what: str, errors: list[str]) -> dt.date | None:
        """A payment's or allocation's required Date, not in a locked period."""
        if value is None or value == "":
            errors.append(f"The {what} date must be specified.")
            return None
        try:
            date = parse_input_date(value)
        except ValueError:
            errors.append(f"The Date '{value}' is not a valid date.")
            return None
        self._check_lock_date(date, errors)
        return date

    @staticmethod
    def _transaction_amount(value: Any, what: str, errors: list[str]) -> Decimal | None:
        """A payment's or allocation's required Amount, in cents and greater than zero."""
        try:
            amount = parse_decimal(value)
        except ValueError:
            errors.append(f"The {what} amount '{value}' is not a number.")
            return None
        if amount is None:
            errors.append(f"The {what} amount must be specified.")
            return None
        if amount <= 0:
            errors.append(f"The {what} amount must be greater than zero.")
            return None
        return round2(amount)

    def _settle(self, doc: Record, key: str, amount: Decimal, on: dt.date) -> None:
        """Apply a payment or allocation to a stored document, and stamp it as changed."""
        spec = spec_of(doc)
        settle(doc, key, amount, on)
        self._touch(self._documents[spec.store_key].records, doc, spec.id_key)

    def _unsettle(self, doc: Record, key: str, amount: Decimal) -> None:
        """Take a deleted payment or allocation off a stored document again, and stamp it as changed."""
        spec = spec_of(doc)
        unsettle(doc, key, amount)
        self._touch(self._documents[spec.store_key].records, doc, spec.id_key)

"""The Xero stand-in's credit notes: ``GET``/``PUT``/``POST /CreditNotes`` and the in-process ``credit_notes()``.

A credit note is validated, numbered (CN-0001 ...) and stored like an invoice (``documents.py``, with
``CREDIT_NOTE_SPEC``: no line discounts, numbers unique for ACCRECCREDIT only, amount-neutral edits
allowed once allocated). What it has left to give is its ``RemainingCredit``; allocations to invoices
(``allocations.py``) and refunds (payments, ``payments.py``) use it up.
"""

from __future__ import annotations

from typing import Any

from pipeline.standins.xero.document_views import DocumentViewsMixin
from pipeline.standins.xero.documents import CREDIT_NOTE_SPEC
from pipeline.standins.xero.query import Candidates
from pipeline.standins.xero.responses import Request, Response, not_found
from pipeline.standins.xero.schemas import CREDIT_NOTE_SCHEMA
from pipeline.standins.xero.settlement import outstanding
from pipeline.standins.xero.values import Num, Record, as_decimal, as_float
from pipeline.standins.xero.where import equality_hints


class CreditNotesMixin(DocumentViewsMixin):
    """Credit note endpoints (their indexes are the credit note ``DocumentStore``)."""

    def credit_notes(self) -> list[dict[str, Any]]:
        """All credit notes as Xero JSON with lines and allocations; amounts are ``Decimal``; oldest update first."""
        with self._lock:
            return [self._render_credit_note(cn, lines=True, num=as_decimal) for cn in self._credit_notes.values()]

    def _credit_note_field(self, note: Record, path: tuple[str, ...]) -> Any:
        return self._document_field(CREDIT_NOTE_SCHEMA, note, path)

    def _render_credit_note(self, note: Record, *, lines: bool, num: Num) -> dict[str, Any]:
        out: dict[str, Any] = {"Type": note["Type"], "CreditNoteID": note["CreditNoteID"]}
        if note.get("CreditNoteNumber"):
            out["CreditNoteNumber"] = note["CreditNoteNumber"]
        if note.get("Reference") is not None:
            out["Reference"] = note["Reference"]
        out["Payments"] = self._payments_on(note["CreditNoteID"], num)
        out["Allocations"] = [self._render_allocation(a, num) for a in self._live_allocations(note["CreditNoteID"])]
        remaining = outstanding(note)
        out["RemainingCredit"] = num(remaining)
        out["AppliedAmount"] = num(note["AmountPaid"] + note["AmountAllocated"])
        out["CurrencyRate"] = num(note["CurrencyRate"])
        out["HasAttachments"] = False
        out["HasErrors"] = False
        out |= self._document_body(note, lines=lines, num=num)
        out["SentToContact"] = note["SentToContact"]
        if note.get("BrandingThemeID"):
            out["BrandingThemeID"] = note["BrandingThemeID"]
        return out

    def _list_credit_notes(self, request: Request) -> Response:
        node = self._where(request, CREDIT_NOTE_SCHEMA, "CreditNote")
        hints = equality_hints(node) if node is not None else {}
        store = self._documents[CREDIT_NOTE_SPEC.store_key]
        candidates = Candidates()
        if "creditnoteid" in hints:
            candidates.narrow(i for i in [hints["creditnoteid"].lower()] if i in store.records)
        if "contact.contactid" in hints:
            candidates.narrow(store.by_contact.get(hints["contact.contactid"].lower(), set()))
        # Numbers are not narrowed through the index: purchase credit notes may share one.
        out = self._select(request, store.records, candidates, node, self._credit_note_field)
        out = self._order(request, out, CREDIT_NOTE_SCHEMA, "CreditNote", self._credit_note_field)
        paging = self._paging(request)
        page, pagination = self._paginate(out, paging)
        lines = paging is not None and "page" in request.query
        return self._envelope(
            "CreditNotes", [self._render_credit_note(cn, lines=lines, num=as_float) for cn in page], pagination
        )

    def _get_credit_note(self, request: Request) -> Response:
        note = self._find_document(CREDIT_NOTE_SPEC, request.segments[1])
        if note is None:
            return not_found()
        return self._envelope("CreditNotes", [self._render_credit_note(note, lines=True, num=as_float)])

    def _write_credit_notes(self, request: Request) -> Response:
        return self._write_documents(
            CREDIT_NOTE_SPEC,
            request,
            "CreditNotes",
            lambda record: self._render_credit_note(record, lines=True, num=as_float),
        )

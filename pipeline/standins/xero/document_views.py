"""How the Xero stand-in renders what its documents, payments and allocations show of each other.

An invoice lists its payments and the credit notes applied to it; a credit note its allocations and
refunds; a payment and an allocation name their documents. Those views, and the fields that invoices and
credit notes render alike, are here so that every endpoint shows the same thing the same way.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pipeline.standins.xero.batches import echo_failed
from pipeline.standins.xero.data import ACCOUNTS, ms_date, ms_datetime, round2
from pipeline.standins.xero.document_lines import render_line
from pipeline.standins.xero.documents import DocumentSpec, DocumentValidationMixin
from pipeline.standins.xero.responses import Request, Response, not_found
from pipeline.standins.xero.settlement import outstanding, spec_of
from pipeline.standins.xero.values import Num, Record
from pipeline.standins.xero.where import FieldSpec


class DocumentViewsMixin(DocumentValidationMixin):
    """Renderings shared by invoices, credit notes, payments and allocations, and the documents' writes."""

    def _write_documents(
        self, spec: DocumentSpec, request: Request, key: str, render: Callable[[Record], dict[str, Any]]
    ) -> Response:
        """``PUT``/``POST`` of invoices or credit notes (``key``: the body's and the answer's list)."""
        path_document: Record | None = None
        if len(request.segments) == 2:
            path_document = self._find_document(spec, request.segments[1])
            if path_document is None:
                return not_found()
        items = self._batch_items(request, key, spec.noun.replace(" ", ""), path_document)
        unitdp4 = (request.query.get("unitdp") or "").strip() == "4"
        return self._write_batch(
            request,
            key,
            items,
            lambda elem, claims: self._prepare_document(spec, elem, request.method, path_document, unitdp4, claims),
            functools.partial(self._claim_document, spec),
            functools.partial(self._commit_document, spec),
            render,
            functools.partial(echo_failed, spec.id_key),
        )

    def _document_field(self, schema: FieldSpec, doc: Record, path: tuple[str, ...]) -> Any:
        """The value at ``path`` of an invoice or credit note, for ``where`` and ``order``."""
        head = path[0].lower()
        if head == "contact":
            contact = self._contacts.get(doc["ContactID"])
            return self._contact_field(contact, path[1:]) if contact is not None and len(path) > 1 else None
        if len(path) != 1:
            return None
        if head in ("amountdue", "remainingcredit"):
            return outstanding(doc)
        if head == "hasattachments":
            return False
        for key in schema:
            if key.lower() == head:
                return doc.get(key)
        return None

    def _contact_ref(self, contact_id: str) -> dict[str, Any]:
        contact = self._contacts.get(contact_id, {})
        out: dict[str, Any] = {"ContactID": contact_id, "Name": contact.get("Name", "")}
        if contact.get("ContactNumber"):
            out["ContactNumber"] = contact["ContactNumber"]
        out["ContactStatus"] = contact.get("ContactStatus", "ACTIVE")
        out["HasValidationErrors"] = False
        return out

    def _document_body(self, doc: Record, *, lines: bool, num: Num) -> dict[str, Any]:
        """The fields invoices and credit notes render alike, from Contact to CurrencyCode."""
        out: dict[str, Any] = {"Contact": self._contact_ref(doc["ContactID"])}
        out["DateString"] = doc["Date"].isoformat() + "T00:00:00"
        out["Date"] = ms_date(doc["Date"])
        if doc.get("DueDate") is not None:
            out["DueDateString"] = doc["DueDate"].isoformat() + "T00:00:00"
            out["DueDate"] = ms_date(doc["DueDate"])
        out["Status"] = doc["Status"]
        out["LineAmountTypes"] = doc["LineAmountTypes"]
        if lines:
            out["LineItems"] = [render_line(line, num, self._created) for line in doc["LineItems"]]
        out["SubTotal"] = num(doc["SubTotal"])
        out["TotalTax"] = num(doc["TotalTax"])
        out["Total"] = num(doc["Total"])
        out["UpdatedDateUTC"] = ms_datetime(doc["UpdatedDateUTC"])
        out["CurrencyCode"] = doc["CurrencyCode"]
        if doc.get("FullyPaidOnDate") is not None:
            out["FullyPaidOnDate"] = ms_date(doc["FullyPaidOnDate"])
        return out

    def _document_ref(self, doc: Record, num: Num) -> dict[str, Any]:
        """An invoice or credit note as a payment or an allocation names it."""
        spec = spec_of(doc)
        out: dict[str, Any] = {"Type": doc["Type"], spec.id_key: doc[spec.id_key]}
        if doc.get(spec.number_key):
            out[spec.number_key] = doc[spec.number_key]
        out["Contact"] = self._contact_ref(doc["ContactID"])
        out["CurrencyCode"] = doc["CurrencyCode"]
        out["CurrencyRate"] = num(doc["CurrencyRate"])
        out["Total"] = num(doc["Total"])
        out["HasErrors"] = False
        return out

    def _payments_on(self, doc_id: str, num: Num) -> list[dict[str, Any]]:
        """A document's live payments (refunds, for a credit note) as it lists them."""
        out = []
        for payment_id in self._payment_ids_by_document.get(doc_id, []):
            p = self._payments[payment_id]
            if p["Status"] != "AUTHORISED":
                continue
            out.append(
                {
                    "PaymentID": p["PaymentID"],
                    "Date": ms_date(p["Date"]),
                    "Amount": num(p["Amount"]),
                    "CurrencyRate": num(p["CurrencyRate"]),
                    "Reference": p["Reference"] or "",
                    "HasAccount": False,
                    "HasValidationErrors": False,
                }
            )
        return out

    def _live_allocations(self, doc_id: str) -> list[Record]:
        ids = self._allocation_ids_by_document.get(doc_id, [])
        return [a for a in (self._allocations[i] for i in ids) if not a["IsDeleted"]]

    def _credit_notes_on(self, invoice_id: str, num: Num) -> list[dict[str, Any]]:
        """The credit notes applied to an invoice, one entry a credit note with the amount it applies."""
        applied: defaultdict[str, Decimal] = defaultdict(Decimal)
        for allocation in self._live_allocations(invoice_id):
            applied[allocation["CreditNoteID"]] += allocation["Amount"]
        out = []
        for credit_note_id, amount in applied.items():
            note = self._credit_notes[credit_note_id]
            out.append(
                {
                    "Type": note["Type"],
                    "CreditNoteID": credit_note_id,
                    "CreditNoteNumber": note.get("CreditNoteNumber") or "",
                    "Date": ms_date(note["Date"]),
                    "AppliedAmount": num(amount),
                    "Total": num(note["Total"]),
                    "HasErrors": False,
                }
            )
        return out

    def _render_allocation(self, allocation: Record, num: Num, *, status: bool = False) -> dict[str, Any]:
        """An allocation; ``status`` adds the element result fields of a ``PUT .../Allocations`` answer."""
        invoice = self._invoices[allocation["InvoiceID"]]
        note = self._credit_notes[allocation["CreditNoteID"]]
        invoice_ref: dict[str, Any] = {"Type": invoice["Type"], "InvoiceID": invoice["InvoiceID"]}
        if invoice.get("InvoiceNumber"):
            invoice_ref["InvoiceNumber"] = invoice["InvoiceNumber"]
        note_ref: dict[str, Any] = {"Type": note["Type"], "CreditNoteID": note["CreditNoteID"]}
        if note.get("CreditNoteNumber"):
            note_ref["CreditNoteNumber"] = note["CreditNoteNumber"]
        out: dict[str, Any] = {
            "AllocationID": allocation["AllocationID"],
            "Amount": num(allocation["Amount"]),
            "Date": ms_date(allocation["Date"]),
            "Invoice": invoice_ref,
            "CreditNote": note_ref,
            "IsDeleted": allocation["IsDeleted"],
        }
        if status:
            out["StatusAttributeString"] = "OK"
            out["ValidationErrors"] = []
        return out

    def _render_payment(self, payment: Record, num: Num) -> dict[str, Any]:
        """A payment as ``GET /Payments`` returns it, naming its account and its document."""
        doc = self._documents[payment["DocumentKind"]].records[payment["DocumentID"]]
        out: dict[str, Any] = {
            "PaymentID": payment["PaymentID"],
            "Date": ms_date(payment["Date"]),
            "BankAmount": num(round2(payment["Amount"] / payment["CurrencyRate"])),
            "Amount": num(payment["Amount"]),
            "Reference": payment["Reference"] or "",
            "CurrencyRate": num(payment["CurrencyRate"]),
            "PaymentType": payment["PaymentType"],
            "Status": payment["Status"],
            "UpdatedDateUTC": ms_datetime(payment["UpdatedDateUTC"]),
            "HasAccount": True,
            "IsReconciled": payment["IsReconciled"],
            "Account": {
                "AccountID": ACCOUNTS[payment["AccountCode"]].to_xero(self._created)["AccountID"],
                "Code": payment["AccountCode"],
            },
            "HasValidationErrors": False,
        }
        out["Invoice" if payment["DocumentKind"] == "invoice" else "CreditNote"] = self._document_ref(doc, num)
        return out

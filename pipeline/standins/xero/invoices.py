"""The Xero stand-in's invoices: listing, reading, rendering and writing them.

``GET``/``PUT``/``POST /Invoices`` (validation, numbering and commits, shared with credit notes, are in
``documents.py``), plus the in-process ``invoices()``. Payments (and ``pay_invoice()``) are in ``payments.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.standins.xero.document_views import DocumentViewsMixin
from pipeline.standins.xero.documents import INVOICE_SPEC
from pipeline.standins.xero.query import Candidates
from pipeline.standins.xero.responses import Request, Response, not_found
from pipeline.standins.xero.schemas import INVOICE_SCHEMA
from pipeline.standins.xero.settlement import outstanding
from pipeline.standins.xero.values import Num, Record, as_decimal, as_float, split_csv
from pipeline.standins.xero.where import equality_hints


class InvoicesMixin(DocumentViewsMixin):
    """Invoice endpoints (their indexes, by type and number and by contact, are the invoice ``DocumentStore``)."""

    def invoices(self) -> list[dict[str, Any]]:
        """All invoices as Xero JSON with line items; amounts are ``Decimal``; oldest update first."""
        with self._lock:
            return [self._render_invoice(inv, lines=True, num=as_decimal) for inv in self._invoices.values()]

    def _find_invoice(self, ref: str) -> Record | None:
        return self._find_document(INVOICE_SPEC, ref)

    def _invoice_field(self, inv: Record, path: tuple[str, ...]) -> Any:
        return self._document_field(INVOICE_SCHEMA, inv, path)

    def _render_invoice(self, inv: Record, *, lines: bool, num: Num, summary: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"Type": inv["Type"], "InvoiceID": inv["InvoiceID"]}
        if inv.get("InvoiceNumber"):
            out["InvoiceNumber"] = inv["InvoiceNumber"]
        if inv.get("Reference") is not None:
            out["Reference"] = inv["Reference"]
        if not summary:
            out["Payments"] = self._payments_on(inv["InvoiceID"], num)
            out["CreditNotes"] = self._credit_notes_on(inv["InvoiceID"], num)
            out["Prepayments"] = []
            out["Overpayments"] = []
        out["AmountDue"] = num(outstanding(inv))
        out["AmountPaid"] = num(inv["AmountPaid"])
        out["AmountCredited"] = num(inv["AmountCredited"])
        out["CurrencyRate"] = num(inv["CurrencyRate"])
        out["IsDiscounted"] = inv["IsDiscounted"]
        out["HasAttachments"] = False
        out["HasErrors"] = False
        out |= self._document_body(inv, lines=lines and not summary, num=num)
        out["SentToContact"] = inv["SentToContact"]
        for key in ("Url", "BrandingThemeID"):
            if inv.get(key):
                out[key] = inv[key]
        return out

    def _list_invoices(self, request: Request) -> Response:
        node = self._where(request, INVOICE_SCHEMA, "Invoice")
        hints = equality_hints(node) if node is not None else {}
        candidates = Candidates()
        ids = [i.lower() for i in split_csv(request.query.get("ids"))]
        if ids:
            candidates.narrow(i for i in ids if i in self._invoices)
        if "invoiceid" in hints:
            candidates.narrow(i for i in [hints["invoiceid"].lower()] if i in self._invoices)
        numbers = split_csv(request.query.get("invoicenumbers"))
        if "invoicenumber" in hints:
            candidates.narrow(self._ids_for_numbers([hints["invoicenumber"]]))
        if numbers:
            candidates.narrow(self._ids_for_numbers(numbers))
        contact_ids = [c.lower() for c in split_csv(request.query.get("contactids"))]
        if "contact.contactid" in hints:
            candidates.narrow(self._invoices_by_contact.get(hints["contact.contactid"].lower(), set()))
        if contact_ids:
            candidates.narrow(i for c in contact_ids for i in self._invoices_by_contact.get(c, ()))
        statuses = {s.upper() for s in split_csv(request.query.get("statuses"))}
        term = (request.query.get("searchterm") or "").strip().casefold()

        def keep(inv: Record) -> bool:
            if statuses and inv["Status"] not in statuses:
                return False
            return not term or any(term in (inv.get(k) or "").casefold() for k in ("InvoiceNumber", "Reference"))

        out = self._select(request, self._invoices, candidates, node, self._invoice_field, keep)
        out = self._order(request, out, INVOICE_SCHEMA, "Invoice", self._invoice_field)
        paging = self._paging(request)
        page, pagination = self._paginate(out, paging)
        summary = bool(request.flag("summaryOnly"))
        lines = paging is not None and "page" in request.query
        return self._envelope(
            "Invoices",
            [self._render_invoice(i, lines=lines, num=as_float, summary=summary) for i in page],
            pagination,
        )

    def _ids_for_numbers(self, numbers: Iterable[str]) -> list[str]:
        """Every invoice with one of these numbers: the one ACCREC, and all the bills that share it."""
        wanted = {number.casefold() for number in numbers}
        index = self._invoice_by_number
        found = [index[("ACCREC", key)] for key in wanted if ("ACCREC", key) in index]
        # Xero keeps bill numbers as typed, repeats included, so the number index holds only the newest.
        found.extend(
            inv["InvoiceID"]
            for inv in self._invoices.values()
            if inv["Type"] != "ACCREC" and (inv.get("InvoiceNumber") or "").casefold() in wanted
        )
        return found

    def _get_invoice(self, request: Request) -> Response:
        inv = self._find_invoice(request.segments[1])
        if inv is None:
            return not_found()
        return self._envelope("Invoices", [self._render_invoice(inv, lines=True, num=as_float)])

    def _write_invoices(self, request: Request) -> Response:
        return self._write_documents(
            INVOICE_SPEC, request, "Invoices", lambda record: self._render_invoice(record, lines=True, num=as_float)
        )

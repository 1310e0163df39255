"""The Xero stand-in's invoices: listing, reading, rendering, committing and paying them.

``GET``/``PUT``/``POST /Invoices`` (validation is in ``invoice_validation.py``), the invoice-number
indexes and auto-numbering, plus the in-process ``invoices()`` and ``pay_invoice()``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from pipeline.standins.xero.batches import Claims, failed_element
from pipeline.standins.xero.contacts import ContactPlan
from pipeline.standins.xero.data import ACCOUNTS, ms_date, ms_datetime, parse_input_date
from pipeline.standins.xero.invoice_validation import InvoicePlan, InvoiceValidationMixin
from pipeline.standins.xero.query import Candidates
from pipeline.standins.xero.responses import Request, Response, not_found
from pipeline.standins.xero.schemas import INVOICE_SCHEMA, INVOICE_TYPES
from pipeline.standins.xero.values import (
    Num,
    Record,
    as_decimal,
    as_float,
    is_guid,
    jsonable,
    split_csv,
    utc_now,
)
from pipeline.standins.xero.where import equality_hints, evaluate


class InvoicesMixin(InvoiceValidationMixin):
    """Invoice endpoints and the invoice indexes they keep (by type and number, by contact)."""

    def invoices(self) -> list[dict[str, Any]]:
        """All invoices as Xero JSON with line items; amounts are ``Decimal``; oldest update first."""
        with self._lock:
            return [self._render_invoice(inv, lines=True, num=as_decimal) for inv in self._invoices.values()]

    def pay_invoice(self, invoice_id: str) -> dict[str, Any]:
        """Record a full payment on an AUTHORISED invoice (status PAID); KeyError/ValueError otherwise."""
        with self._lock:
            inv = self._invoices.get(invoice_id.lower())
            if inv is None:
                raise KeyError(invoice_id)
            if inv["Status"] != "AUTHORISED":
                raise ValueError(f"Invoice is {inv['Status']}; only AUTHORISED invoices can be paid")
            due = self._amount_due(inv)
            today = utc_now().date()
            inv["AmountPaid"] += due
            inv["Payments"].append(
                {"PaymentID": str(uuid.uuid4()), "Date": today, "Amount": due, "CurrencyRate": inv["CurrencyRate"]}
            )
            inv["Status"] = "PAID"
            inv["FullyPaidOnDate"] = today
            self._touch(self._invoices, inv, "InvoiceID")
            return self._render_invoice(inv, lines=True, num=as_decimal)

    def _find_invoice(self, ref: str) -> Record | None:
        if is_guid(ref):
            return self._invoices.get(ref.lower())
        for kind in INVOICE_TYPES:
            invoice_id = self._invoice_by_number.get((kind, ref.casefold()))
            if invoice_id:
                return self._invoices[invoice_id]
        return None

    @staticmethod
    def _amount_due(inv: Record) -> Decimal:
        if inv["Status"] in ("VOIDED", "DELETED"):
            return Decimal("0.00")
        due: Decimal = inv["Total"] - inv["AmountPaid"] - inv["AmountCredited"]
        return due

    def _invoice_field(self, inv: Record, path: tuple[str, ...]) -> Any:
        head = path[0].lower()
        if head == "contact":
            contact = self._contacts.get(inv["ContactID"])
            return self._contact_field(contact, path[1:]) if contact is not None and len(path) > 1 else None
        if len(path) != 1:
            return None
        if head == "amountdue":
            return self._amount_due(inv)
        if head == "hasattachments":
            return False
        for key in INVOICE_SCHEMA:
            if key.lower() == head:
                return inv.get(key)
        return None

    def _render_line(self, line: Record, num: Num) -> dict[str, Any]:
        out: dict[str, Any] = {
            "LineItemID": line["LineItemID"],
            "Description": line["Description"],
            "Quantity": num(line["Quantity"]),
            "UnitAmount": num(line["UnitAmount"]),
        }
        for key in ("ItemCode", "AccountCode"):
            if line.get(key):
                out[key] = line[key]
        if line.get("AccountCode") in ACCOUNTS:
            out["AccountID"] = ACCOUNTS[line["AccountCode"]].to_xero(self._created)["AccountID"]
        out["TaxType"] = line["TaxType"]
        out["TaxAmount"] = num(line["TaxAmount"])
        out["LineAmount"] = num(line["LineAmount"])
        if line.get("DiscountRate") is not None:
            out["DiscountRate"] = num(line["DiscountRate"])
        if line.get("DiscountAmount") is not None:
            out["DiscountAmount"] = num(line["DiscountAmount"])
        out["Tracking"] = jsonable(line.get("Tracking") or [], num)
        return out

    def _render_invoice(self, inv: Record, *, lines: bool, num: Num, summary: bool = False) -> dict[str, Any]:
        contact = self._contacts.get(inv["ContactID"], {})
        contact_out: dict[str, Any] = {"ContactID": inv["ContactID"], "Name": contact.get("Name", "")}
        if contact.get("ContactNumber"):
            contact_out["ContactNumber"] = contact["ContactNumber"]
        contact_out["ContactStatus"] = contact.get("ContactStatus", "ACTIVE")
        contact_out["HasValidationErrors"] = False
        out: dict[str, Any] = {"Type": inv["Type"], "InvoiceID": inv["InvoiceID"]}
        if inv.get("InvoiceNumber"):
            out["InvoiceNumber"] = inv["InvoiceNumber"]
        if inv.get("Reference") is not None:
            out["Reference"] = inv["Reference"]
        if not summary:
            out["Payments"] = [
                {
                    "PaymentID": p["PaymentID"],
                    "Date": ms_date(p["Date"]),
                    "Amount": num(p["Amount"]),
                    "CurrencyRate": num(p["CurrencyRate"]),
                    "HasAccount": False,
                    "HasValidationErrors": False,
                }
                for p in inv["Payments"]
            ]
            out["CreditNotes"] = []
            out["Prepayments"] = []
            out["Overpayments"] = []
        out["AmountDue"] = num(self._amount_due(inv))
        out["AmountPaid"] = num(inv["AmountPaid"])
        out["AmountCredited"] = num(inv["AmountCredited"])
        out["CurrencyRate"] = num(inv["CurrencyRate"])
        out["IsDiscounted"] = inv["IsDiscounted"]
        out["HasAttachments"] = False
        out["HasErrors"] = False
        out["Contact"] = contact_out
        out["DateString"] = inv["Date"].isoformat() + "T00:00:00"
        out["Date"] = ms_date(inv["Date"])
        if inv.get("DueDate") is not None:
            out["DueDateString"] = inv["DueDate"].isoformat() + "T00:00:00"
            out["DueDate"] = ms_date(inv["DueDate"])
        out["Status"] = inv["Status"]
        out["LineAmountTypes"] = inv["LineAmountTypes"]
        if lines and not summary:
            out["LineItems"] = [self._render_line(line, num) for line in inv["LineItems"]]
        out["SubTotal"] = num(inv["SubTotal"])
        out["TotalTax"] = num(inv["TotalTax"])
        out["Total"] = num(inv["Total"])
        out["UpdatedDateUTC"] = ms_datetime(inv["UpdatedDateUTC"])
        out["CurrencyCode"] = inv["CurrencyCode"]
        if inv.get("FullyPaidOnDate") is not None:
            out["FullyPaidOnDate"] = ms_date(inv["FullyPaidOnDate"])
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
        since, newer = self._modified_since(request, self._invoices)
        records = self._records_to_scan(self._invoices, candidates, newer)
        term = (request.query.get("searchterm") or "").strip().casefold()
        out: list[Record] = []
        for inv in records:
            if statuses and inv["Status"] not in statuses:
                continue
            if since is not None and inv["UpdatedDateUTC"] < since:
                continue
            if (
                term
                and term not in (inv.get("InvoiceNumber") or "").casefold()
                and term not in (inv.get("Reference") or "").casefold()
            ):
                continue
            if node is not None and not evaluate(node, functools.partial(self._invoice_field, inv)):
                continue
            out.append(inv)
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
        found: list[str] = []
        for number in numbers:
            for kind in INVOICE_TYPES:
                invoice_id = self._invoice_by_number.get((kind, number.casefold()))
                if invoice_id:
                    found.append(invoice_id)
        return found

    def _get_invoice(self, request: Request) -> Response:
        inv = self._find_invoice(request.segments[1])
        if inv is None:
            return not_found()
        return self._envelope("Invoices", [self._render_invoice(inv, lines=True, num=as_float)])

    def _claim_invoice(self, plan: InvoicePlan, claims: Claims) -> None:
        record = plan.record
        if record.get("InvoiceNumber"):
            claims.invoice_numbers.add((record["Type"], record["InvoiceNumber"].casefold()))
        if plan.new_contact is not None:
            claims.contact_names.add(plan.new_contact["Name"].casefold())

    def _commit_invoice(self, plan: InvoicePlan) -> Record:
        record = plan.record
        if plan.new_contact is not None:
            # An earlier element of the same batch may have created this contact already.
            found = self._active_contact_by_name.get(plan.new_contact["Name"].casefold())
            if found is None:
                found = self._commit_contact(ContactPlan(None, plan.new_contact))["ContactID"]
            record["ContactID"] = found
        if plan.existing_id is not None:
            old = self._invoices[plan.existing_id]
            if old.get("InvoiceNumber"):
                self._invoice_by_number.pop((old["Type"], old["InvoiceNumber"].casefold()), None)
            self._invoices_by_contact.get(old["ContactID"], set()).discard(plan.existing_id)
        else:
            record["InvoiceID"] = str(uuid.uuid4())
            if not record.get("InvoiceNumber") and record["Type"] == "ACCREC":
                record["InvoiceNumber"] = self._next_number()
        if record.get("InvoiceNumber"):
            self._invoice_by_number[(record["Type"], record["InvoiceNumber"].casefold())] = record["InvoiceID"]
        self._invoices_by_contact.setdefault(record["ContactID"], set()).add(record["InvoiceID"])
        contact = self._contacts.get(record["ContactID"])
        if contact is not None:
            # Xero derives these flags and, notably, does not bump the contact's UpdatedDateUTC.
            contact["IsCustomer" if record["Type"] == "ACCREC" else "IsSupplier"] = True
        self._touch(self._invoices, record, "InvoiceID")
        return record

    def _next_number(self) -> str:
        while True:
            candidate = f"INV-{self._next_invoice_number:04d}"
            self._next_invoice_number += 1
            if ("ACCREC", candidate.casefold()) not in self._invoice_by_number:
                return candidate

    def _invoice_error_echo(self, elem: Any, errors: list[str]) -> dict[str, Any]:
        echo: dict[str, Any] = {}
        if isinstance(elem, dict):
            for key, value in elem.items():
                if key in ("Date", "DueDate"):
                    try:
                        echo[key] = ms_date(parse_input_date(value))
                    except ValueError:
                        continue
                else:
                    echo[key] = jsonable(value, as_float)
        return failed_element(echo, "InvoiceID", errors, validation_flag=False)

    def _write_invoices(self, request: Request) -> Response:
        path_invoice: Record | None = None
        if len(request.segments) == 2:
            path_invoice = self._find_invoice(request.segments[1])
            if path_invoice is None:
                return not_found()
        items = self._batch_items(request, "Invoices", "Invoice", path_invoice)
        unitdp4 = (request.query.get("unitdp") or "").strip() == "4"
        return self._write_batch(
            request,
            "Invoices",
            items,
            lambda elem, claims: self._prepare_invoice(elem, request.method, path_invoice, unitdp4, claims),
            self._claim_invoice,
            self._commit_invoice,
            lambda record: self._render_invoice(record, lines=True, num=as_float),
            self._invoice_error_echo,
        )

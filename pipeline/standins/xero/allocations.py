"""The Xero stand-in's credit note allocations: ``PUT /CreditNotes/{id}/Allocations`` and deleting one.

An allocation applies part of an AUTHORISED credit note to an AUTHORISED invoice of the matching type and
currency, for at most the smaller of the credit left and the amount the invoice owes: the invoice's
``AmountCredited`` grows and the credit note's ``RemainingCredit`` shrinks (either PAID at zero). Deleting
it undoes both.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from pipeline.standins.xero.batches import Claims, echo_failed
from pipeline.standins.xero.data import ms_date
from pipeline.standins.xero.documents import CREDIT_NOTE_SPEC, INVOICE_SPEC
from pipeline.standins.xero.responses import Request, Response, json_response, not_found
from pipeline.standins.xero.schemas import ALLOCATABLE_TYPES
from pipeline.standins.xero.settlement import outstanding
from pipeline.standins.xero.transactions import TransactionsMixin
from pipeline.standins.xero.values import ZERO_GUID, Record, as_float, utc_now

# Xero's words, as integrations have logged them.
TOO_MUCH = "Credit Note cannot be allocated as amount is greater than amount outstanding"
PAID_OFF = "The invoice you are trying to allocate to has already been paid off"
WRONG_TYPE = "Credit Note cannot be allocated to an incorrect invoice type"
# The stand-in's words where Xero's are not documented.
NOTE_NOT_AUTHORISED = "Credit Note must be Authorised before it can be allocated."
INVOICE_NOT_AUTHORISED = "Credit Note can only be allocated to an Authorised invoice."
OTHER_CURRENCY = "Credit Note cannot be allocated to an invoice in a different currency"


@dataclass(slots=True)
class AllocationPlan:
    """A validated allocation element: the allocation to store, between these two documents."""

    credit_note: Record
    invoice: Record
    record: Record


class AllocationsMixin(TransactionsMixin):
    """Allocation endpoints and the allocation store."""

    def _allocation_problem(self, note: Record, invoice: Record, amount: Any, claims: Claims | None) -> str | None:
        """Why this credit note cannot be allocated to this invoice (None: it can, for ``amount``)."""
        claimed_note = claims.claimed(note["CreditNoteID"]) if claims is not None else 0
        claimed_invoice = claims.claimed(invoice["InvoiceID"]) if claims is not None else 0
        if invoice["Type"] != ALLOCATABLE_TYPES[note["Type"]]:
            return WRONG_TYPE
        if invoice["Status"] == "PAID" or (
            invoice["Status"] == "AUTHORISED" and outstanding(invoice) - claimed_invoice <= 0
        ):
            return PAID_OFF
        if invoice["Status"] != "AUTHORISED":
            return INVOICE_NOT_AUTHORISED
        if invoice["CurrencyCode"] != note["CurrencyCode"]:
            return OTHER_CURRENCY
        limit = min(outstanding(note) - claimed_note, outstanding(invoice) - claimed_invoice)
        if amount is not None and amount > limit:
            return TOO_MUCH
        return None

    def _prepare_allocation(
        self, note: Record, elem: Any, claims: Claims | None
    ) -> tuple[AllocationPlan | None, list[str]]:
        if not isinstance(elem, dict):
            return None, ["An allocation element must be a JSON object."]
        errors: list[str] = []
        # A fully allocated (PAID) credit note gets the amount error below rather than this one.
        if note["Status"] not in ("AUTHORISED", "PAID"):
            errors.append(NOTE_NOT_AUTHORISED)
        invoice = self._referenced_document(INVOICE_SPEC, elem.get("Invoice"), None, errors)
        amount = self._transaction_amount(elem.get("Amount"), "allocation", errors)
        date = self._transaction_date(elem.get("Date"), "allocation", errors)
        if invoice is not None and not errors:
            problem = self._allocation_problem(note, invoice, amount, claims)
            if problem is not None:
                errors.append(problem)
        if errors or invoice is None:
            return None, errors
        record: Record = {
            "AllocationID": None,
            "Amount": amount,
            "Date": date,
            "InvoiceID": invoice["InvoiceID"],
            "CreditNoteID": note["CreditNoteID"],
            "IsDeleted": False,
        }
        return AllocationPlan(note, invoice, record), []

    @staticmethod
    def _claim_allocation(plan: AllocationPlan, claims: Claims) -> None:
        claims.claim_amount(plan.record["InvoiceID"], plan.record["Amount"])
        claims.claim_amount(plan.record["CreditNoteID"], plan.record["Amount"])

    def _commit_allocation(self, plan: AllocationPlan) -> Record:
        record = plan.record
        record["AllocationID"] = str(uuid.uuid4())
        self._allocations[record["AllocationID"]] = record
        for spec, key in ((INVOICE_SPEC, "InvoiceID"), (CREDIT_NOTE_SPEC, "CreditNoteID")):
            doc = self._documents[spec.store_key].records[record[key]]
            self._settle(doc, spec.applied_key, record["Amount"], record["Date"])
            self._allocation_ids_by_document.setdefault(record[key], []).append(record["AllocationID"])
        return record

    def _write_allocations(self, request: Request) -> Response:
        note = self._find_document(CREDIT_NOTE_SPEC, request.segments[1])
        if note is None:
            return not_found()
        items = self._json_body(request, "Allocations", "Allocation")
        return self._write_batch(
            request,
            "Allocations",
            items,
            functools.partial(self._prepare_allocation, note),
            self._claim_allocation,
            self._commit_allocation,
            lambda record: self._render_allocation(record, as_float, status=True),
            self._allocation_echo,
        )

    @staticmethod
    def _allocation_echo(elem: Any, errors: list[str]) -> dict[str, Any]:
        # xero-python refuses an Allocation without Invoice, Amount and Date, so a failed one always has them.
        echo = echo_failed("AllocationID", elem, errors)
        echo.setdefault("Invoice", {"InvoiceID": ZERO_GUID})
        echo.setdefault("Amount", 0.0)
        echo.setdefault("Date", ms_date(utc_now().date()))
        return echo

    def _delete_allocation(self, request: Request) -> Response:
        """Undo an allocation; deleting it again changes nothing and answers the same (a DELETE is idempotent)."""
        note = self._find_document(CREDIT_NOTE_SPEC, request.segments[1])
        allocation = self._allocations.get(request.segments[3].lower())
        if note is None or allocation is None or allocation["CreditNoteID"] != note["CreditNoteID"]:
            return not_found()
        if not allocation["IsDeleted"]:
            allocation["IsDeleted"] = True
            for spec, key in ((INVOICE_SPEC, "InvoiceID"), (CREDIT_NOTE_SPEC, "CreditNoteID")):
                doc = self._documents[spec.store_key].records[allocation[key]]
                self._unsettle(doc, spec.applied_key, allocation["Amount"])
        return json_response(200, self._render_allocation(allocation, as_float))

"""The Xero stand-in's payments: ``PUT``/``GET /Payments``, ``GET /Payments/{id}`` and deleting one.

A payment settles an AUTHORISED invoice (or refunds a credit note) into a bank account, for at most
what the document has outstanding; it cannot be edited, only deleted with ``POST /Payments/{id}``
``{"Status":"DELETED"}``, which gives the money back to the document, unless it has been reconciled.
``pay_invoice()`` and ``reconcile_payment()`` are the in-process shortcuts tests use.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from pipeline.standins.xero.batches import Claims, echo_failed
from pipeline.standins.xero.data import ACCOUNTS, Account, stable_id
from pipeline.standins.xero.documents import CREDIT_NOTE_SPEC, INVOICE_SPEC, positive_rate
from pipeline.standins.xero.query import Candidates
from pipeline.standins.xero.responses import Request, Response, not_found, validation_error
from pipeline.standins.xero.schemas import CREDIT_NOTE_SCHEMA, INVOICE_SCHEMA, PAYMENT_SCHEMA, PAYMENT_TYPES
from pipeline.standins.xero.settlement import outstanding, spec_of
from pipeline.standins.xero.transactions import TransactionsMixin
from pipeline.standins.xero.values import ZERO_GUID, Record, as_decimal, as_float, as_text, is_guid, utc_now
from pipeline.standins.xero.where import equality_hints

#: The bank account ``pay_invoice()`` pays into.
BANK_ACCOUNT_CODE = "090"
NOT_AUTHORISED = "Payments can only be made against Authorised documents"
EXCEEDS_OUTSTANDING = "Payment amount exceeds the amount outstanding on this document"
#: The stand-in's own words where Xero's are not documented.
NOT_EDITABLE = "Payments cannot be edited, only deleted (Status DELETED)."
ALREADY_DELETED = "Payment has already been deleted."
RECONCILED = "Payment cannot be deleted as it has been reconciled."


@dataclass(slots=True)
class PaymentPlan:
    """A validated payment element: the payment to store and the document it settles."""

    document: Record
    record: Record


class PaymentsMixin(TransactionsMixin):
    """Payment endpoints, the payment store and the in-process payment shortcuts."""

    def payments(self) -> list[dict[str, Any]]:
        """All payments (deleted ones too) as ``GET /Payments`` shows them; amounts are ``Decimal``."""
        with self._lock:
            return [self._render_payment(p, as_decimal) for p in self._payments.values()]

    def pay_invoice(self, invoice_id: str) -> dict[str, Any]:
        """Pay what an AUTHORISED invoice owes into account 090 (it becomes PAID); KeyError/ValueError otherwise.

        It takes the same path as ``PUT /Payments``, so the payment lists and can be deleted like any other.
        """
        with self._lock:
            inv = self._invoices.get(invoice_id.lower())
            if inv is None:
                raise KeyError(invoice_id)
            elem = {
                "Invoice": {"InvoiceID": inv["InvoiceID"]},
                "Account": {"Code": BANK_ACCOUNT_CODE},
                "Date": utc_now().date().isoformat(),
                "Amount": outstanding(inv),
            }
            plan, errors = self._prepare_payment(elem, None)
            if plan is None:
                raise ValueError("; ".join(errors))
            self._commit_payment(plan)
            return self._render_invoice(self._invoices[inv["InvoiceID"]], lines=True, num=as_decimal)

    def reconcile_payment(self, payment_id: str) -> dict[str, Any]:
        """Mark a payment reconciled (as a bank feed match does): it can no longer be deleted. KeyError if unknown."""
        with self._lock:
            payment = self._payments.get(payment_id.lower())
            if payment is None:
                raise KeyError(payment_id)
            payment["IsReconciled"] = True
            self._touch(self._payments, payment, "PaymentID")
            return self._render_payment(payment, as_decimal)

    def _payment_account(self, ref: Any, errors: list[str]) -> str | None:
        """The code of the account a payment names, which must be a bank account or take payments."""
        ref = ref if isinstance(ref, dict) else {}
        account_id, code = as_text(ref.get("AccountID")), as_text(ref.get("Code"))
        account: Account | None
        if account_id and account_id != ZERO_GUID:
            account = next((a for a in ACCOUNTS.values() if stable_id("account", a.code) == account_id.lower()), None)
            if account is None:
                errors.append(f"The account with AccountID {account_id} could not be found.")
                return None
        elif code:
            account = ACCOUNTS.get(code)
            if account is None:
                errors.append(f"Account code '{code}' could not be found.")
                return None
        else:
            errors.append("The payment must name its Account by AccountID or Code.")
            return None
        if account.type != "BANK" and not account.to_xero(self._created)["EnablePaymentsToAccount"]:
            errors.append(f"Account code '{account.code}' is not a bank account or enabled for payments")
        return account.code

    def _payment_document(self, elem: Record, errors: list[str]) -> Record | None:
        if isinstance(elem.get("Invoice"), dict) or elem.get("InvoiceNumber"):
            return self._referenced_document(INVOICE_SPEC, elem.get("Invoice"), elem.get("InvoiceNumber"), errors)
        if isinstance(elem.get("CreditNote"), dict) or elem.get("CreditNoteNumber"):
            return self._referenced_document(
                CREDIT_NOTE_SPEC, elem.get("CreditNote"), elem.get("CreditNoteNumber"), errors
            )
        errors.append("A payment must name the Invoice or the CreditNote it pays.")
        return None

    def _prepare_payment(self, elem: Any, claims: Claims | None) -> tuple[PaymentPlan | None, list[str]]:
        if not isinstance(elem, dict):
            return None, ["A payment element must be a JSON object."]
        errors: list[str] = []
        doc = self._payment_document(elem, errors)
        account_code = self._payment_account(elem.get("Account"), errors)
        amount = self._transaction_amount(elem.get("Amount"), "payment", errors)
        date = self._transaction_date(elem.get("Date"), "payment", errors)
        if elem.get("Status") is not None and str(elem["Status"]).upper() != "AUTHORISED":
            errors.append("A payment can only be created with Status AUTHORISED.")
        rate = None
        if doc is not None:
            spec = spec_of(doc)
            claimed = claims.claimed(doc[spec.id_key]) if claims is not None else 0
            if doc["Status"] != "AUTHORISED":
                errors.append(NOT_AUTHORISED)
            elif amount is not None and amount > outstanding(doc) - claimed:
                errors.append(EXCEEDS_OUTSTANDING)
            rate = doc["CurrencyRate"]
            if doc["CurrencyCode"] != "AUD" and elem.get("CurrencyRate") is not None:
                rate = positive_rate(elem["CurrencyRate"])
                if rate is None:
                    errors.append("The CurrencyRate must be greater than zero.")
        if errors or doc is None:
            return None, errors
        record: Record = {
            "PaymentID": None,
            "Date": date,
            "Amount": amount,
            "CurrencyRate": rate,
            "Reference": as_text(elem.get("Reference")),
            "Status": "AUTHORISED",
            "PaymentType": PAYMENT_TYPES[doc["Type"]],
            "IsReconciled": elem.get("IsReconciled") is True,
            "AccountCode": account_code,
            "DocumentKind": spec.store_key,
            "DocumentID": doc[spec.id_key],
        }
        return PaymentPlan(doc, record), []

    @staticmethod
    def _claim_payment(plan: PaymentPlan, claims: Claims) -> None:
        claims.claim_amount(plan.record["DocumentID"], plan.record["Amount"])

    def _commit_payment(self, plan: PaymentPlan) -> Record:
        record = plan.record
        record["PaymentID"] = str(uuid.uuid4())
        doc = self._documents[record["DocumentKind"]].records[record["DocumentID"]]
        self._settle(doc, "AmountPaid", record["Amount"], record["Date"])
        self._payment_ids_by_document.setdefault(record["DocumentID"], []).append(record["PaymentID"])
        self._touch(self._payments, record, "PaymentID")
        return record

    def _write_payments(self, request: Request) -> Response:
        items = self._json_body(request, "Payments", "Payment")
        return self._write_batch(
            request,
            "Payments",
            items,
            self._prepare_payment,
            self._claim_payment,
            self._commit_payment,
            lambda record: self._render_payment(record, as_float),
            functools.partial(echo_failed, "PaymentID"),
        )

    def _payment_field(self, payment: Record, path: tuple[str, ...]) -> Any:
        head = path[0].lower()
        if head in ("invoice", "creditnote"):
            kind, schema = ("invoice", INVOICE_SCHEMA) if head == "invoice" else ("credit_note", CREDIT_NOTE_SCHEMA)
            if payment["DocumentKind"] != kind or len(path) < 2:
                return None
            doc = self._documents[kind].records[payment["DocumentID"]]
            return self._document_field(schema, doc, path[1:])
        if head == "account":
            if len(path) != 2:
                return None
            code = payment["AccountCode"]
            return code if path[1].lower() == "code" else stable_id("account", code)
        if len(path) != 1:
            return None
        return next((payment.get(key) for key in PAYMENT_SCHEMA if key.lower() == head), None)

    def _list_payments(self, request: Request) -> Response:
        node = self._where(request, PAYMENT_SCHEMA, "Payment")
        hints = equality_hints(node) if node is not None else {}
        candidates = Candidates()
        if "paymentid" in hints:
            candidates.narrow(i for i in [hints["paymentid"].lower()] if i in self._payments)
        for key in ("invoice.invoiceid", "creditnote.creditnoteid"):
            if key in hints:
                candidates.narrow(self._payment_ids_by_document.get(hints[key].lower(), []))
        out = self._select(request, self._payments, candidates, node, self._payment_field)
        out = self._order(request, out, PAYMENT_SCHEMA, "Payment", self._payment_field)
        page, pagination = self._paginate(out, self._paging(request))
        return self._envelope("Payments", [self._render_payment(p, as_float) for p in page], pagination)

    def _get_payment(self, request: Request) -> Response:
        ref = request.segments[1]
        payment = self._payments.get(ref.lower()) if is_guid(ref) else None
        if payment is None:
            return not_found()
        return self._envelope("Payments", [self._render_payment(payment, as_float)])

    def _delete_payment(self, request: Request) -> Response:
        """``POST /Payments/{id}``: the only change Xero allows to a payment is ``{"Status":"DELETED"}``."""
        ref = request.segments[1]
        payment = self._payments.get(ref.lower()) if is_guid(ref) else None
        if payment is None:
            return not_found()
        elem = self._json_body(request, "Payments", "Payment")[0]
        status = str(elem.get("Status") or "").upper() if isinstance(elem, dict) else ""
        problem = None
        if status != "DELETED":
            problem = NOT_EDITABLE
        elif payment["Status"] == "DELETED":
            problem = ALREADY_DELETED
        elif payment["IsReconciled"]:
            problem = RECONCILED
        if problem is not None:
            echo = self._render_payment(payment, as_float) | {"HasValidationErrors": True}
            echo |= {"StatusAttributeString": "ERROR", "ValidationErrors": [{"Message": problem}]}
            return validation_error("A validation exception occurred", [echo])
        doc = self._documents[payment["DocumentKind"]].records[payment["DocumentID"]]
        self._unsettle(doc, "AmountPaid", payment["Amount"])
        payment["Status"] = "DELETED"
        self._touch(self._payments, payment, "PaymentID")
        return self._envelope("Payments", [self._render_payment(payment, as_float)])

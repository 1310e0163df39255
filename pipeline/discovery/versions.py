"""What one read of a sale holds, document by document: the ledger row each document of it should have.

Every document carries a hash of everything its mapping reads, so an unchanged one needs nothing after a
re-read: its invoice (or credit note) with the sale header and the customer's terms; a payment or refund
with the rate it converts at; an allocation with the figures it is derived from (its invoice's payments
and every credit note of that invoice).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mappings import Cin7Sale, content_hash, credit_allocations

_HEADER_KEYS = (
    "CustomerID",
    "Customer",
    "CustomerReference",
    "TaxCalculation",
    "TaxRule",
    "Terms",
    "SalesRepresentative",
    "CustomerCurrency",
    "BaseCurrency",
    "CurrencyRate",
)
_CURRENCY_KEYS = ("CustomerCurrency", "BaseCurrency", "CurrencyRate")

#: (kind, task id) -> the row's columns that a read sets.
Versions = dict[tuple[str, str], dict[str, Any]]


def _lower(value: object) -> str:
    return str(value or "").strip().lower()


def _by_task(items: list[dict[str, Any]] | None, key: str = "TaskID") -> dict[str, dict[str, Any]]:
    return {_lower(item.get(key)): item for item in items or [] if isinstance(item, dict)}


def document_versions(detail: dict[str, Any], sale: Cin7Sale, customer: dict[str, Any] | None) -> Versions:
    """Every document of the sale, by (kind, task id), with the columns a fetch records for it.

    A task id listed twice is recorded as its last version, as one row.
    """
    header = {key: detail.get(key) for key in _HEADER_KEYS}
    currency = {key: detail.get(key) for key in _CURRENCY_KEYS}
    terms = {
        "customer_terms": (customer or {}).get("PaymentTerm"),
        "customer_revenue_account": (customer or {}).get("RevenueAccount"),
    }
    order_number = (detail.get("Order") or {}).get("SaleOrderNumber")
    raw_invoices = _by_task(detail.get("Invoices"))
    raw_notes = _by_task(detail.get("CreditNotes"))
    modified = sale.last_modified_on
    versions: Versions = {}

    def add(
        kind: str,
        task_id: str | None,
        number: str | None,
        status: object,
        source: dict[str, Any],
        *moments: datetime | None,
    ) -> None:
        if not task_id:
            return
        days = [moment.date() for moment in moments if moment is not None]
        versions[(kind, task_id)] = {
            "document_number": number,
            "document_date": max(days) if days else None,
            "customer_id": sale.customer_id,
            "cin7_status": str(status) if status is not None else None,
            "cin7_modified_at": modified,
            "source_hash": content_hash(source),
        }

    for invoice in sale.invoices:
        raw = raw_invoices.get(invoice.task_id or "", {})
        # The invoice's own payments are not part of what its mapping reads.
        raw = {key: value for key, value in raw.items() if key != "Payments"}
        source = {"header": header, "order_number": order_number, "invoice": raw, **terms}
        add("invoice", invoice.task_id, invoice.invoice_number, invoice.status, source, invoice.invoice_date)
        for payment in invoice.payments:
            raw_payment = _by_task(raw_invoices.get(invoice.task_id or "", {}).get("Payments"), "ID").get(
                payment.id or "", {}
            )
            source = {"currency": currency, "invoice": invoice.task_id, "payment": raw_payment}
            add("payment", payment.id, invoice.invoice_number, "AUTHORISED", source, payment.date_paid)
    allocations = credit_allocations(sale)
    for note in sale.credit_notes:
        raw = raw_notes.get(note.task_id or "", {})
        lines_only = {key: value for key, value in raw.items() if key not in ("Refunds", "Restock")}
        source = {"header": header, "credit_note": lines_only, **terms}
        add("credit_note", note.task_id, note.credit_note_number, note.status, source, note.credit_note_date)
        for refund in note.refunds:
            raw_refund = _by_task(raw.get("Refunds"), "ID").get(refund.id or "", {})
            source = {"currency": currency, "credit_note": note.task_id, "refund": raw_refund}
            add("refund", refund.id, note.credit_note_number, "AUTHORISED", source, refund.date_paid)
        allocation = allocations.get(note.task_id or "")
        source = {
            "credit_note": note.task_id,
            "status": str(note.status),
            "date": str(note.credit_note_date),
            "invoice": allocation.invoice.task_id if allocation is not None else None,
            "invoice_date": str(allocation.invoice.invoice_date) if allocation is not None else None,
            "amount": str(allocation.amount) if allocation is not None else None,
        }
        # Dated as the allocation is: when both the credit note and its invoice exist.
        invoice_date = allocation.invoice.invoice_date if allocation is not None else None
        add(
            "allocation",
            note.task_id,
            note.credit_note_number,
            note.status,
            source,
            note.credit_note_date,
            invoice_date,
        )
    return versions

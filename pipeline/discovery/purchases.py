"""Fetch a changed purchase: its detail from Cin7 (`advanced-purchase?ID=`), one ledger row per bill.

A purchase is a parent document like a sale (`ParentKind.PURCHASE` in the same table), read and
recorded the same way (`fetch.record_fetched`). Each invoice of it (the supplier's bill) is a `bill`
row keyed by the purchase and the invoice's TaskID; a simple purchase's single invoice has no TaskID
and is keyed by the purchase itself. Xero does not keep bill numbers unique, so this key, never the
supplier's invoice number, is what stops a bill being written twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mappings import Cin7Purchase, content_hash, credit_allocations
from pipeline.context import TenantContext
from pipeline.discovery.fetch import Fetched, FetchedInvoice, record_fetched
from pipeline.discovery.poll import store_customers
from pipeline.discovery.rows import named_unstorable, validation_reasons
from pipeline.discovery.versions import Versions
from pipeline.errors import ErrorClass, SyncError
from pipeline.kinds.bill import bill_task_id, supplier_payments
from pipeline.kinds.supplier_credit import credit_task_id, supplier_credit_notes
from pipeline.ledger.models import CustomerRecord, ParentKind, PartyKind

#: Every kind a purchase's detail holds.
PURCHASE_KINDS = ("bill", "bill_payment", "supplier_credit_note", "supplier_refund", "supplier_allocation")

# What a bill's mapping reads of the purchase header, besides the invoice itself.
_HEADER_KEYS = (
    "SupplierID",
    "Supplier",
    "TaxRule",
    "TaxCalculation",
    "Terms",
    "SupplierCurrency",
    "BaseCurrency",
    "CurrencyRate",
    "OrderNumber",
)
# What it reads of the supplier: the fallback terms and tax rule.
_SUPPLIER_KEYS = ("PaymentTerm", "TaxRule")
# What a payment's mapping reads of the purchase: the currency it converts at.
_CURRENCY_KEYS = ("SupplierCurrency", "BaseCurrency", "CurrencyRate")


def _raw_by_key(detail: dict[str, Any], field: str, purchase: Cin7Purchase) -> dict[str, dict[str, Any]]:
    """A purchase's raw `Invoice` or `CreditNote` (an object in a simple purchase, a list in an
    advanced one) by ledger key, as `bill_task_id` and `credit_task_id` key them.
    """
    raw = detail.get(field)
    items = [raw] if isinstance(raw, dict) else [item for item in raw or [] if isinstance(item, dict)]
    return {str(item.get("TaskID") or purchase.id).strip().lower(): item for item in items if item}


def purchase_versions(detail: dict[str, Any], purchase: Cin7Purchase, supplier: dict[str, Any] | None) -> Versions:
    """Every bill of the purchase, by (kind, task id), with the columns a fetch records for it."""
    header = {key: detail.get(key) for key in _HEADER_KEYS}
    terms = {key: (supplier or {}).get(key) for key in _SUPPLIER_KEYS}
    currency = {key: detail.get(key) for key in _CURRENCY_KEYS}
    raw_by_key: dict[str, dict[str, Any]] = {}
    raw_payments: dict[str, dict[str, Any]] = {}
    for key, raw in _raw_by_key(detail, "Invoice", purchase).items():
        # Its payments are not part of what the bill's mapping reads.
        raw_by_key[key] = {k: v for k, v in raw.items() if k != "Payments"}
        for payment in raw.get("Payments") or []:
            if isinstance(payment, dict) and payment.get("ID"):
                raw_payments[str(payment["ID"]).strip().lower()] = payment
    versions: Versions = {}
    for invoice in purchase.invoices:
        task_id = bill_task_id(purchase, invoice)
        source = {"header": header, "supplier": terms, "invoice": raw_by_key.get(task_id, {})}
        versions[("bill", task_id)] = _version(
            purchase, invoice.invoice_number, invoice.status, source, invoice.invoice_date
        )
        for payment in supplier_payments(invoice):
            payment_id = (payment.id or "").lower()
            read: dict[str, Any] = {"currency": currency, "bill": task_id, "payment": raw_payments.get(payment_id, {})}
            versions[("bill_payment", payment_id)] = _version(
                purchase, invoice.invoice_number, "AUTHORISED", read, payment.date_paid
            )
    _credit_versions(detail, purchase, header, currency, versions)
    return versions


def _credit_versions(
    detail: dict[str, Any], purchase: Cin7Purchase, header: dict[str, Any], currency: dict[str, Any], versions: Versions
) -> None:
    """The purchase's credit notes, their refunds and their allocations to bills, as `purchase_versions`."""
    raw_notes = _raw_by_key(detail, "CreditNote", purchase)
    allocations = credit_allocations(purchase)
    for note in supplier_credit_notes(purchase):
        key = credit_task_id(purchase, note)
        raw = raw_notes.get(key, {})
        lines_only = {k: v for k, v in raw.items() if k not in ("Refunds", "Unstock")}
        number = note.credit_note_number
        source: dict[str, Any] = {"header": header, "credit_note": lines_only}
        versions[("supplier_credit_note", key)] = _version(purchase, number, note.status, source, note.credit_note_date)
        raw_refunds = {str(r.get("ID") or "").lower(): r for r in raw.get("Refunds") or [] if isinstance(r, dict)}
        for refund in note.refunds:
            refund_id = (refund.id or "").lower()
            if not refund_id:
                continue
            refund_read: dict[str, Any] = {
                "currency": currency,
                "credit_note": key,
                "refund": raw_refunds.get(refund_id, {}),
            }
            versions[("supplier_refund", refund_id)] = _version(
                purchase, number, "AUTHORISED", refund_read, refund.date_paid
            )
        allocation = allocations.get(note.task_id or "")
        read: dict[str, Any] = {
            "credit_note": key,
            "status": str(note.status),
            "date": str(note.credit_note_date),
            "bill": allocation.invoice.task_id if allocation is not None else None,
            "bill_date": str(allocation.invoice.invoice_date) if allocation is not None else None,
            "amount": str(allocation.amount) if allocation is not None else None,
        }
        # Dated as the allocation is: when both the credit note and its bill exist.
        dated = max(
            (d for d in (note.credit_note_date, allocation.invoice.invoice_date if allocation else None) if d),
            default=None,
        )
        versions[("supplier_allocation", key)] = _version(purchase, number, note.status, read, dated)


def _version(
    purchase: Cin7Purchase, number: str | None, status: object, source: dict[str, Any], dated: datetime | None
) -> dict[str, Any]:
    return {
        "document_number": number,
        "document_date": dated.date() if dated is not None else None,
        "customer_id": purchase.supplier_id,
        "cin7_status": str(status) if status is not None else None,
        "cin7_modified_at": purchase.last_updated_date,
        "source_hash": content_hash(source),
    }


def unstorable_fields(purchase: Cin7Purchase) -> list[str]:
    """The purchase's fields that the ledger's columns cannot hold (too long, or a NUL character), by name:
    refused with them, rather than by the database as a DataError for the whole transaction.
    """
    fields: list[tuple[str, str | None, int]] = [
        ("SupplierID", purchase.supplier_id, 64),
        ("OrderNumber", purchase.order_number, 64),
    ]
    for index, invoice in enumerate(purchase.invoices):
        fields += [
            (f"Invoice[{index}].TaskID", invoice.task_id, 64),
            (f"Invoice[{index}].InvoiceNumber", invoice.invoice_number, 255),
            (f"Invoice[{index}].Status", str(invoice.status) if invoice.status is not None else None, 24),
        ]
        fields += [(f"Invoice[{index}].Payments[{i}].ID", p.id, 64) for i, p in enumerate(invoice.payments)]
    for index, note in enumerate(purchase.credit_notes):
        fields += [
            (f"CreditNote[{index}].TaskID", note.task_id, 64),
            (f"CreditNote[{index}].CreditNoteNumber", note.credit_note_number, 255),
            (f"CreditNote[{index}].Status", str(note.status) if note.status is not None else None, 24),
        ]
        fields += [(f"CreditNote[{index}].Refunds[{i}].ID", r.id, 64) for i, r in enumerate(note.refunds)]
    return named_unstorable(fields)


def supplier_snapshot(ctx: TenantContext, supplier_id: str | None) -> dict[str, Any] | None:
    """The supplier's snapshot from the bulk supplier poll, else read from Cin7 once and kept."""
    if not supplier_id:
        return None
    with ctx.sessions() as session:
        snapshot = session.scalar(
            select(CustomerRecord.snapshot).where(
                CustomerRecord.tenant_id == ctx.tenant_pk, CustomerRecord.customer_id == supplier_id.lower()
            )
        )
    if snapshot is not None:
        return dict(snapshot)
    row = ctx.cin7.get_supplier(supplier_id)
    if row is not None:
        with ctx.sessions() as session, session.begin():
            store_customers(session, ctx.tenant_pk, [row], kind=PartyKind.SUPPLIER)
    return row


def fetch_purchase(ctx: TenantContext, purchase_id: str) -> list[FetchedInvoice]:
    """Read one purchase's detail and record its bills; return every bill of it and its state."""
    purchase_id = purchase_id.lower()
    detail = ctx.cin7.get_purchase(purchase_id)
    try:
        purchase = Cin7Purchase.model_validate(detail)
    except ValidationError as exc:
        reasons = "; ".join(validation_reasons(exc))
        raise SyncError(
            ErrorClass.MAPPING, f"Cin7 purchase {purchase_id} does not parse: {reasons}", api="cin7"
        ) from exc
    refused = unstorable_fields(purchase)
    if refused:
        raise SyncError(
            ErrorClass.MAPPING, f"Cin7 {purchase.label} cannot be recorded: {'; '.join(refused)}", api="cin7"
        )
    supplier = supplier_snapshot(ctx, purchase.supplier_id)
    with ctx.sessions() as session, session.begin():
        return record_fetched_purchase(session, ctx.tenant_pk, detail, purchase, supplier)


def record_fetched_purchase(
    session: Session, tenant_pk: int, detail: dict[str, Any], purchase: Cin7Purchase, supplier: dict[str, Any] | None
) -> list[FetchedInvoice]:
    """Store the purchase's detail snapshot and one row per document; return each and its state."""
    return record_fetched(
        session,
        tenant_pk,
        Fetched(
            parent_id=purchase.id.lower(),
            kind=ParentKind.PURCHASE,
            detail=detail,
            modified_at=purchase.last_updated_date,
            order_number=purchase.order_number,
            versions=purchase_versions(detail, purchase, supplier),
            document_kinds=PURCHASE_KINDS,
        ),
    )

"""Fetch a changed purchase: its detail from Cin7 (`advanced-purchase?ID=`), one ledger row per bill.

A purchase is a parent document like a sale (`ParentKind.PURCHASE` in the same table), read and
recorded the same way (`fetch.record_fetched`). Each invoice of it (the supplier's bill) is a `bill`
row keyed by the purchase and the invoice's TaskID; a simple purchase's single invoice has no TaskID
and is keyed by the purchase itself. Xero does not keep bill numbers unique, so this key, never the
supplier's invoice number, is what stops a bill being written twice.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from mappings import Cin7Purchase, content_hash
from pipeline.context import TenantContext
from pipeline.discovery.fetch import Fetched, FetchedInvoice, record_fetched
from pipeline.discovery.poll import store_customers
from pipeline.discovery.rows import unstorable, validation_reasons
from pipeline.discovery.versions import Versions
from pipeline.errors import ErrorClass, SyncError
from pipeline.kinds.bill import bill_task_id
from pipeline.ledger.models import CustomerRecord, ParentKind, PartyKind

#: Every kind a purchase's detail holds (supplier payments and credit notes are next).
PURCHASE_KINDS = ("bill",)

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


def _raw_invoices(detail: dict[str, Any]) -> list[dict[str, Any]]:
    raw = detail.get("Invoice")
    if isinstance(raw, dict):
        return [raw] if raw else []
    return [item for item in raw or [] if isinstance(item, dict)]


def purchase_versions(detail: dict[str, Any], purchase: Cin7Purchase, supplier: dict[str, Any] | None) -> Versions:
    """Every bill of the purchase, by (kind, task id), with the columns a fetch records for it."""
    header = {key: detail.get(key) for key in _HEADER_KEYS}
    terms = {key: (supplier or {}).get(key) for key in _SUPPLIER_KEYS}
    raw_by_key: dict[str, dict[str, Any]] = {}
    for raw in _raw_invoices(detail):
        key = str(raw.get("TaskID") or purchase.id).strip().lower()
        # Its payments are not part of what the bill's mapping reads.
        raw_by_key[key] = {k: v for k, v in raw.items() if k != "Payments"}
    versions: Versions = {}
    for invoice in purchase.invoices:
        task_id = bill_task_id(purchase, invoice)
        source = {"header": header, "supplier": terms, "invoice": raw_by_key.get(task_id, {})}
        versions[("bill", task_id)] = {
            "document_number": invoice.invoice_number,
            "document_date": invoice.invoice_date.date() if invoice.invoice_date is not None else None,
            "customer_id": purchase.supplier_id,
            "cin7_status": str(invoice.status) if invoice.status is not None else None,
            "cin7_modified_at": purchase.last_updated_date,
            "source_hash": content_hash(source),
        }
    return versions


def _unstorable_text(purchase: Cin7Purchase) -> list[str]:
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
    reasons = ((name, unstorable(value, limit)) for name, value, limit in fields if value is not None)
    return [f"{name}: {reason}" for name, reason in reasons if reason is not None]


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
    refused = _unstorable_text(purchase)
    if refused:
        raise SyncError(
            ErrorClass.MAPPING, f"Cin7 {purchase.label} cannot be recorded: {'; '.join(refused)}", api="cin7"
        )
    supplier = supplier_snapshot(ctx, purchase.supplier_id)
    with ctx.sessions() as session, session.begin():
        return record_fetched(
            session,
            ctx.tenant_pk,
            Fetched(
                parent_id=purchase_id,
                kind=ParentKind.PURCHASE,
                detail=detail,
                modified_at=purchase.last_updated_date,
                order_number=purchase.order_number,
                versions=purchase_versions(detail, purchase, supplier),
                document_kinds=PURCHASE_KINDS,
            ),
        )

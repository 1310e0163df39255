"""The supplier bill: each invoice of a Cin7 purchase becomes one Xero ACCPAY bill.

Xero does not keep bill numbers unique (two suppliers may well both send "1001"), so a bill is known
by its ledger key, the purchase and the invoice's TaskID, and a lost answer is looked up by number and
then checked against its supplier's contact (`adoptable`), never adopted on the number alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mappings import (
    Cin7Invoice,
    Cin7InvoiceStatus,
    Cin7Payment,
    Cin7Purchase,
    Cin7PurchaseInvoice,
    map_bill,
)
from pipeline.kinds.applied import PaymentKind
from pipeline.kinds.base import Dependency, Parent, PlanInput, as_purchase
from pipeline.kinds.invoice import InvoiceWrites
from pipeline.kinds.numbered import NumberedKind
from pipeline.xero.client import XeroClient


def bill_task_id(purchase: Cin7Purchase, invoice: Cin7Invoice) -> str:
    """The ledger key of a purchase's invoice: its TaskID, or the purchase's ID for a simple purchase
    (whose one invoice has none).
    """
    return (invoice.task_id or purchase.id).lower()


def bill_of(purchase: Cin7Purchase, task_id: str) -> Cin7PurchaseInvoice | None:
    """The purchase's invoice with this ledger key, or None when Cin7 no longer lists it."""
    return next((i for i in purchase.invoices if bill_task_id(purchase, i) == task_id.lower()), None)


class BillKind(InvoiceWrites, NumberedKind[Cin7PurchaseInvoice]):
    """Purchase invoices (`Invoice` of a Cin7 purchase) as Xero ACCPAY bills."""

    name = "bill"
    collection = "Invoices"
    id_field = "InvoiceID"
    number_field = "InvoiceNumber"
    xero_type = "ACCPAY"
    parent_kind = "purchase"
    unique_numbers = False
    sent_statuses = frozenset({Cin7InvoiceStatus.AUTHORISED, Cin7InvoiceStatus.PAID})

    def dependencies(self, parent: Parent, task_id: str, *, cin7_status: str | None) -> list[Dependency]:
        """Nothing, to be created; to be voided, its payments taken off Xero first (Xero refuses to
        void a paid bill).
        """
        bill = bill_of(as_purchase(parent), task_id)
        if bill is not None and Cin7InvoiceStatus.parse(bill.status) is not Cin7InvoiceStatus.VOIDED:
            return []
        return [Dependency("bill_payment", "*", need="undone")]

    def document(self, given: PlanInput) -> Cin7PurchaseInvoice | None:
        """The purchase's invoice by its ledger key."""
        return bill_of(given.purchase, given.task_id)

    def map(self, given: PlanInput, document: Cin7PurchaseInvoice) -> dict[str, Any]:
        """`mappings.map_bill`."""
        return map_bill(
            given.purchase, document, supplier=given.supplier, rules=given.rules, reference=given.reference
        ).to_json()

    def get(self, xero: XeroClient, *, numbers: Sequence[str] = (), ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """`GET /Invoices?InvoiceNumbers=` or `?IDs=` (bills and sale invoices alike; `ours` tells them apart)."""
        return xero.get_invoices(numbers=numbers, ids=ids)


BILL = BillKind()


def supplier_payments(invoice: Cin7PurchaseInvoice) -> list[Cin7Payment]:
    """The payments of a purchase invoice that pay the bill (a REFUND line is money coming back)."""
    return [p for p in invoice.payments if str(p.type or "PAYMENT").upper() != "REFUND" and p.id]


class BillPaymentKind(PaymentKind):
    """Cin7 supplier payments (`Invoice.Payments[]` of a purchase) as Xero payments on the bill."""

    name = "bill_payment"
    parent_kind = "purchase"
    target_kind = "bill"

    def _find(self, parent: Parent, task_id: str) -> tuple[str, Any, str] | None:
        purchase = as_purchase(parent)
        for invoice in purchase.invoices:
            for payment in supplier_payments(invoice):
                if (payment.id or "").lower() == task_id.lower():
                    number = invoice.invoice_number or "(no number)"
                    return bill_task_id(purchase, invoice), payment, f"supplier payment {task_id} of bill {number}"
        return None


BILL_PAYMENT = BillPaymentKind()

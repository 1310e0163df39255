"""Cin7's amount rules and the edits made to generated sales, and the ``saleList`` row of a sale.

:func:`recompute_invoice_totals` is the one implementation of line, tax and invoice totals, used for
generation and for edits alike; edits keep the order the union of its invoices and re-derive statuses.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pipeline.standins.generator.tables import TAX_RULES
from pipeline.standins.generator.values import HUNDRED, ONE, ZERO, format_timestamp, round_cents, to_decimal


def recompute_invoice_totals(
    invoice: dict[str, Any], tax_calculation: str, tax_rates: Mapping[str, Decimal], *, places: int = 2
) -> None:
    """Recompute in place every line's ``Total``/``Tax`` and the ``TotalBeforeTax``/``Tax``/``Total``.

    Works for an invoice and for a sale's ``Order`` alike (both have ``Lines`` and ``AdditionalCharges``).
    ``places`` is 2 for most, 4 for an invoice kept as Cin7 keeps amounts (to 4 dp), whose 2-dp lines in
    Xero then need a rounding line. Raises ``KeyError`` for a tax rule missing from ``tax_rates`` and
    ``ValueError`` for an unknown ``tax_calculation``.
    """
    step = Decimal(1).scaleb(-places)

    def rounded(value: Decimal) -> Decimal:
        return round_cents(value) if places == 2 else value.quantize(step, rounding=ROUND_HALF_UP)

    inclusive = tax_calculation.strip().lower() == "inclusive"
    if not inclusive and tax_calculation.strip().lower() != "exclusive":
        raise ValueError(f"unknown TaxCalculation {tax_calculation!r}")
    sum_total = ZERO
    sum_tax = ZERO
    for line in [*(invoice.get("Lines") or []), *(invoice.get("AdditionalCharges") or [])]:
        quantity = to_decimal(line["Quantity"])
        price = to_decimal(line["Price"])
        discount = to_decimal(line.get("Discount") or 0)
        total = rounded(quantity * price * (ONE - discount / HUNDRED))
        rate = tax_rates[line["TaxRule"]]
        tax = rounded(total * rate / (ONE + rate)) if inclusive else rounded(total * rate)
        line["Quantity"] = quantity
        line["Price"] = price
        line["Discount"] = discount
        line["Total"] = total
        line["Tax"] = tax
        sum_total += total
        sum_tax += tax
    if inclusive:
        invoice["Total"] = sum_total
        invoice["Tax"] = sum_tax
        invoice["TotalBeforeTax"] = sum_total - sum_tax
    else:
        invoice["TotalBeforeTax"] = sum_total
        invoice["Tax"] = sum_tax
        invoice["Total"] = sum_total + sum_tax


def rebuild_order(sale: dict[str, Any]) -> None:
    """Make the sale's order the union of its invoices again, with its totals recomputed."""
    # The generator builds the order as the union of its invoices, so an edit keeps it that way.
    order = sale["Order"]
    order["Lines"] = [copy.deepcopy(line) for inv in sale["Invoices"] for line in inv["Lines"]]
    order["AdditionalCharges"] = [
        copy.deepcopy(c) for inv in sale["Invoices"] for c in inv.get("AdditionalCharges") or []
    ]
    recompute_invoice_totals(order, sale["TaxCalculation"], TAX_RULES)


def derive_statuses(sale: dict[str, Any]) -> None:
    """Set the sale-level status fields from its invoices' statuses."""
    statuses = [str(inv["Status"]).upper() for inv in sale["Invoices"]]
    live = [s for s in statuses if s in ("AUTHORISED", "PAID")]
    if statuses and all(s == "VOIDED" for s in statuses):
        sale["Status"] = "VOIDED"
        sale["Order"]["Status"] = "VOIDED"
        sale["CombinedInvoiceStatus"] = "VOIDED"
        sale["CombinedPaymentStatus"] = "VOIDED"
        return
    sale["Order"]["Status"] = "AUTHORISED"
    if not live:
        sale["Status"] = "INVOICING"
        sale["CombinedInvoiceStatus"] = "NOT INVOICED"
        sale["CombinedPaymentStatus"] = "UNPAID"
        return
    if len(live) < len([s for s in statuses if s != "VOIDED"]):
        sale["CombinedInvoiceStatus"] = "PARTIALLY INVOICED"
    else:
        sale["CombinedInvoiceStatus"] = "INVOICED"
    paid = [s for s in live if s == "PAID"]
    if len(paid) == len(live) and sale["CombinedInvoiceStatus"] == "INVOICED":
        sale["Status"] = "COMPLETED"
        sale["CombinedPaymentStatus"] = "PAID"
    else:
        sale["Status"] = "INVOICED"
        sale["CombinedPaymentStatus"] = "PARTIALLY PAID" if paid else "UNPAID"


def _find_invoice(sale: dict[str, Any], task_id: str) -> dict[str, Any]:
    wanted = task_id.lower()
    for invoice in sale["Invoices"]:
        if str(invoice["TaskID"]).lower() == wanted:
            return invoice  # type: ignore[no-any-return]
    raise KeyError(f"sale {sale.get('ID')} has no invoice with TaskID {task_id}")


def edit_invoice(sale: dict[str, Any], task_id: str, *, now: datetime, quantity_delta: int = 1) -> dict[str, Any]:
    """Return a copy of ``sale`` whose invoice ``task_id`` had its first line's Quantity changed.

    Line, invoice and order totals are recomputed per the conventions and ``LastModifiedOn`` becomes
    ``now``. Payments are left as they are (edit AUTHORISED invoices to stay realistic).
    """
    edited = copy.deepcopy(sale)
    invoice = _find_invoice(edited, task_id)
    first = invoice["Lines"][0]
    quantity = to_decimal(first["Quantity"]) + quantity_delta
    if quantity <= 0:
        raise ValueError(f"quantity would become {quantity}")
    first["Quantity"] = quantity
    recompute_invoice_totals(invoice, edited["TaxCalculation"], TAX_RULES)
    rebuild_order(edited)
    edited["LastModifiedOn"] = format_timestamp(now)
    return edited


def void_invoice(sale: dict[str, Any], task_id: str, *, now: datetime) -> dict[str, Any]:
    """Return a copy of ``sale`` with invoice ``task_id`` VOIDED, statuses derived, LastModifiedOn ``now``."""
    voided = copy.deepcopy(sale)
    invoice = _find_invoice(voided, task_id)
    invoice["Status"] = "VOIDED"
    derive_statuses(voided)
    voided["LastModifiedOn"] = format_timestamp(now)
    return voided


def sale_list_row(sale: dict[str, Any]) -> dict[str, Any]:
    """The ``GET saleList`` row for a sale detail; ``Updated`` is the sale's ``LastModifiedOn``."""
    invoices = sale.get("Invoices") or []
    first = invoices[0] if invoices else None
    live = [inv for inv in invoices if str(inv.get("Status", "")).upper() != "VOIDED"]
    invoice_amount = sum((to_decimal(inv.get("Total") or 0) for inv in live), ZERO)
    paid_amount = sum((to_decimal(inv.get("Paid") or 0) for inv in live), ZERO)
    order = sale.get("Order") or {}
    return {
        "SaleID": sale["ID"],
        "OrderNumber": order.get("SaleOrderNumber"),
        "Status": sale.get("Status"),
        "OrderDate": sale.get("SaleOrderDate"),
        "InvoiceDate": first.get("InvoiceDate") if first else None,
        "InvoiceDueDate": first.get("InvoiceDueDate") if first else None,
        "InvoiceNumber": first.get("InvoiceNumber") if first else None,
        "Customer": sale.get("Customer"),
        "CustomerID": sale.get("CustomerID"),
        "CustomerReference": sale.get("CustomerReference"),
        "InvoiceAmount": invoice_amount,
        "PaidAmount": paid_amount,
        "CustomerCurrency": sale.get("CustomerCurrency"),
        "Updated": sale.get("LastModifiedOn"),
        "OrderStatus": order.get("Status"),
        "CombinedInvoiceStatus": sale.get("CombinedInvoiceStatus"),
        "CombinedPaymentStatus": sale.get("CombinedPaymentStatus"),
        "CombinedPickingStatus": "NOT PICKED",
        "CombinedPackingStatus": "NOT PACKED",
        "CombinedShippingStatus": "NOT SHIPPED",
        "Type": sale.get("Type"),
        "ExternalID": "",
        "SourceChannel": None,
    }

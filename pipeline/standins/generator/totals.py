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

from pipeline.standins.generator.settlement import (
    LIVE_INVOICE_STATUSES,
    credit_notes_for,
    refresh_settlement,
    unused_credit,
)
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


def unpaid_invoice_body(lines: list[dict[str, Any]], charges: list[dict[str, Any]]) -> dict[str, Any]:
    """The money part of a new invoice or bill: ``lines`` and ``charges``, no payments, zero totals.

    Sale invoices and purchase bills share it because they share the totals rules. The zero totals keep
    their place (and so the keys' order in the JSON) until ``recompute_invoice_totals`` fills them in.
    """
    return {
        "Lines": lines,
        "AdditionalCharges": charges,
        "Payments": [],
        "TotalBeforeTax": ZERO,
        "Tax": ZERO,
        "Total": ZERO,
        "Paid": ZERO,
    }


def copy_line(line: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a document line, cheaply: its values are nearly always immutable scalars.

    ``copy.deepcopy`` of every line was most of the time taken to generate a large dataset.
    """
    return {k: copy.deepcopy(v) if isinstance(v, dict | list) else v for k, v in line.items()}


def rebuild_order(sale: dict[str, Any]) -> None:
    """Make the sale's order the union of its invoices again, with its totals recomputed."""
    # The generator builds the order as the union of its invoices, so an edit keeps it that way.
    order = sale["Order"]
    order["Lines"] = [copy_line(line) for inv in sale["Invoices"] for line in inv["Lines"]]
    order["AdditionalCharges"] = [copy_line(c) for inv in sale["Invoices"] for c in inv.get("AdditionalCharges") or []]
    recompute_invoice_totals(order, sale["TaxCalculation"], TAX_RULES)


def derive_statuses(sale: dict[str, Any]) -> None:
    """Set each live invoice's ``Paid``/``Status`` from its settlement, then the sale-level status fields."""
    refresh_settlement(sale)
    statuses = [str(inv["Status"]).upper() for inv in sale["Invoices"]]
    live = [inv for inv in sale["Invoices"] if str(inv["Status"]).upper() in LIVE_INVOICE_STATUSES]
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
    invoiced = "PARTIALLY INVOICED" if len(live) < len([s for s in statuses if s != "VOIDED"]) else "INVOICED"
    live_numbers = {inv["InvoiceNumber"] for inv in live}
    credits = [
        cn
        for cn in sale.get("CreditNotes") or []
        if str(cn.get("Status", "")).upper() == "AUTHORISED" and cn.get("CreditNoteInvoiceNumber") in live_numbers
    ]
    # Cin7 shows "INVOICED / CREDITED" on a sale whose invoices carry an authorised credit note.
    sale["CombinedInvoiceStatus"] = f"{invoiced} / CREDITED" if credits and invoiced == "INVOICED" else invoiced
    settled = [inv for inv in live if str(inv["Status"]).upper() == "PAID"]
    money = any(to_decimal(inv["Paid"]) > 0 for inv in live)  # Paid was just set by refresh_settlement
    if len(settled) == len(live) and invoiced == "INVOICED":
        # Settled by credit alone (nothing was ever paid) is a credited sale, not a completed one.
        sale["Status"] = "COMPLETED" if money or not credits else "CREDITED"
        sale["CombinedPaymentStatus"] = "PAID"
    else:
        sale["Status"] = "INVOICED"
        sale["CombinedPaymentStatus"] = "PARTIALLY PAID" if settled or money else "UNPAID"
    # Credit neither applied to its invoice nor paid back is money Cin7 still owes the customer.
    if any(unused_credit(sale, cn) > 0 for cn in credits):
        sale["CombinedPaymentStatus"] = "NOT REFUNDED"


def find_invoice(sale: dict[str, Any], task_id: str) -> dict[str, Any]:
    """The invoice of ``sale`` with ``TaskID`` ``task_id`` (any case); ``KeyError`` if there is none."""
    wanted = task_id.lower()
    for invoice in sale["Invoices"]:
        if str(invoice["TaskID"]).lower() == wanted:
            return invoice  # type: ignore[no-any-return]
    raise KeyError(f"sale {sale.get('ID')} has no invoice with TaskID {task_id}")


def _refuse_if_settled(sale: dict[str, Any], invoice: dict[str, Any], action: str) -> None:
    # Cin7 will not edit or void an invoice that money or credit has been applied to (it must be undone
    # first), so neither do these helpers: their result would be a sale no Cin7 account can hold.
    live_credit = [
        cn for cn in credit_notes_for(sale, invoice["InvoiceNumber"]) if str(cn.get("Status", "")).upper() != "VOIDED"
    ]
    if invoice.get("Payments") or live_credit:
        raise ValueError(
            f"cannot {action} invoice {invoice['InvoiceNumber']}: it has payments or credit notes "
            "(remove them first, or pick an invoice without any)"
        )


def edit_invoice(sale: dict[str, Any], task_id: str, *, now: datetime, quantity_delta: int = 1) -> dict[str, Any]:
    """Return a copy of ``sale`` whose invoice ``task_id`` had its first line's Quantity changed.

    Line, invoice and order totals are recomputed per the conventions and ``LastModifiedOn`` becomes
    ``now``. Only for an invoice without payments or (non-VOIDED) credit notes: ``ValueError`` otherwise.
    """
    edited = copy.deepcopy(sale)
    invoice = find_invoice(edited, task_id)
    _refuse_if_settled(edited, invoice, "edit")
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
    """Return a copy of ``sale`` with invoice ``task_id`` VOIDED, statuses derived, LastModifiedOn ``now``.

    Only for an invoice without payments or (non-VOIDED) credit notes: ``ValueError`` otherwise.
    """
    voided = copy.deepcopy(sale)
    invoice = find_invoice(voided, task_id)
    _refuse_if_settled(voided, invoice, "void")
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

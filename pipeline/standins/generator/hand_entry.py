"""Cin7 invoices as a bookkeeper would have typed them into Xero by hand, before any sync existed.

:func:`typed_invoice` gives the Xero JSON (``PUT /Invoices`` form) of a Cin7 invoice: AUTHORISED ACCREC, its
number, the customer's name as the contact, its lines with Cin7's amounts. Xero then shows exactly Cin7's
Total and Tax to the cent (and the subtotal between them): 4-dp invoices get one rounding line, as the
pipeline's own mapping adds. :func:`altered_invoice` is the same invoice typed with a mistake (an extra
line or a changed price), so its total differs.

Lines carry ``UnitAmount`` to 4 dp, so they are meant for a Xero that takes ``unitdp=4`` (the stand-in's
seeding does).
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from pipeline.standins.generator.settlement import amount, invoice_places
from pipeline.standins.generator.tables import TAX_RULES
from pipeline.standins.generator.totals import copy_line, recompute_invoice_totals
from pipeline.standins.generator.values import ONE, ZERO, round_cents, to_decimal

#: The Xero tax type a bookkeeper picks for each Cin7 tax rule that a synced invoice may use (the same as
#: the default mapping rules).
XERO_TAX_TYPES = {
    "GST on Income": "OUTPUT",
    "GST Free Income": "EXEMPTOUTPUT",
    "GST Free Exports": "EXEMPTEXPORT",
    "BAS Excluded": "BASEXCLUDED",
}
#: The same for the purchase tax rules of a bill.
XERO_PURCHASE_TAX_TYPES = {
    "GST on Expenses": "INPUT",
    "GST Free Expenses": "EXEMPTEXPENSES",
    "BAS Excluded": "BASEXCLUDED",
}
#: The stand-in's chart of accounts has its Rounding account (SystemAccount ROUNDING) under this code.
ROUNDING_ACCOUNT = "860"
_UNTAXED = "BASEXCLUDED"


def typed_invoice(sale: dict[str, Any], invoice: dict[str, Any]) -> dict[str, Any]:
    """The Xero JSON of ``invoice`` (of ``sale``) typed by hand, with ``SubTotal``/``TotalTax``/``Total`` as Xero
    will compute them from its lines (Cin7's ``Total`` and ``Tax`` to the cent).

    Its due date is Cin7's, or the invoice date when Cin7 has none (Xero wants one on an approved invoice).
    ``KeyError`` for a tax rule outside :data:`XERO_TAX_TYPES` (no synced invoice has one).
    """
    return _typed(
        "ACCREC", str(sale["Customer"]), sale["CustomerCurrency"], sale["TaxCalculation"], invoice, XERO_TAX_TYPES
    )


def typed_bill(purchase: dict[str, Any], bill: dict[str, Any]) -> dict[str, Any]:
    """``typed_invoice`` for a purchase's bill (``bill`` of ``purchase``): an AUTHORISED ACCPAY on the supplier's
    name, in the supplier's currency, with the purchase tax types (:data:`XERO_PURCHASE_TAX_TYPES`).
    """
    number = bill.get("InvoiceNumber") or bill.get("InvocieNumber")
    return _typed(
        "ACCPAY",
        str(purchase["Supplier"]),
        purchase["SupplierCurrency"],
        purchase["TaxCalculation"],
        {**bill, "InvoiceNumber": number},
        XERO_PURCHASE_TAX_TYPES,
    )


def altered_bill(rng: random.Random, purchase: dict[str, Any], bill: dict[str, Any]) -> dict[str, Any]:
    """``typed_bill`` of a copy of ``bill`` whose first line's price was typed 1.00-20.00 too high."""
    typed = dict(bill)
    typed["Lines"] = [copy_line(line) for line in bill["Lines"]]
    typed["AdditionalCharges"] = [copy_line(charge) for charge in bill.get("AdditionalCharges") or []]
    first = typed["Lines"][0]
    first["Price"] = to_decimal(first["Price"]) + Decimal(rng.randint(100, 2_000)).scaleb(-2)
    recompute_invoice_totals(typed, purchase["TaxCalculation"], TAX_RULES, places=invoice_places(bill))
    return typed_bill(purchase, typed)


def _typed(
    xero_type: str,
    contact: str,
    currency: str,
    tax_calculation: str,
    invoice: dict[str, Any],
    tax_types: dict[str, str],
) -> dict[str, Any]:
    inclusive = str(tax_calculation).strip().lower() == "inclusive"
    lines = [_product_line(line, tax_types) for line in invoice["Lines"]]
    lines += [_charge_line(charge, tax_types) for charge in invoice.get("AdditionalCharges") or []]
    sub_total, tax = _sums(lines, inclusive)
    target_tax = amount(invoice["Tax"])
    target_sub_total = amount(invoice["Total"]) - target_tax
    if (sub_total, tax) != (target_sub_total, target_tax):
        lines.append(_rounding_line(lines, target_sub_total - sub_total, target_tax - tax, inclusive))
        sub_total, tax = target_sub_total, target_tax
    day = str(invoice["InvoiceDate"])[:10]
    return {
        "Type": xero_type,
        "Status": "AUTHORISED",
        "InvoiceNumber": invoice["InvoiceNumber"],
        "Contact": {"Name": contact.strip()},
        "Date": day,
        "DueDate": str(invoice.get("InvoiceDueDate") or day)[:10],
        "CurrencyCode": currency,
        "LineAmountTypes": "Inclusive" if inclusive else "Exclusive",
        "LineItems": lines,
        "SubTotal": sub_total,
        "TotalTax": tax,
        "Total": sub_total + tax,
    }


def altered_invoice(rng: random.Random, sale: dict[str, Any], invoice: dict[str, Any]) -> dict[str, Any]:
    """``typed_invoice`` of a copy of ``invoice`` typed with a mistake, so that its Total is higher than Cin7's.

    Half the time a line Cin7 does not have (a handling fee), otherwise the first line's price raised by
    1.00-20.00 (at least 0.43 more on a line of 0.5 units at 12.5 % discount). ``invoice`` is left alone.
    """
    typed = dict(invoice)
    typed["Lines"] = [copy_line(line) for line in invoice["Lines"]]
    typed["AdditionalCharges"] = [copy_line(charge) for charge in invoice.get("AdditionalCharges") or []]
    first = typed["Lines"][0]
    if rng.random() < 0.5:
        extra = {k: first[k] for k in ("TaxRule", "Account")}
        extra |= {"SKU": "HANDLING", "Name": "Handling fee", "Quantity": ONE, "Discount": ZERO}
        typed["Lines"].append(extra | {"Price": Decimal(rng.randint(500, 5_000)).scaleb(-2)})
    else:
        first["Price"] = to_decimal(first["Price"]) + Decimal(rng.randint(100, 2_000)).scaleb(-2)
    recompute_invoice_totals(typed, sale["TaxCalculation"], TAX_RULES, places=invoice_places(invoice))
    return typed_invoice(sale, typed)


def _product_line(line: dict[str, Any], tax_types: dict[str, str]) -> dict[str, Any]:
    typed = _typed_line(f"{line['SKU']} {line['Name']}".strip(), line, tax_types)
    if to_decimal(line.get("Discount") or 0):
        typed["DiscountRate"] = to_decimal(line["Discount"])
    return typed


def _charge_line(charge: dict[str, Any], tax_types: dict[str, str]) -> dict[str, Any]:
    return _typed_line(str(charge["Description"]), charge, tax_types)


def _typed_line(description: str, line: dict[str, Any], tax_types: dict[str, str]) -> dict[str, Any]:
    # Cin7's own line amounts, to the cent: a 4-dp invoice's cents then add up to within a few cents of its
    # totals, and the rounding line takes up the rest.
    return {
        "Description": description,
        "Quantity": to_decimal(line["Quantity"]),
        "UnitAmount": to_decimal(line["Price"]),
        "AccountCode": str(line["Account"]),
        "TaxType": tax_types[str(line["TaxRule"])],
        "TaxAmount": amount(line["Tax"]),
        "LineAmount": amount(line["Total"]),
    }


def _sums(lines: list[dict[str, Any]], inclusive: bool) -> tuple[Decimal, Decimal]:
    """(SubTotal, TotalTax) as Xero adds up these lines."""
    line_sum = sum((line["LineAmount"] for line in lines), ZERO)
    tax = sum((line["TaxAmount"] for line in lines), ZERO)
    return (line_sum - tax if inclusive else line_sum), tax


def _rounding_line(
    lines: list[dict[str, Any]], gap_sub_total: Decimal, gap_tax: Decimal, inclusive: bool
) -> dict[str, Any]:
    """The line that takes Xero's totals to Cin7's: untaxed unless the tax itself needs the cent."""
    line_amount = gap_sub_total + gap_tax if inclusive else gap_sub_total
    tax_type = _UNTAXED
    if gap_tax:
        tax_type = max(lines, key=lambda line: abs(line["TaxAmount"]))["TaxType"]
    return {
        "Description": "Rounding",
        "Quantity": ONE,
        "UnitAmount": round_cents(line_amount),
        "AccountCode": ROUNDING_ACCOUNT,
        "TaxType": tax_type,
        "TaxAmount": gap_tax,
        "LineAmount": line_amount,
    }

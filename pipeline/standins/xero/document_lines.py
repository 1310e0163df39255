"""Line items of the Xero stand-in's invoices and credit notes: validation, rounding, totals and rendering.

Both documents take the same lines (account, tax rate, quantity x unit price, ``unitdp=4``) and Xero
rounds them the same way, so one set of functions serves both; ``LineRules`` says what differs (which
side of the tax rates applies, whether discounts are allowed) and which tracking categories a line's
``Tracking`` may name (``tracking.py``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pipeline.standins.xero.data import ACCOUNTS, TAX_RATES, parse_decimal, round2
from pipeline.standins.xero.tracking import line_tracking
from pipeline.standins.xero.values import Num, Record, as_text, jsonable

#: The stand-in's words for a discount on a credit note, after Xero's field text (XERO-OAS ``DiscountAmount``).
NO_DISCOUNTS = (
    "Discounts are only supported on ACCREC invoices and quotes. Credit notes in Xero do not support discounts."
)
#: The same for a bill, in the spec's own sentence (XERO-OAS ``LineItem.DiscountAmount``, INV-DOC).
NO_BILL_DISCOUNTS = (
    "Discounts are only supported on ACCREC invoices and quotes. "
    "ACCPAY invoices and credit notes in Xero do not support discounts."
)


@dataclass(frozen=True, slots=True)
class LineRules:
    """What a document's lines may hold: revenue or expense tax rates, 4-dp unit prices, discounts.

    ``noun`` ("Invoice" or "Credit Note") picks the words for a refused discount; ``tracking`` holds the
    organisation's tracking categories by TrackingCategoryID (none: every tracking pair is dropped).
    """

    sales: bool
    unitdp4: bool
    discounts: bool = True
    noun: str = "Invoice"
    tracking: Mapping[str, Record] = field(default_factory=dict)


@dataclass(slots=True)
class _LineAmounts:
    quantity: Decimal
    unit: Decimal
    discount: Decimal | None
    discount_amount: Decimal | None
    line_amount: Decimal
    given_tax: Decimal | None


def prepare_line(raw: Any, amount_types: str, rules: LineRules, old_ids: set[str], errors: list[str]) -> Record | None:
    """One validated line with its tax worked out, or None (errors appended) when it cannot be read."""
    if not isinstance(raw, dict):
        errors.append("A line item must be a JSON object.")
        return None
    description = (as_text(raw.get("Description")) or "").strip()
    if not description:
        errors.append("The description field is mandatory for each line item.")
    amounts = _line_amounts(raw, rules, errors)
    if amounts is None:
        return None
    account_code, tax_type, rate = _line_account_and_tax(raw, rules.sales, errors)
    if amounts.given_tax is not None:
        tax = round2(amounts.given_tax)
    elif amount_types == "NoTax":
        tax = Decimal("0.00")
    elif amount_types == "Inclusive":
        tax = round2(amounts.line_amount * rate / (1 + rate))
    else:
        tax = round2(amounts.line_amount * rate)
    line_id = as_text(raw.get("LineItemID"))
    if not line_id or line_id.lower() not in old_ids:
        line_id = str(uuid.uuid4())
    return {
        "LineItemID": line_id.lower(),
        "Description": description,
        "Quantity": amounts.quantity,
        "UnitAmount": amounts.unit,
        "ItemCode": as_text(raw.get("ItemCode")),
        "AccountCode": account_code,
        "TaxType": tax_type,
        "TaxAmount": tax,
        "LineAmount": amounts.line_amount,
        "DiscountRate": amounts.discount,
        "DiscountAmount": amounts.discount_amount,
        "Tracking": line_tracking(raw.get("Tracking"), rules.tracking, errors),
    }


def document_totals(record: Record) -> None:
    """Set SubTotal, TotalTax, Total and IsDiscounted from the record's lines."""
    lines = record["LineItems"]
    line_sum = sum((line["LineAmount"] for line in lines), Decimal("0.00"))
    tax_sum = sum((line["TaxAmount"] for line in lines), Decimal("0.00"))
    if record["LineAmountTypes"] == "Inclusive":
        record["Total"], record["TotalTax"] = line_sum, tax_sum
        record["SubTotal"] = line_sum - tax_sum
    else:
        record["SubTotal"], record["TotalTax"] = line_sum, tax_sum
        record["Total"] = line_sum + tax_sum
    record["IsDiscounted"] = any(
        (line.get("DiscountRate") or 0) > 0 or (line.get("DiscountAmount") or 0) > 0 for line in lines
    )


def line_inputs(elem: Record, existing: Record | None) -> tuple[Any, set[str]]:
    """The raw lines to validate and the LineItemIDs that may be kept.

    Without ``LineItems`` in the element, the stored lines are fed back through validation as input.
    """
    if "LineItems" in elem:
        old_ids = {line["LineItemID"] for line in existing["LineItems"]} if existing else set()
        return elem["LineItems"], old_ids
    raw_lines = [
        {
            "LineItemID": line["LineItemID"],
            "Description": line["Description"],
            "Quantity": line["Quantity"],
            "UnitAmount": line["UnitAmount"],
            "DiscountRate": line.get("DiscountRate"),
            "DiscountAmount": line.get("DiscountAmount"),
            "ItemCode": line.get("ItemCode"),
            "AccountCode": line.get("AccountCode"),
            "TaxType": line["TaxType"],
            "Tracking": line.get("Tracking"),
        }
        for line in (existing["LineItems"] if existing else [])
    ]
    return raw_lines, {line["LineItemID"] for line in raw_lines}


def same_lines(a: list[Record], b: list[Record]) -> bool:
    """Whether two documents' lines are the same but for their LineItemIDs (a resent, unchanged document)."""

    def strip(lines: list[Record]) -> list[Record]:
        return [{k: v for k, v in line.items() if k != "LineItemID"} for line in lines]

    return strip(a) == strip(b)


def render_line(line: Record, num: Num, created: dt.datetime) -> dict[str, Any]:
    """A stored line as Xero JSON (``created`` stamps the account it names)."""
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
        out["AccountID"] = ACCOUNTS[line["AccountCode"]].to_xero(created)["AccountID"]
    out["TaxType"] = line["TaxType"]
    out["TaxAmount"] = num(line["TaxAmount"])
    out["LineAmount"] = num(line["LineAmount"])
    if line.get("DiscountRate") is not None:
        out["DiscountRate"] = num(line["DiscountRate"])
    if line.get("DiscountAmount") is not None:
        out["DiscountAmount"] = num(line["DiscountAmount"])
    out["Tracking"] = jsonable(line.get("Tracking") or [], num)
    return out


def _line_amounts(raw: Record, rules: LineRules, errors: list[str]) -> _LineAmounts | None:
    """Quantity, unit price, discount and line amount as Xero rounds them; None when one is not a number."""
    try:
        quantity = parse_decimal(raw.get("Quantity"))
        unit = parse_decimal(raw.get("UnitAmount"))
        given_amount = parse_decimal(raw.get("LineAmount"))
        discount = parse_decimal(raw.get("DiscountRate"))
        discount_amount = parse_decimal(raw.get("DiscountAmount"))
        given_tax = parse_decimal(raw.get("TaxAmount"))
    except ValueError as exc:
        errors.append(f"A line item amount is not a number: {exc}")
        return None
    if not rules.discounts and (discount or discount_amount):
        errors.append(NO_BILL_DISCOUNTS if rules.noun == "Invoice" else NO_DISCOUNTS)
    if quantity is None and unit is None and given_amount is not None:
        quantity, unit = Decimal("1"), given_amount
    quantity = Decimal("1") if quantity is None else quantity.quantize(Decimal("0.0001"))
    unit = Decimal("0") if unit is None else unit
    unit = unit.quantize(Decimal("0.0001") if rules.unitdp4 else Decimal("0.01"), rounding=ROUND_HALF_UP)
    if discount is not None and not Decimal(0) <= discount <= Decimal(100):
        errors.append("Discount rate must be between 0 and 100.")
    if discount_amount is not None:
        computed = round2(quantity * unit - discount_amount)
    else:
        computed = round2(quantity * unit * (1 - (discount or Decimal(0)) / 100))
    line_amount = computed
    if given_amount is not None:
        given_amount = round2(given_amount)
        if abs(given_amount - computed) > Decimal("0.01"):
            errors.append(
                f"The line total {given_amount} does not match the expected line total "
                f"{computed} (Quantity x UnitAmount less discount)."
            )
        line_amount = given_amount
    return _LineAmounts(quantity, unit, discount, discount_amount, line_amount, given_tax)


def _line_account_and_tax(raw: Record, sales: bool, errors: list[str]) -> tuple[str | None, str, Decimal]:
    """(AccountCode, TaxType, tax rate as a fraction); the TaxType defaults to the account's."""
    account_code = as_text(raw.get("AccountCode"))
    account = ACCOUNTS.get(account_code) if account_code else None
    if account_code and (account is None or not account.usable_on_invoices):
        errors.append(f"Account code '{account_code}' is not a valid code for this document.")
    tax_type = as_text(raw.get("TaxType")) or (account.tax_type if account else "BASEXCLUDED")
    rate = TAX_RATES.get(tax_type)
    if rate is None or rate.status != "ACTIVE" or not (rate.revenue if sales else rate.expenses):
        errors.append(f"The TaxType code '{tax_type}' does not exist or cannot be used for this type of transaction.")
        return account_code, tax_type, Decimal(0)
    return account_code, tax_type, rate.rate / 100

"""Turns one invoice element of a Xero stand-in ``PUT``/``POST /Invoices`` into a validated plan.

Checks type, status transitions, numbers, the contact (creating one from a bare name), dates against the
period lock date, currencies and every line's account and tax rate, and computes lines and totals the
way Xero rounds them. Nothing is stored here: ``invoices.py`` commits the plan.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pipeline.standins.xero.batches import Claims
from pipeline.standins.xero.contacts import ContactsMixin, new_contact_record
from pipeline.standins.xero.data import (
    ACCOUNTS,
    CURRENCIES,
    DEFAULT_CURRENCY_RATES,
    TAX_RATES,
    parse_decimal,
    parse_input_date,
    round2,
)
from pipeline.standins.xero.schemas import INVOICE_STATUSES, INVOICE_TYPES, LINE_AMOUNT_TYPES, STATUS_TRANSITIONS
from pipeline.standins.xero.values import ZERO_GUID, Record, as_text, is_guid, utc_now


@dataclass(slots=True)
class InvoicePlan:
    """A validated invoice element: the record to store, the invoice it replaces, and a contact to create first."""

    existing_id: str | None
    record: Record
    new_contact: Record | None = None


class _Rejected(Exception):
    """An element refused outright: it is answered with this one error and no field is validated."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(slots=True)
class _LineAmounts:
    quantity: Decimal
    unit: Decimal
    discount: Decimal | None
    discount_amount: Decimal | None
    line_amount: Decimal
    given_tax: Decimal | None


class InvoiceValidationMixin(ContactsMixin):
    """Validation of invoice elements and their line items."""

    def _resolve_invoice_contact(self, ref: Any, errors: list[str]) -> tuple[str | None, Record | None]:
        """(existing ContactID, or None plus a contact to create when Name alone is given)."""
        if not isinstance(ref, dict) or not any(ref.get(k) for k in ("ContactID", "ContactNumber", "Name")):
            errors.append("A Contact must be specified for this type of transaction")
            return None, None
        contact: Record | None = None
        contact_id = as_text(ref.get("ContactID"))
        number = as_text(ref.get("ContactNumber"))
        name = (as_text(ref.get("Name")) or "").strip()
        if contact_id and contact_id != ZERO_GUID:
            contact = self._contacts.get(contact_id.lower()) if is_guid(contact_id) else None
            if contact is None:
                errors.append(f"The contact with ContactID {contact_id} could not be found.")
                return None, None
        elif number:
            contact = self._find_contact_by_number(number)
            if contact is None and not name:
                errors.append(f"The contact with ContactNumber {number} could not be found.")
                return None, None
        if contact is None and name:
            found = self._active_contact_by_name.get(name.casefold())
            contact = self._contacts.get(found) if found else None
        if contact is None:
            new = new_contact_record(None)
            new["Name"] = name
            if number:
                new["ContactNumber"] = number
            new_errors = self._apply_contact_fields(new, {}, None)
            if number and self._find_contact_by_number(number) is not None:
                new_errors.append(f"The contact number {number} is already assigned to another contact.")
            errors.extend(new_errors)
            return None, (new if not new_errors else None)
        if contact["ContactStatus"] != "ACTIVE":
            errors.append(f"The contact is archived and cannot be used on new transactions ({contact.get('Name')}).")
        return contact["ContactID"], None

    def _prepare_invoice(
        self, elem: Any, method: str, path_invoice: Record | None, unitdp4: bool, claims: Claims | None
    ) -> tuple[InvoicePlan | None, list[str]]:
        if not isinstance(elem, dict):
            return None, ["An invoice element must be a JSON object."]
        number = (as_text(elem.get("InvoiceNumber")) or "").strip() or None
        elem_type = (as_text(elem.get("Type")) or "").upper() or None
        try:
            existing = self._invoice_to_update(elem, method, path_invoice, number, elem_type)
        except _Rejected as exc:
            return None, [exc.message]
        errors: list[str] = []
        record = self._starting_record(existing, elem_type, errors)
        kind = record["Type"] or "ACCREC"
        self._apply_status(elem, record, existing, errors)
        self._apply_number(number, record, existing, kind, claims, errors)
        new_contact: Record | None = None
        if "Contact" in elem or existing is None:
            record["ContactID"], new_contact = self._resolve_invoice_contact(elem.get("Contact"), errors)
        self._apply_text_fields(elem, record, kind)
        self._apply_dates(elem, record, errors)
        self._apply_line_amount_types(elem, record, errors)
        self._apply_currency(elem, record, errors)
        self._apply_lines(elem, record, existing, kind, unitdp4, errors)
        if errors:
            return None, errors
        return InvoicePlan(existing["InvoiceID"] if existing else None, record, new_contact), []

    def _invoice_to_update(
        self, elem: Record, method: str, path_invoice: Record | None, number: str | None, elem_type: str | None
    ) -> Record | None:
        """The stored invoice this element edits (by path, InvoiceID or number), or None for a new one.

        Raises ``_Rejected`` when the element cannot go ahead at all, so no field errors are reported with it.
        """
        existing = path_invoice
        given_id = as_text(elem.get("InvoiceID"))
        if existing is None and given_id and given_id != ZERO_GUID:
            existing = self._invoices.get(given_id.lower()) if is_guid(given_id) else None
            if existing is None:
                raise _Rejected(f"The invoice with InvoiceID {given_id} could not be found.")
            if method == "PUT":
                raise _Rejected(f"An invoice with InvoiceID {given_id} already exists. Use POST to update it.")
        if existing is None and number is not None:
            kinds = [elem_type] if elem_type in INVOICE_TYPES else list(INVOICE_TYPES)
            match = next(
                (
                    self._invoice_by_number[(k, number.casefold())]
                    for k in kinds
                    if (k, number.casefold()) in self._invoice_by_number
                ),
                None,
            )
            if match is not None:
                if method == "PUT":
                    raise _Rejected("Invoice # must be unique.")
                existing = self._invoices[match]
        if existing is not None:
            if existing["Status"] in ("VOIDED", "DELETED"):
                raise _Rejected("Invoice not of valid status for modification")
            if existing["Status"] == "PAID" or existing["AmountPaid"] > 0 or existing["AmountCredited"] > 0:
                raise _Rejected("This document cannot be edited as it has a payment or credit note allocated to it.")
        return existing

    @staticmethod
    def _starting_record(existing: Record | None, elem_type: str | None, errors: list[str]) -> Record:
        """A copy of the invoice being edited, or a new draft of ``elem_type``."""
        if existing is not None:
            return dict(existing)
        if elem_type not in INVOICE_TYPES:
            errors.append(
                "Invoice Type must be ACCREC or ACCPAY." if elem_type else "The Invoice Type must be specified."
            )
        return {
            "InvoiceID": None,
            "Type": elem_type,
            "InvoiceNumber": None,
            "Reference": None,
            "ContactID": None,
            "Date": None,
            "DueDate": None,
            "Status": "DRAFT",
            "LineAmountTypes": "Exclusive",
            "LineItems": [],
            "CurrencyCode": "AUD",
            "CurrencyRate": Decimal("1"),
            "AmountPaid": Decimal("0.00"),
            "AmountCredited": Decimal("0.00"),
            "SentToContact": False,
            "Payments": [],
            "FullyPaidOnDate": None,
            "IsDiscounted": False,
        }

    @staticmethod
    def _apply_status(elem: Record, record: Record, existing: Record | None, errors: list[str]) -> None:
        if "Status" not in elem or elem["Status"] is None:
            return
        status = str(elem["Status"]).upper()
        if status not in INVOICE_STATUSES:
            errors.append(f"'{elem['Status']}' is not a valid invoice status.")
        elif existing is None and status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            errors.append("Invoice not of valid status for creation")
        elif (
            existing is not None
            and status != existing["Status"]
            and status not in STATUS_TRANSITIONS.get(existing["Status"], frozenset())
        ):
            errors.append("Invoice not of valid status for modification")
        record["Status"] = status

    def _apply_number(
        self,
        number: str | None,
        record: Record,
        existing: Record | None,
        kind: str,
        claims: Claims | None,
        errors: list[str],
    ) -> None:
        if number is None or (existing is not None and number == existing.get("InvoiceNumber")):
            return
        if len(number) > 255:
            errors.append("Invoice Number must be 255 characters or less.")
        holder = self._invoice_by_number.get((kind, number.casefold()))
        if (holder is not None and (existing is None or holder != existing["InvoiceID"])) or (
            claims is not None and (kind, number.casefold()) in claims.invoice_numbers
        ):
            errors.append("Invoice # must be unique.")
        record["InvoiceNumber"] = number

    @staticmethod
    def _apply_text_fields(elem: Record, record: Record, kind: str) -> None:
        for key in ("Reference", "Url", "BrandingThemeID"):
            if key in elem:
                record[key] = as_text(elem[key])
        if kind == "ACCPAY":
            record["Reference"] = None
        if "SentToContact" in elem:
            record["SentToContact"] = bool(elem["SentToContact"])

    def _apply_dates(self, elem: Record, record: Record, errors: list[str]) -> None:
        for key in ("Date", "DueDate"):
            if elem.get(key):
                try:
                    record[key] = parse_input_date(elem[key])
                except ValueError:
                    errors.append(f"The {key} '{elem[key]}' is not a valid date.")
        if record["Date"] is None:
            record["Date"] = utc_now().date()
        lock = self.period_lock_date
        if lock is not None and record["Date"] <= lock:
            errors.append(
                f"The document date cannot be before the period lock date ({lock.day} {lock.strftime('%b %Y')})."
            )

    @staticmethod
    def _apply_line_amount_types(elem: Record, record: Record, errors: list[str]) -> None:
        if elem.get("LineAmountTypes") is None:
            return
        lat = LINE_AMOUNT_TYPES.get(str(elem["LineAmountTypes"]).lower())
        if lat is None:
            errors.append(f"'{elem['LineAmountTypes']}' is not a valid LineAmountTypes value.")
        else:
            record["LineAmountTypes"] = lat

    @staticmethod
    def _apply_currency(elem: Record, record: Record, errors: list[str]) -> None:
        if elem.get("CurrencyCode"):
            code = str(elem["CurrencyCode"]).upper()
            if code not in CURRENCIES:
                errors.append(
                    f"The currency {code} has not been enabled for this organisation. "
                    "Add it in Settings > Currencies before using it."
                )
            elif code != record["CurrencyCode"]:
                record["CurrencyRate"] = DEFAULT_CURRENCY_RATES[code]
            record["CurrencyCode"] = code
        if elem.get("CurrencyRate") is not None and record["CurrencyCode"] != "AUD":
            try:
                rate = parse_decimal(elem["CurrencyRate"])
            except ValueError:
                rate = None
            if rate is None or rate <= 0:
                errors.append("The CurrencyRate must be greater than zero.")
            else:
                record["CurrencyRate"] = rate
        if record["CurrencyCode"] == "AUD":
            record["CurrencyRate"] = Decimal("1")

    def _apply_lines(
        self, elem: Record, record: Record, existing: Record | None, kind: str, unitdp4: bool, errors: list[str]
    ) -> None:
        # Stored lines are re-derived when only LineAmountTypes changes, since their tax depends on it.
        recompute = "LineItems" in elem or (
            existing is not None and record["LineAmountTypes"] != existing["LineAmountTypes"]
        )
        if not recompute and existing is not None:
            return
        raw_lines, old_ids = _line_inputs(elem, existing)
        if not isinstance(raw_lines, list) or not raw_lines:
            errors.append("At least one line item must be specified.")
            raw_lines = []
        lines = [
            self._prepare_line(raw, kind, record["LineAmountTypes"], unitdp4, old_ids, errors) for raw in raw_lines
        ]
        record["LineItems"] = [line for line in lines if line is not None]
        self._totals(record)

    def _prepare_line(
        self, raw: Any, kind: str, amount_types: str, unitdp4: bool, old_ids: set[str], errors: list[str]
    ) -> Record | None:
        if not isinstance(raw, dict):
            errors.append("A line item must be a JSON object.")
            return None
        description = (as_text(raw.get("Description")) or "").strip()
        if not description:
            errors.append("The description field is mandatory for each line item.")
        amounts = _line_amounts(raw, unitdp4, errors)
        if amounts is None:
            return None
        account_code, tax_type, rate = _line_account_and_tax(raw, kind, errors)
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
            "Tracking": copy.deepcopy(raw.get("Tracking")) or [],
        }

    @staticmethod
    def _totals(record: Record) -> None:
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


def _line_inputs(elem: Record, existing: Record | None) -> tuple[Any, set[str]]:
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


def _line_amounts(raw: Record, unitdp4: bool, errors: list[str]) -> _LineAmounts | None:
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
    if quantity is None and unit is None and given_amount is not None:
        quantity, unit = Decimal("1"), given_amount
    quantity = Decimal("1") if quantity is None else quantity.quantize(Decimal("0.0001"))
    unit = Decimal("0") if unit is None else unit
    unit = unit.quantize(Decimal("0.0001") if unitdp4 else Decimal("0.01"), rounding=ROUND_HALF_UP)
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


def _line_account_and_tax(raw: Record, kind: str, errors: list[str]) -> tuple[str | None, str, Decimal]:
    """(AccountCode, TaxType, tax rate as a fraction); the TaxType defaults to the account's."""
    account_code = as_text(raw.get("AccountCode"))
    account = ACCOUNTS.get(account_code) if account_code else None
    if account_code and (account is None or not account.usable_on_invoices):
        errors.append(f"Account code '{account_code}' is not a valid code for this document.")
    tax_type = as_text(raw.get("TaxType")) or (account.tax_type if account else "BASEXCLUDED")
    rate = TAX_RATES.get(tax_type)
    if rate is None or rate.status != "ACTIVE" or not (rate.revenue if kind == "ACCREC" else rate.expenses):
        errors.append(f"The TaxType code '{tax_type}' does not exist or cannot be used for this type of transaction.")
        return account_code, tax_type, Decimal(0)
    return account_code, tax_type, rate.rate / 100

"""Pydantic models of the Cin7 Core (DEAR) JSON we read.

Lenient on shape, strict on meaning: unknown keys are ignored, enum-like strings are kept even when
Cin7 adds a value we have not seen (its enums are open), but amounts are exact ``Decimal``s and
timestamps are always timezone-aware UTC.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_pascal

__all__ = [
    "Cin7AdditionalCharge",
    "Cin7Address",
    "Cin7CreditNote",
    "Cin7Customer",
    "Cin7CustomerChange",
    "Cin7CustomerContact",
    "Cin7Invoice",
    "Cin7InvoiceStatus",
    "Cin7Line",
    "Cin7Order",
    "Cin7Payment",
    "Cin7Sale",
    "Cin7SaleChange",
    "Cin7SaleListRow",
    "Cin7TaxRule",
    "default_contact_of",
    "parse_cin7_datetime",
    "parse_decimal",
    "primary_email_of",
]


class Cin7InvoiceStatus(StrEnum):
    """Status of one invoice of a sale (``Invoices[].Status``)."""

    NOT_AVAILABLE = "NOT AVAILABLE"
    DRAFT = "DRAFT"
    AUTHORISED = "AUTHORISED"
    VOIDED = "VOIDED"
    PAID = "PAID"

    @classmethod
    def parse(cls, value: object) -> Cin7InvoiceStatus | None:
        """The status for a Cin7 string, case-insensitively (``AUTHORIZED`` too); None when unknown."""
        if isinstance(value, Cin7InvoiceStatus):
            return value
        if not isinstance(value, str):
            return None
        key = _normalise_enum_text(value)
        key = _INVOICE_STATUS_SPELLINGS.get(key, key)
        try:
            return cls(key)
        except ValueError:
            return None


_INVOICE_STATUS_SPELLINGS = {
    "AUTHORIZED": "AUTHORISED",
    "NOT_AVAILABLE": "NOT AVAILABLE",
    "NOTAVAILABLE": "NOT AVAILABLE",
}


# --- value parsers -------------------------------------------------------------------------------------

_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def parse_cin7_datetime(value: object) -> datetime | None:
    """A Cin7 timestamp as an aware UTC datetime.

    Accepts ``2017-09-29T03:03:13.913Z``, zone-less ``2017-09-29T00:00:00`` (Cin7 means UTC),
    ``yyyy-MM-dd``, ``dd/MM/yyyy`` (webhook bodies), datetimes, dates and None/blank.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"expected a Cin7 timestamp string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    # OverflowError too: a year-1 timestamp with a positive offset has no UTC time; pydantic reports
    # only ValueErrors as a field's problem, anything else would escape as a crash.
    try:
        match = _DMY.match(text)
        if match:
            day, month, year = (int(part) for part in match.groups())
            return datetime(year, month, day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"unrecognised Cin7 timestamp {value!r}") from exc


def parse_decimal(value: object) -> Decimal | None:
    """An exact Decimal from int, float, str or Decimal; floats go through ``str`` so 12.3456 stays exact."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected an amount, got a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(str(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            result = Decimal(text)
        except InvalidOperation as exc:
            raise ValueError(f"not an amount: {value!r}") from exc
    else:
        raise ValueError(f"expected an amount, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return result


def _decimal_or_zero(value: object) -> Decimal:
    parsed = parse_decimal(value)
    return parsed if parsed is not None else Decimal(0)


def _normalise_enum_text(value: str) -> str:
    return " ".join(value.split()).upper()


def _enum_text(value: object) -> object:
    if isinstance(value, str):
        return _normalise_enum_text(value) or None
    return value


def _currency(value: object) -> object:
    if isinstance(value, str):
        return value.strip().upper() or None
    return value


def _guid(value: object) -> object:
    if isinstance(value, str):
        return value.strip().lower() or None
    return value


def _invoice_status(value: object) -> object:
    if isinstance(value, str):
        parsed = Cin7InvoiceStatus.parse(value)
        return parsed if parsed is not None else _normalise_enum_text(value)
    return value


def _none_as_empty_list(value: object) -> object:
    return [] if value is None else value


def _bool_or_false(value: object) -> object:
    return False if value is None else value


Cin7DateTime = Annotated[datetime | None, BeforeValidator(parse_cin7_datetime)]
Amount = Annotated[Decimal, BeforeValidator(_decimal_or_zero)]
OptionalAmount = Annotated[Decimal | None, BeforeValidator(parse_decimal)]
EnumText = Annotated[str | None, BeforeValidator(_enum_text)]
Currency = Annotated[str | None, BeforeValidator(_currency)]
Guid = Annotated[str | None, BeforeValidator(_guid)]
InvoiceStatusText = Annotated[Cin7InvoiceStatus | str | None, BeforeValidator(_invoice_status)]

_T = TypeVar("_T")
# A list Cin7 may send as null.
_ListOf = Annotated[list[_T], BeforeValidator(_none_as_empty_list)]


class _Cin7Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_pascal,
        populate_by_name=True,
        extra="ignore",
    )


# --- customers -----------------------------------------------------------------------------------------


class Cin7Address(_Cin7Model):
    """A customer or sale address; ``type`` is BILLING, BUSINESS or SHIPPING (upper-cased)."""

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postcode: str | None = None
    country: str | None = None
    type: EnumText = None


class Cin7CustomerContact(_Cin7Model):
    """A person at a customer or a supplier (both share the shape); ``default`` marks the main one.

    ``include_in_email`` is whether Cin7 copies them on documents it e-mails; suppliers' contacts carry
    no ``JobTitle`` (customers' do), and the ``Website`` a supplier has lives here, not on the supplier.
    """

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    mobile_phone: str | None = None
    default: Annotated[bool, BeforeValidator(_bool_or_false)] = False
    include_in_email: Annotated[bool, BeforeValidator(_bool_or_false)] = False
    job_title: str | None = None
    website: str | None = None


class Cin7Customer(_Cin7Model):
    """A row of ``GET customer``."""

    id: Annotated[str, BeforeValidator(_guid)] = Field(alias="ID")
    name: str
    currency: Currency = None
    payment_term: str | None = None
    tax_rule: str | None = None
    account_receivable: str | None = None
    revenue_account: str | None = None
    tax_number: str | None = None
    status: EnumText = None
    last_modified_on: Cin7DateTime = None
    addresses: _ListOf[Cin7Address] = []
    contacts: _ListOf[Cin7CustomerContact] = []
    display_name: str | None = None

    @property
    def primary_email(self) -> str | None:
        """E-mail of the Default contact, else the first non-empty one; trimmed; None when there is none."""
        return primary_email_of(self.contacts)

    @property
    def default_contact(self) -> Cin7CustomerContact | None:
        """The contact marked Default, else the first one."""
        return default_contact_of(self.contacts)


def primary_email_of(contacts: Sequence[Cin7CustomerContact]) -> str | None:
    """E-mail of the Default contact, else the first non-empty one; trimmed; None when there is none.

    Customers and suppliers keep e-mail only on their people, so both find "the" address this way.
    """
    for contact in contacts:
        if contact.default and contact.email and contact.email.strip():
            return contact.email.strip()
    for contact in contacts:
        if contact.email and contact.email.strip():
            return contact.email.strip()
    return None


def default_contact_of(contacts: Sequence[Cin7CustomerContact]) -> Cin7CustomerContact | None:
    """The contact marked Default, else the first one (Cin7 does not insist that one is marked)."""
    for contact in contacts:
        if contact.default:
            return contact
    return contacts[0] if contacts else None


# --- reference -----------------------------------------------------------------------------------------


class Cin7TaxRule(_Cin7Model):
    """A row of ``ref/tax``: a user-named tax rule and its percentage (a number or a string)."""

    id: Guid = Field(default=None, alias="ID")
    name: str
    tax_percent: OptionalAmount = None
    is_active: bool = True


# --- sales ---------------------------------------------------------------------------------------------


class _Cin7LineAmounts(_Cin7Model):
    """What every kind of Cin7 line carries, so `mappings.lines` maps product and service lines alike."""

    quantity: Amount = Decimal(0)
    price: Amount = Decimal(0)
    discount: Amount = Decimal(0)
    tax: Amount = Decimal(0)
    total: Amount = Decimal(0)
    tax_rule: str | None = None
    account: str | None = None


class Cin7Line(_Cin7LineAmounts):
    """A product line of an order or invoice (amounts per the conventions file)."""

    product_id: Guid = Field(default=None, alias="ProductID")
    sku: str | None = Field(default=None, alias="SKU")
    name: str | None = None
    comment: str | None = None


class Cin7AdditionalCharge(_Cin7LineAmounts):
    """A service/freight line; same amounts as :class:`Cin7Line`, a description instead of SKU/name."""

    description: str | None = None


class Cin7Payment(_Cin7Model):
    """A payment applied to an invoice (refunds have the same shape).

    ``type`` is set on purchase payments only: PREPAYMENT, PAYMENT or REFUND (upper case).
    """

    id: Guid = Field(default=None, alias="ID")
    type: EnumText = None
    reference: str | None = None
    amount: Amount = Decimal(0)
    date_paid: Cin7DateTime = None
    account: str | None = None
    currency_rate: OptionalAmount = None
    date_created: Cin7DateTime = None


class _Cin7Document(_Cin7Model):
    """What every Cin7 document with lines carries: the lines, and Cin7's own header totals for them."""

    lines: _ListOf[Cin7Line] = []
    additional_charges: _ListOf[Cin7AdditionalCharge] = []
    total_before_tax: Amount = Decimal(0)
    tax: Amount = Decimal(0)
    total: Amount = Decimal(0)


class Cin7Invoice(_Cin7Document):
    """One invoice of a sale, identified by ``task_id``."""

    task_id: Guid = Field(default=None, alias="TaskID")
    invoice_number: str | None = None
    status: InvoiceStatusText = None
    invoice_date: Cin7DateTime = None
    invoice_due_date: Cin7DateTime = None
    currency_conversion_rate: OptionalAmount = None
    memo: str | None = None
    payments: _ListOf[Cin7Payment] = []
    paid: Amount = Decimal(0)


class Cin7CreditNote(_Cin7Document):
    """One credit note of a sale (``CreditNotes[]``), identified by ``task_id``; quantities are positive."""

    task_id: Guid = Field(default=None, alias="TaskID")
    credit_note_number: str | None = None
    #: The number of the invoice it credits (Cin7 requires one).
    credit_note_invoice_number: str | None = None
    credit_note_date: Cin7DateTime = None
    credit_note_conversion_rate: OptionalAmount = None
    memo: str | None = None
    status: InvoiceStatusText = None
    refunds: _ListOf[Cin7Payment] = []


class Cin7Order(_Cin7Document):
    """The order part of a sale."""

    sale_order_number: str | None = None
    memo: str | None = None
    status: EnumText = None


class Cin7Sale(_Cin7Model):
    """The body of ``GET sale?ID=`` (no envelope)."""

    id: Annotated[str, BeforeValidator(_guid)] = Field(alias="ID")
    customer: str | None = None
    customer_id: Guid = Field(default=None, alias="CustomerID")
    email: str | None = None
    customer_reference: str | None = None
    billing_address: Cin7Address | None = None
    shipping_address: Cin7Address | None = None
    base_currency: Currency = None
    customer_currency: Currency = None
    currency_rate: OptionalAmount = None
    tax_rule: str | None = None
    tax_calculation: EnumText = None
    terms: str | None = None
    #: Who sold it, as Cin7 names them; a tracking option on every line when the rules name a category.
    sales_representative: str | None = None
    last_modified_on: Cin7DateTime = None
    status: EnumText = None
    combined_invoice_status: EnumText = None
    combined_payment_status: EnumText = None
    type: EnumText = None
    order: Cin7Order | None = None
    invoices: _ListOf[Cin7Invoice] = []
    credit_notes: _ListOf[Cin7CreditNote] = []

    def invoice_by_task_id(self, task_id: str) -> Cin7Invoice | None:
        """The invoice with this TaskID (compared case-insensitively), if any."""
        wanted = task_id.strip().lower()
        return next((inv for inv in self.invoices if inv.task_id == wanted), None)

    def invoice_by_number(self, number: str | None) -> Cin7Invoice | None:
        """The invoice with this number (case-insensitively): how a credit note names what it credits."""
        wanted = (number or "").strip().casefold()
        if not wanted:
            return None
        return next((inv for inv in self.invoices if (inv.invoice_number or "").strip().casefold() == wanted), None)

    def credit_note_by_task_id(self, task_id: str) -> Cin7CreditNote | None:
        """The credit note with this TaskID, if any."""
        wanted = task_id.strip().lower()
        return next((note for note in self.credit_notes if note.task_id == wanted), None)

    def payment_by_id(self, payment_id: str) -> tuple[Cin7Invoice, Cin7Payment] | None:
        """The invoice payment with this ID and the invoice it pays, if any."""
        wanted = payment_id.strip().lower()
        for invoice in self.invoices:
            for payment in invoice.payments:
                if payment.id == wanted:
                    return invoice, payment
        return None

    def refund_by_id(self, refund_id: str) -> tuple[Cin7CreditNote, Cin7Payment] | None:
        """The credit-note refund with this ID and the credit note it pays back, if any."""
        wanted = refund_id.strip().lower()
        for note in self.credit_notes:
            for refund in note.refunds:
                if refund.id == wanted:
                    return note, refund
        return None


class Cin7CustomerChange(_Cin7Model):
    """What the customer poll reads of a ``customer`` row: which customer, and when it last changed."""

    id: Annotated[str, BeforeValidator(_guid)] = Field(alias="ID")
    last_modified_on: Cin7DateTime = None


class Cin7SaleChange(_Cin7Model):
    """What the poll reads of a ``saleList`` row: which sale, its number, and when it last changed."""

    sale_id: Annotated[str, BeforeValidator(_guid)] = Field(alias="SaleID")
    order_number: str | None = None
    updated: Cin7DateTime = None


class Cin7SaleListRow(_Cin7Model):
    """A row of ``GET saleList``."""

    sale_id: Annotated[str, BeforeValidator(_guid)] = Field(alias="SaleID")
    order_number: str | None = None
    status: EnumText = None
    order_date: Cin7DateTime = None
    invoice_date: Cin7DateTime = None
    invoice_number: str | None = None
    customer: str | None = None
    customer_id: Guid = Field(default=None, alias="CustomerID")
    invoice_amount: Amount = Decimal(0)
    paid_amount: Amount = Decimal(0)
    customer_currency: Currency = None
    updated: Cin7DateTime = None
    order_status: EnumText = None
    combined_invoice_status: EnumText = None
    combined_payment_status: EnumText = None
    type: EnumText = None

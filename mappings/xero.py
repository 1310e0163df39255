"""Our own pydantic models of the Xero Accounting payloads we send.

Serialised with ``to_json()`` (= ``model_dump(mode="json", by_alias=True, exclude_none=True)``) to Xero's
PascalCase JSON. Decimals go out as plain strings (``"12.3456"``, never ``"1E+2"`` or a float) and dates as
``"YYYY-MM-DD"``, both pinned by explicit serialisers so the text, and therefore the content hash, is stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from .util import decimal_to_str, round_half_up

__all__ = [
    "LineAmountTypes",
    "PaymentTermType",
    "Totals",
    "XeroAccountRef",
    "XeroAddress",
    "XeroAddressType",
    "XeroAllocation",
    "XeroBill",
    "XeroContact",
    "XeroContactPerson",
    "XeroContactRef",
    "XeroCreditNote",
    "XeroDocumentRef",
    "XeroInvoice",
    "XeroInvoiceStatus",
    "XeroLineItem",
    "XeroLineTracking",
    "XeroPayment",
    "XeroPaymentTerm",
    "XeroPaymentTerms",
    "XeroPhone",
    "XeroPhoneType",
    "XeroTaxType",
    "expected_line_amount",
    "xero_totals",
]


class XeroTaxType(StrEnum):
    """Xero TaxType codes we may send (AU GST, then NZ GST)."""

    # AU
    OUTPUT = "OUTPUT"
    INPUT = "INPUT"
    EXEMPTOUTPUT = "EXEMPTOUTPUT"
    EXEMPTEXPORT = "EXEMPTEXPORT"
    EXEMPTEXPENSES = "EXEMPTEXPENSES"
    EXEMPTCAPITAL = "EXEMPTCAPITAL"
    CAPEXINPUT = "CAPEXINPUT"
    GSTONIMPORTS = "GSTONIMPORTS"
    GSTONCAPIMPORTS = "GSTONCAPIMPORTS"
    INPUTTAXED = "INPUTTAXED"
    BASEXCLUDED = "BASEXCLUDED"
    # NZ
    OUTPUT2 = "OUTPUT2"
    INPUT2 = "INPUT2"
    ZERORATEDOUTPUT = "ZERORATEDOUTPUT"
    NONE = "NONE"


class LineAmountTypes(StrEnum):
    """Whether line amounts include tax."""

    EXCLUSIVE = "Exclusive"
    INCLUSIVE = "Inclusive"
    NO_TAX = "NoTax"


class XeroInvoiceStatus(StrEnum):
    """Invoice statuses in Xero (PAID is set by Xero itself)."""

    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    AUTHORISED = "AUTHORISED"
    DELETED = "DELETED"
    VOIDED = "VOIDED"
    PAID = "PAID"


class XeroAddressType(StrEnum):
    """Xero contact address kinds."""

    STREET = "STREET"
    POBOX = "POBOX"


class XeroPhoneType(StrEnum):
    """Xero contact phone kinds."""

    DEFAULT = "DEFAULT"
    DDI = "DDI"
    FAX = "FAX"
    MOBILE = "MOBILE"


class PaymentTermType(StrEnum):
    """How Xero reads ``PaymentTerms.Sales.Day``."""

    DAYSAFTERBILLDATE = "DAYSAFTERBILLDATE"
    DAYSAFTERBILLMONTH = "DAYSAFTERBILLMONTH"
    OFCURRENTMONTH = "OFCURRENTMONTH"
    OFFOLLOWINGMONTH = "OFFOLLOWINGMONTH"


XeroDecimal = Annotated[Decimal, PlainSerializer(decimal_to_str, return_type=str, when_used="json")]
XeroDate = Annotated[date, PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="json")]


class _XeroModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """The JSON object Xero expects: PascalCase keys, no nulls, Decimals as strings."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class XeroLineTracking(_XeroModel):
    """A line's tracking option, by name (Xero drops an option it does not have, so it is made first)."""

    name: str = Field(alias="Name", min_length=1, max_length=100)
    option: str = Field(alias="Option", min_length=1, max_length=50)


class XeroLineItem(_XeroModel):
    """One invoice line; TaxAmount is sent so Xero shows Cin7's tax to the cent."""

    description: str = Field(alias="Description", min_length=1, max_length=4000)
    quantity: XeroDecimal = Field(alias="Quantity")
    unit_amount: XeroDecimal = Field(alias="UnitAmount")
    discount_rate: XeroDecimal | None = Field(default=None, alias="DiscountRate")
    account_code: str | None = Field(default=None, alias="AccountCode")
    tax_type: XeroTaxType | None = Field(default=None, alias="TaxType")
    tax_amount: XeroDecimal | None = Field(default=None, alias="TaxAmount")
    line_amount: XeroDecimal | None = Field(default=None, alias="LineAmount")
    item_code: str | None = Field(default=None, alias="ItemCode")
    tracking: list[XeroLineTracking] | None = Field(default=None, alias="Tracking")


class XeroContactRef(_XeroModel):
    """The contact of an invoice, by ContactID (preferred) or ContactNumber."""

    contact_id: str | None = Field(default=None, alias="ContactID")
    contact_number: str | None = Field(default=None, alias="ContactNumber")

    @model_validator(mode="after")
    def _needs_an_identifier(self) -> Self:
        if not self.contact_id and not self.contact_number:
            raise ValueError("a contact reference needs ContactID or ContactNumber")
        return self


class _XeroDocument(_XeroModel):
    """What invoices, bills and credit notes share: the contact, date, status, currency and lines."""

    contact: XeroContactRef | None = Field(default=None, alias="Contact")
    date: XeroDate | None = Field(default=None, alias="Date")
    status: XeroInvoiceStatus | None = Field(default=None, alias="Status")
    line_amount_types: LineAmountTypes | None = Field(default=None, alias="LineAmountTypes")
    currency_code: str | None = Field(default=None, alias="CurrencyCode")
    currency_rate: XeroDecimal | None = Field(default=None, alias="CurrencyRate")
    line_items: list[XeroLineItem] | None = Field(default=None, alias="LineItems")


class XeroInvoice(_XeroDocument):
    """An ACCREC invoice payload; a void/delete payload carries only InvoiceID, InvoiceNumber and Status."""

    type: Literal["ACCREC"] | None = Field(default="ACCREC", alias="Type")
    invoice_id: str | None = Field(default=None, alias="InvoiceID")
    invoice_number: str | None = Field(default=None, alias="InvoiceNumber", max_length=255)
    reference: str | None = Field(default=None, alias="Reference")
    due_date: XeroDate | None = Field(default=None, alias="DueDate")


class XeroBill(_XeroDocument):
    """An ACCPAY bill payload: a supplier's invoice to us.

    Its InvoiceNumber is the supplier's own number (Xero shows it as the bill's Reference and does not keep
    it unique, so bills are found again through our own Cin7 -> Xero map). Bills have no Reference and
    take no line discount: a line carrying one is refused here rather than by Xero.
    """

    type: Literal["ACCPAY"] | None = Field(default="ACCPAY", alias="Type")
    invoice_id: str | None = Field(default=None, alias="InvoiceID")
    invoice_number: str | None = Field(default=None, alias="InvoiceNumber", max_length=255)
    due_date: XeroDate | None = Field(default=None, alias="DueDate")

    @model_validator(mode="after")
    def _no_line_discounts(self) -> Self:
        if any(line.discount_rate is not None for line in self.line_items or []):
            raise ValueError("Xero bills take no DiscountRate: fold the discount into the UnitAmount")
        return self


class XeroCreditNote(_XeroDocument):
    """A credit note payload: ACCRECCREDIT (to a customer) or ACCPAYCREDIT (from a supplier).

    No line discounts: Xero refuses them on credit notes. Reference is ACCRECCREDIT only; on an
    ACCPAYCREDIT the supplier's credit note number goes in CreditNoteNumber.
    """

    type: Literal["ACCRECCREDIT", "ACCPAYCREDIT"] | None = Field(default="ACCRECCREDIT", alias="Type")
    credit_note_id: str | None = Field(default=None, alias="CreditNoteID")
    credit_note_number: str | None = Field(default=None, alias="CreditNoteNumber", max_length=255)
    reference: str | None = Field(default=None, alias="Reference")


class XeroDocumentRef(_XeroModel):
    """The invoice or credit note a payment or allocation applies to, by its Xero id."""

    invoice_id: str | None = Field(default=None, alias="InvoiceID")
    credit_note_id: str | None = Field(default=None, alias="CreditNoteID")


class XeroAccountRef(_XeroModel):
    """A bank account by code."""

    code: str = Field(alias="Code")


class XeroPayment(_XeroModel):
    """A payment on an invoice, or a refund on a credit note (money paid back)."""

    invoice: XeroDocumentRef | None = Field(default=None, alias="Invoice")
    credit_note: XeroDocumentRef | None = Field(default=None, alias="CreditNote")
    account: XeroAccountRef = Field(alias="Account")
    date: XeroDate = Field(alias="Date")
    amount: XeroDecimal = Field(alias="Amount")
    currency_rate: XeroDecimal | None = Field(default=None, alias="CurrencyRate")
    reference: str | None = Field(default=None, alias="Reference", max_length=255)


class XeroAllocation(_XeroModel):
    """Part of a credit note applied to an invoice (sent to PUT /CreditNotes/{CreditNoteID}/Allocations)."""

    invoice: XeroDocumentRef = Field(alias="Invoice")
    credit_note: XeroDocumentRef = Field(alias="CreditNote")
    amount: XeroDecimal = Field(alias="Amount")
    date: XeroDate = Field(alias="Date")


class XeroAddress(_XeroModel):
    """A contact address."""

    address_type: XeroAddressType = Field(alias="AddressType")
    address_line1: str | None = Field(default=None, alias="AddressLine1")
    address_line2: str | None = Field(default=None, alias="AddressLine2")
    address_line3: str | None = Field(default=None, alias="AddressLine3")
    address_line4: str | None = Field(default=None, alias="AddressLine4")
    city: str | None = Field(default=None, alias="City")
    region: str | None = Field(default=None, alias="Region")
    postal_code: str | None = Field(default=None, alias="PostalCode")
    country: str | None = Field(default=None, alias="Country")
    attention_to: str | None = Field(default=None, alias="AttentionTo")


class XeroPhone(_XeroModel):
    """A contact phone number."""

    phone_type: XeroPhoneType = Field(alias="PhoneType")
    phone_number: str = Field(alias="PhoneNumber")


class XeroPaymentTerm(_XeroModel):
    """``{Day, Type}`` of ``PaymentTerms.Sales`` (or ``.Bills``)."""

    day: int = Field(alias="Day", ge=0)
    type: PaymentTermType = Field(alias="Type")


class XeroPaymentTerms(_XeroModel):
    """A contact's default payment terms: Sales for a customer's invoices, Bills for a supplier's bills."""

    sales: XeroPaymentTerm | None = Field(default=None, alias="Sales")
    bills: XeroPaymentTerm | None = Field(default=None, alias="Bills")

    @model_validator(mode="after")
    def _sets_a_side(self) -> Self:
        if self.sales is None and self.bills is None:
            raise ValueError("payment terms need Sales or Bills")
        return self


class XeroContactPerson(_XeroModel):
    """One of at most five people of a contact besides the primary one (``ContactPersons[]``)."""

    first_name: str | None = Field(default=None, alias="FirstName", max_length=255)
    last_name: str | None = Field(default=None, alias="LastName", max_length=255)
    email_address: str | None = Field(default=None, alias="EmailAddress", max_length=255)
    include_in_emails: bool | None = Field(default=None, alias="IncludeInEmails")


class XeroContact(_XeroModel):
    """A contact payload; FirstName/LastName/EmailAddress are the primary person's.

    ``IsCustomer``/``IsSupplier`` are read-only in Xero (derived from invoices and bills) and never sent.
    """

    contact_id: str | None = Field(default=None, alias="ContactID")
    contact_number: str | None = Field(default=None, alias="ContactNumber")
    name: str = Field(alias="Name")
    email_address: str | None = Field(default=None, alias="EmailAddress")
    tax_number: str | None = Field(default=None, alias="TaxNumber")
    addresses: list[XeroAddress] | None = Field(default=None, alias="Addresses")
    phones: list[XeroPhone] | None = Field(default=None, alias="Phones")
    default_currency: str | None = Field(default=None, alias="DefaultCurrency")
    payment_terms: XeroPaymentTerms | None = Field(default=None, alias="PaymentTerms")
    first_name: str | None = Field(default=None, alias="FirstName", max_length=255)
    last_name: str | None = Field(default=None, alias="LastName", max_length=255)
    contact_persons: list[XeroContactPerson] | None = Field(default=None, alias="ContactPersons", max_length=5)


@dataclass(frozen=True, slots=True)
class Totals:
    """Document totals as Xero will show them."""

    subtotal: Decimal
    total_tax: Decimal
    total: Decimal


def expected_line_amount(quantity: Decimal, unit_amount: Decimal, discount_rate: Decimal | None) -> Decimal:
    """The LineAmount Xero accepts: round_half_up(Quantity * UnitAmount * (1 - DiscountRate/100), 2)."""
    rate = discount_rate if discount_rate is not None else Decimal(0)
    return round_half_up(quantity * unit_amount * (1 - rate / 100), 2)


def xero_totals(invoice: XeroInvoice | XeroBill | XeroCreditNote) -> Totals:
    """SubTotal, TotalTax and Total that Xero will compute for this payload.

    Uses each line's TaxAmount as sent (a line without one counts as zero tax, since we always send it)
    and each LineAmount as sent (or the formula when absent). NoTax counts no tax at all.
    """
    lines = invoice.line_items or []
    line_sum = sum(
        (
            li.line_amount
            if li.line_amount is not None
            else expected_line_amount(li.quantity, li.unit_amount, li.discount_rate)
            for li in lines
        ),
        Decimal(0),
    )
    tax_sum = sum((li.tax_amount or Decimal(0) for li in lines), Decimal(0))
    match invoice.line_amount_types:
        case LineAmountTypes.INCLUSIVE:
            return Totals(subtotal=line_sum - tax_sum, total_tax=tax_sum, total=line_sum)
        case LineAmountTypes.NO_TAX:
            return Totals(subtotal=line_sum, total_tax=Decimal(0), total=line_sum)
        case LineAmountTypes.EXCLUSIVE | None:
            # Xero's default when LineAmountTypes is omitted is Exclusive.
            return Totals(subtotal=line_sum, total_tax=tax_sum, total=line_sum + tax_sum)

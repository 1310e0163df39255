"""Pydantic models of Cin7 Core suppliers and purchases (``supplier``, ``purchaseList``, ``advanced-purchase?ID=``).

Kept apart from `mappings.cin7core` (sales and customers) only for size; they share its lenient value
parsers. Two quirks of Cin7's purchase JSON are absorbed here so no mapping has to know them: a simple
purchase holds one ``Invoice`` (and ``CreditNote``) object where an advanced one holds an array, and the
simple-purchase examples spell the invoice number ``InvocieNumber``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from .cin7core import (
    Amount,
    Cin7Address,
    Cin7CreditNote,
    Cin7CustomerContact,
    Cin7DateTime,
    Cin7Invoice,
    Currency,
    EnumText,
    Guid,
    InvoiceStatusText,
    OptionalAmount,
    _Cin7Model,
    _guid,
    _ListOf,
    _none_as_empty_list,
    default_contact_of,
    primary_email_of,
)

__all__ = [
    "Cin7Purchase",
    "Cin7PurchaseCreditNote",
    "Cin7PurchaseInvoice",
    "Cin7PurchaseListRow",
    "Cin7Supplier",
    "Cin7SupplierChange",
]

# The documented key first: when both are present the documented one wins.
_INVOICE_NUMBER_KEYS = ("InvoiceNumber", "invoice_number")
_MISSPELT_INVOICE_NUMBER = "InvocieNumber"


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class Cin7Supplier(_Cin7Model):
    """A row of ``GET supplier`` (``SupplierList[]``).

    ``account_payable`` is the supplier's payable control account in Cin7: it says where the debt sits,
    not what was bought, so it is never a bill line's account. Suppliers have no e-mail or website of
    their own; both live on their people (``contacts``).
    """

    id: Annotated[str, BeforeValidator(_guid)] = Field(alias="ID")
    name: str
    currency: Currency = None
    payment_term: str | None = None
    tax_rule: str | None = None
    account_payable: str | None = None
    tax_number: str | None = None
    status: EnumText = None
    last_modified_on: Cin7DateTime = None
    addresses: _ListOf[Cin7Address] = Field(default_factory=list)
    contacts: _ListOf[Cin7CustomerContact] = Field(default_factory=list)

    @property
    def default_contact(self) -> Cin7CustomerContact | None:
        """The contact marked Default, else the first one."""
        return default_contact_of(self.contacts)

    @property
    def primary_email(self) -> str | None:
        """E-mail of the Default contact, else the first non-empty one; trimmed; None when there is none."""
        return primary_email_of(self.contacts)

    @property
    def website(self) -> str | None:
        """The Default contact's website, else the first one given (the resolver matches on its domain)."""
        main = self.default_contact
        ordered = [main, *self.contacts] if main is not None else self.contacts
        return next((c.website.strip() for c in ordered if c is not None and c.website and c.website.strip()), None)


class Cin7PurchaseInvoice(Cin7Invoice):
    """One invoice (a supplier's bill) of a purchase: a sale invoice's shape, ``task_id`` in an advanced purchase.

    ``invoice_number`` is the supplier's own number: read from ``InvoiceNumber``, else from the
    ``InvocieNumber`` the simple-purchase examples send. Totals are in the supplier's currency.
    """

    invoicing_and_receiving_number: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _either_spelling(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or _MISSPELT_INVOICE_NUMBER not in data:
            return data
        if all(_blank(data.get(key)) for key in _INVOICE_NUMBER_KEYS):
            return {**data, "InvoiceNumber": data[_MISSPELT_INVOICE_NUMBER]}
        return data


class Cin7PurchaseCreditNote(Cin7CreditNote):
    """A purchase's credit note (money the supplier owes back): a sale credit note's shape.

    ``refunds`` are the supplier's refunds; ``Unstock`` (stock sent back) is ignored. A simple purchase
    that was never credited holds one with status NOT AVAILABLE and a blank number.
    """


def _one_or_many(value: object) -> object:
    """A simple purchase's single object as a one-item list; None (or an empty object) as an empty one."""
    if isinstance(value, Mapping):
        return [value] if value else []
    return _none_as_empty_list(value)


_Invoices = Annotated[list[Cin7PurchaseInvoice], BeforeValidator(_one_or_many)]
_CreditNotes = Annotated[list[Cin7PurchaseCreditNote], BeforeValidator(_one_or_many)]


class Cin7Purchase(_Cin7Model):
    """The body of ``GET advanced-purchase?ID=`` for simple, advanced and service purchases alike.

    ``Invoice`` and ``CreditNote`` are one object in a simple purchase and arrays in an advanced one;
    both come out as lists (`invoices`, `credit_notes`). ``currency_rate`` is base units per supplier unit.
    """

    id: Annotated[str, BeforeValidator(_guid)] = Field(alias="ID")
    supplier: str | None = None
    supplier_id: Guid = Field(default=None, alias="SupplierID")
    base_currency: Currency = None
    supplier_currency: Currency = None
    currency_rate: OptionalAmount = None
    tax_rule: str | None = None
    tax_calculation: EnumText = None
    terms: str | None = None
    order_number: str | None = None
    order_date: Cin7DateTime = None
    status: EnumText = None
    type: EnumText = None
    approach: EnumText = None
    combined_invoice_status: EnumText = None
    combined_payment_status: EnumText = None
    last_updated_date: Cin7DateTime = None
    invoice_list: _Invoices = Field(default_factory=list, alias="Invoice")
    credit_note_list: _CreditNotes = Field(default_factory=list, alias="CreditNote")

    @property
    def invoices(self) -> list[Cin7PurchaseInvoice]:
        """The purchase's invoices, whether Cin7 sent one object (simple) or an array (advanced)."""
        return list(self.invoice_list)

    @property
    def credit_notes(self) -> list[Cin7PurchaseCreditNote]:
        """The purchase's credit notes, in either shape."""
        return list(self.credit_note_list)

    @property
    def label(self) -> str:
        """How messages name the purchase: its order number (what the operator searches Cin7 for) and ID."""
        number = (self.order_number or "").strip()
        return f"purchase {number} ({self.id})" if number else f"purchase {self.id}"

    @property
    def is_simple(self) -> bool:
        """A Simple Purchase: one invoice without its own TaskID, keyed on the purchase itself."""
        return self.type == "SIMPLE PURCHASE"


class Cin7SupplierChange(_Cin7Model):
    """What the supplier poll reads of a ``supplier`` row: which supplier, its name, and when it last changed."""

    id: Annotated[str, BeforeValidator(_guid)] = Field(alias="ID")
    name: str | None = None
    last_modified_on: Cin7DateTime = None


class Cin7PurchaseListRow(_Cin7Model):
    """A row of ``GET purchaseList``; its watermark is ``last_updated_date`` (purchases have no ``Updated``).

    The ``invoice_*`` fields describe the purchase's first bill only, so an advanced purchase with several
    bills needs its detail; amounts are in the supplier's currency.
    """

    id: Annotated[str, BeforeValidator(_guid)] = Field(alias="ID")
    order_number: str | None = None
    order_date: Cin7DateTime = None
    status: EnumText = None
    type: EnumText = None
    supplier: str | None = None
    supplier_id: Guid = Field(default=None, alias="SupplierID")
    supplier_currency: Currency = None
    base_currency: Currency = None
    invoice_number: str | None = None
    invoice_date: Cin7DateTime = None
    invoice_due_date: Cin7DateTime = None
    invoice_amount: Amount = Decimal(0)
    paid_amount: Amount = Decimal(0)
    invoice_status: InvoiceStatusText = None
    combined_invoice_status: EnumText = None
    combined_payment_status: EnumText = None
    credit_note_number: str | None = None
    credit_note_status: InvoiceStatusText = None
    last_updated_date: Cin7DateTime = None

"""What a correct sync makes in Xero of generated suppliers and purchases: ACCPAY bills, their payments,
supplier credit notes, supplier contacts (with at most five ContactPersons) and supplier/customer merges.

Bills are keyed on the purchase ``ID`` plus the bill's ``TaskID``: the supplier's invoice number goes to Xero's
``InvoiceNumber``, which Xero does not keep unique (xero.md "Bills").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pipeline.standins.generator.expectations import settlement_expectations
from pipeline.standins.generator.purchase_documents import bill_number, bills_of, credit_notes_of
from pipeline.standins.generator.purchase_tables import XERO_MAX_CONTACT_PERSONS
from pipeline.standins.generator.settlement import amount, document_day
from pipeline.standins.generator.values import ONE

BillOutcome = Literal["synced", "ignored"]
_XERO_RATE_STEP = Decimal("0.000001")


@dataclass(frozen=True)
class BillExpectation:
    """The Xero ACCPAY bill of one Cin7 purchase invoice (purchase ``ID`` + ``TaskID``) after a correct sync."""

    purchase_id: str
    task_id: str
    supplier_id: str
    #: The supplier's invoice number (Cin7 ``InvoiceNumber``/``InvocieNumber``) -> Xero ``InvoiceNumber``.
    invoice_number: str
    #: ``ignored``: DRAFT, or VOIDED before it was ever synced.
    outcome: BillOutcome
    reason: str
    #: Xero's status: ``AUTHORISED`` or ``PAID`` when synced, else the Cin7 status (never sent).
    status: str
    date: dt.date
    due_date: dt.date
    currency: str
    #: Xero's direction (supplier units per AUD): ``round(1 / Cin7 rate, 6)``.
    currency_rate: Decimal
    subtotal: Decimal
    total_tax: Decimal
    total: Decimal
    amount_paid: Decimal
    #: Supplier credit allocated to it (the sales allocation rule); the generator credits only paid bills.
    amount_credited: Decimal
    #: ``total - amount_paid - amount_credited``, never negative.
    amount_due: Decimal


@dataclass(frozen=True)
class SupplierPaymentExpectation:
    """One supplier payment (on a bill) or supplier refund (on a credit note) that must reach Xero."""

    purchase_id: str
    #: Cin7's payment ``ID``, the key to the Xero payment.
    payment_id: str
    #: The ``TaskID`` of the bill (a payment) or of the credit note (a refund) it is applied to.
    document_task_id: str
    kind: Literal["payment", "refund"]
    #: Supplier currency, 2 dp.
    amount: Decimal
    date: dt.date
    account: str
    reference: str


@dataclass(frozen=True)
class PurchaseCreditNoteExpectation:
    """What Xero must hold for one supplier credit note (an ``ACCPAYCREDIT``) after a sync."""

    purchase_id: str
    task_id: str
    credit_note_number: str
    #: The ``TaskID`` of the bill it credits.
    bill_task_id: str
    status: str
    #: ``synced`` = an AUTHORISED credit note of a synced bill; DRAFT and VOIDED ones are ``ignored``.
    outcome: BillOutcome
    subtotal: Decimal
    total_tax: Decimal
    total: Decimal
    allocated: Decimal
    refunded: Decimal
    remaining_credit: Decimal


@dataclass(frozen=True)
class ContactPersonExpectation:
    """One of a Xero contact's ``ContactPersons``."""

    first_name: str
    last_name: str
    email: str
    include_in_emails: bool


@dataclass(frozen=True)
class SupplierContactExpectation:
    """The Xero contact of one Cin7 supplier: its primary person, up to five more, and who was left out."""

    supplier_id: str
    #: Trimmed, as Xero names are compared.
    name: str
    #: The ABN without spaces ("" when the supplier has none).
    tax_number: str
    currency: str
    #: The ``Default: true`` Cin7 contact fills the contact's own name and e-mail fields.
    first_name: str
    last_name: str
    email: str
    contact_persons: tuple[ContactPersonExpectation, ...]
    #: Names of the Cin7 people beyond Xero's five ContactPersons, in Cin7's order.
    left_out: tuple[str, ...]
    #: The Cin7 customer that is the same business (one Xero contact for both), if any.
    customer_id: str | None


@dataclass(frozen=True)
class SupplierCustomerMerge:
    """A Cin7 supplier and a Cin7 customer that are one business and must be one Xero contact."""

    supplier_id: str
    customer_id: str
    name: str
    #: The ABN both carry, without spaces.
    tax_number: str


def xero_rate(cin7_rate: Any) -> Decimal:
    """Xero's ``CurrencyRate`` (foreign units per AUD) for a Cin7 rate (AUD per foreign unit)."""
    return (ONE / Decimal(str(cin7_rate))).quantize(_XERO_RATE_STEP, rounding=ROUND_HALF_UP)


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last


def contact_expectation(supplier: dict[str, Any], customer_id: str | None) -> SupplierContactExpectation:
    """The Xero contact a correct sync makes of ``supplier`` (its ``Default`` person first)."""
    people = list(supplier.get("Contacts") or [])
    default = next((p for p in people if p.get("Default")), people[0] if people else {})
    others = [p for p in people if p is not default]
    first, last = _split_name(str(default.get("Name") or ""))
    persons = []
    for person in others[:XERO_MAX_CONTACT_PERSONS]:
        p_first, p_last = _split_name(str(person["Name"]))
        persons.append(
            ContactPersonExpectation(
                p_first, p_last, str(person.get("Email") or ""), bool(person.get("IncludeInEmail"))
            )
        )
    return SupplierContactExpectation(
        supplier_id=supplier["ID"],
        name=str(supplier["Name"]).strip(),
        tax_number=str(supplier.get("TaxNumber") or "").replace(" ", ""),
        currency=str(supplier["Currency"]),
        first_name=first,
        last_name=last,
        email=str(default.get("Email") or ""),
        contact_persons=tuple(persons),
        left_out=tuple(str(p["Name"]) for p in others[XERO_MAX_CONTACT_PERSONS:]),
        customer_id=customer_id,
    )


def _outcome(status: str) -> tuple[BillOutcome, str]:
    if status == "DRAFT":
        return "ignored", "bill is DRAFT"
    if status == "VOIDED":
        return "ignored", "bill VOIDED before it was ever synced"
    return "synced", ""


def _shared(source: Any, target: type[Any]) -> dict[str, Any]:
    """The fields of dataclass ``source`` that ``target`` has too, by name."""
    names = {f.name for f in dataclasses.fields(target)}
    return {f.name: getattr(source, f.name) for f in dataclasses.fields(source) if f.name in names}


def purchase_expectations(
    purchase: dict[str, Any],
) -> tuple[list[BillExpectation], list[SupplierPaymentExpectation], list[PurchaseCreditNoteExpectation]]:
    """The bills, payments/refunds and credit notes a correct sync makes of one purchase.

    The settlement is the sales side's (``settlement_expectations``, so the same allocation rule), run on a
    sale-shaped view of the purchase: its credit notes as ``CreditNotes`` and each bill's number as
    ``InvoiceNumber`` whichever way the bill spells it.
    """
    bills: list[BillExpectation] = []
    payments: list[SupplierPaymentExpectation] = []
    notes: list[PurchaseCreditNoteExpectation] = []
    credit_notes = credit_notes_of(purchase)
    view = {"ID": purchase["ID"], "CreditNotes": credit_notes}
    task_of = {cn["CreditNoteNumber"]: cn["TaskID"] for cn in credit_notes}
    for bill in bills_of(purchase):
        status = str(bill["Status"]).upper()
        outcome, reason = _outcome(status)
        named = {**bill, "InvoiceNumber": bill_number(bill)}
        (paid, credited, due), sale_notes, sale_payments = settlement_expectations(view, named, "", outcome)
        total, tax = amount(bill["Total"]), amount(bill["Tax"])
        bills.append(
            BillExpectation(
                purchase_id=purchase["ID"],
                task_id=bill["TaskID"],
                supplier_id=purchase["SupplierID"],
                invoice_number=named["InvoiceNumber"],
                outcome=outcome,
                reason=reason,
                status=("PAID" if due <= 0 else "AUTHORISED") if outcome == "synced" else status,
                date=document_day(bill["InvoiceDate"]),
                due_date=document_day(bill["InvoiceDueDate"]),
                currency=str(purchase["SupplierCurrency"]),
                currency_rate=xero_rate(bill["CurrencyConversionRate"]),
                subtotal=total - tax,
                total_tax=tax,
                total=total,
                amount_paid=paid,
                amount_credited=credited,
                amount_due=due,
            )
        )
        for note in sale_notes:
            shared = _shared(note, PurchaseCreditNoteExpectation)
            notes.append(
                PurchaseCreditNoteExpectation(purchase_id=purchase["ID"], bill_task_id=bill["TaskID"], **shared)
            )
        for pay in sale_payments:
            document = bill["TaskID"] if pay.kind == "payment" else task_of[pay.document_number]
            shared = _shared(pay, SupplierPaymentExpectation)
            payments.append(SupplierPaymentExpectation(purchase_id=purchase["ID"], document_task_id=document, **shared))
    return bills, payments, notes

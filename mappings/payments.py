"""Cin7 payments and refunds -> Xero payments; Cin7 credit notes -> allocations against their invoice.

A payment applies to one invoice and a refund pays a credit note back; Xero needs both documents
already there, so the pipeline passes their Xero ids in. Cin7 does not record how much of a credit note
went against its invoice, so the allocation is derived from Cin7's own figures (`credit_allocations`):
the invoice's AmountDue in Xero ends up exactly what Cin7 says is still owed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from .cin7core import Cin7CreditNote, Cin7Invoice, Cin7InvoiceStatus, Cin7Payment, Cin7Sale
from .cin7purchases import Cin7Purchase
from .errors import MappingError, MappingProblem
from .invoice import document_currency
from .lines import check_amount, fmt_amount
from .reference import OrgReference
from .rules import MappingRules
from .util import clean_text, round_half_up
from .xero import XeroAccountRef, XeroAllocation, XeroDocumentRef, XeroPayment

__all__ = ["CreditAllocation", "credit_allocations", "map_allocation", "map_payment", "money_total"]

REFERENCE_MAX = 255
# Sorts a credit note without a date after every dated one.
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


def money_total(total: Decimal) -> Decimal:
    """A Cin7 document's total as Xero holds it: to the cent."""
    return round_half_up(total)


@dataclass(frozen=True)
class CreditAllocation:
    """How much of one credit note goes against the invoice it credits."""

    invoice: Cin7Invoice
    amount: Decimal


def _is_authorised(status: object) -> bool:
    return Cin7InvoiceStatus.parse(status) is Cin7InvoiceStatus.AUTHORISED


def credit_allocations(sale: Cin7Sale | Cin7Purchase) -> dict[str, CreditAllocation]:
    """Each authorised credit note's allocation to its invoice (or a purchase's to its bill), by credit
    note TaskID.

    Per invoice, its credit notes in date (then number) order each take what is left of the credit
    after its refunds, up to what the invoice still owes after its payments and the earlier credit
    notes. A credit note whose money was paid back, or whose invoice was already paid, allocates nothing.
    """
    allocations: dict[str, CreditAllocation] = {}
    for invoice in sale.invoices:
        number = (invoice.invoice_number or "").strip().casefold()
        notes = sorted(
            (
                note
                for note in sale.credit_notes
                if note.task_id
                and _is_authorised(note.status)
                and (note.credit_note_invoice_number or "").strip().casefold() == number
            ),
            key=lambda n: (n.credit_note_date or _FAR_FUTURE, n.credit_note_number or ""),
        )
        owed = money_total(invoice.total) - _sum(p.amount for p in invoice.payments)
        for note in notes:
            credit = money_total(note.total) - _sum(r.amount for r in note.refunds)
            amount = max(Decimal("0.00"), min(credit, owed))
            owed -= amount
            assert note.task_id is not None
            allocations[note.task_id] = CreditAllocation(invoice, amount)
    return allocations


def _sum(amounts: Iterable[Decimal]) -> Decimal:
    return sum((round_half_up(a) for a in amounts), Decimal("0.00"))


def map_payment(
    payment: Cin7Payment,
    *,
    sale: Cin7Sale | Cin7Purchase,
    target: XeroDocumentRef,
    document: str,
    rules: MappingRules,
    reference: OrgReference,
) -> XeroPayment:
    """The Xero payment for a Cin7 payment line (`target` is the invoice or bill, or for a refund the
    credit note); `sale` is the sale or purchase whose currency it is in.

    `document` names it in messages ("payment 3f2a… of invoice INV-1"). Raises MappingError with every
    problem: no date, an amount that is not positive or not whole cents, an account that is not a Xero
    bank account, a suspicious currency rate.
    """
    problems: list[MappingProblem] = []
    where = f" of {document}"
    amount_problem = check_amount("Amount", payment.amount, where)
    if amount_problem is not None:
        problems.append(amount_problem)
    elif payment.amount <= 0:
        problems.append(
            MappingProblem(
                "Amount",
                fmt_amount(payment.amount),
                f"the amount{where} is {fmt_amount(payment.amount)}; a Xero payment must be positive",
            )
        )
    elif payment.amount != round_half_up(payment.amount):
        problems.append(
            MappingProblem(
                "Amount",
                fmt_amount(payment.amount),
                f"the amount{where} is {fmt_amount(payment.amount)}, not whole cents",
            )
        )
    day = payment.date_paid.date() if payment.date_paid is not None else None
    if day is None:
        problems.append(MappingProblem("DatePaid", None, f"{document} has no DatePaid"))
    account: str | None = None
    try:
        account = rules.payment_account_for(payment.account, bank_accounts=reference.payment_account_codes, where=where)
    except MappingError as exc:
        problems.append(MappingProblem("Account", exc.value, exc.message))
    # The payment's rate and the sale's are both Cin7's CurrencyRate field, so either is named the same.
    _, rate = document_currency(
        sale, payment.currency_rate, own_field="CurrencyRate", document=document, problems=problems
    )
    if problems:
        raise MappingError.from_problems(problems)
    assert day is not None and account is not None
    is_refund = target.credit_note_id is not None
    reference_text = clean_text(payment.reference)
    return XeroPayment(
        invoice=None if is_refund else target,
        credit_note=target if is_refund else None,
        account=XeroAccountRef(code=account),
        date=day,
        amount=round_half_up(payment.amount),
        currency_rate=rate,
        reference=reference_text[:REFERENCE_MAX] if reference_text else None,
    )


def map_allocation(
    note: Cin7CreditNote, allocation: CreditAllocation, *, invoice_id: str, credit_note_id: str
) -> XeroAllocation:
    """The allocation of a credit note to its invoice, dated when both exist."""
    dates: list[date] = [
        moment.date() for moment in (note.credit_note_date, allocation.invoice.invoice_date) if moment is not None
    ]
    if not dates:
        raise MappingError(
            "CreditNoteDate", None, f"credit note {note.credit_note_number} and its invoice have no dates"
        )
    return XeroAllocation(
        invoice=XeroDocumentRef(invoice_id=invoice_id),
        credit_note=XeroDocumentRef(credit_note_id=credit_note_id),
        amount=allocation.amount,
        date=max(dates),
    )

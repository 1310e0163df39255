"""Cin7 payment-term names: parsed once, used for invoice due dates and Xero contact payment terms.

Cin7 payment terms are free-text names chosen by the user. We understand the common forms below and refuse
everything else, because a wrong due date on an invoice is worse than an operator being asked once.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import assert_never

from .errors import MappingError
from .rules import Side
from .xero import PaymentTermType, XeroPaymentTerm, XeroPaymentTerms

__all__ = ["ParsedTerms", "TermsKind", "due_date_from_terms", "parse_terms", "xero_payment_terms"]


class TermsKind(StrEnum):
    """The shapes of payment term we understand."""

    DAYS_AFTER_INVOICE = "DAYS_AFTER_INVOICE"
    DAY_OF_FOLLOWING_MONTH = "DAY_OF_FOLLOWING_MONTH"
    END_OF_FOLLOWING_MONTH = "END_OF_FOLLOWING_MONTH"
    END_OF_MONTH = "END_OF_MONTH"


@dataclass(frozen=True, slots=True)
class ParsedTerms:
    """A payment term: ``kind`` and, where it applies, a day count or day of month."""

    kind: TermsKind
    day: int = 0


_DAYS = re.compile(r"^(?:net\s*(\d{1,3})(?:\s*days?)?|(\d{1,3})\s*days?(?:\s+net)?)$")
_DAY_OF_FOLLOWING = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?\s+(?:day\s+)?of\s+(?:the\s+)?(?:following|next)\s+month$")
_SAME_DAY = {"", "due on receipt", "on receipt", "cod", "c.o.d.", "cash on delivery", "immediate"}
_END_OF_FOLLOWING = {"end of following month", "end of next month", "eofm"}
_END_OF_MONTH = {"end of month", "eom", "end of the month", "end of current month"}


def parse_terms(terms: str | None) -> ParsedTerms | None:
    """The term for a Cin7 name (case and spacing ignored); None when the form is not one we understand.

    Blank/None means "no terms": due on the invoice date.
    """
    text = " ".join((terms or "").split()).casefold()
    if text in _SAME_DAY:
        return ParsedTerms(TermsKind.DAYS_AFTER_INVOICE, 0)
    if text in _END_OF_FOLLOWING:
        return ParsedTerms(TermsKind.END_OF_FOLLOWING_MONTH)
    if text in _END_OF_MONTH:
        return ParsedTerms(TermsKind.END_OF_MONTH)
    if match := _DAYS.match(text):
        return ParsedTerms(TermsKind.DAYS_AFTER_INVOICE, int(match.group(1) or match.group(2)))
    if match := _DAY_OF_FOLLOWING.match(text):
        day = int(match.group(1))
        if 1 <= day <= 31:
            return ParsedTerms(TermsKind.DAY_OF_FOLLOWING_MONTH, day)
    return None


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _following_month(d: date) -> tuple[int, int]:
    return (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)


def due_date_from_terms(invoice_date: date, terms: str | None) -> date:
    """Due date for an invoice dated ``invoice_date`` under Cin7 payment ``terms``.

    "N days" adds N days; "Due on receipt", "COD" and blank are due the same day; "Nth of following month"
    is day N of the next month (clamped to its length, so the 31st in February is its last day);
    "End of following month" and "End of month"/"EOM" are the last day of the next/same month.
    Raises MappingError for any other form.
    """
    parsed = parse_terms(terms)
    if parsed is None:
        raise MappingError(
            "Terms",
            terms,
            f"unknown Cin7 payment terms {terms!r}: cannot compute the due date; use 'N days', "
            "'Due on receipt', 'Nth of following month', 'End of following month' or 'End of month', "
            "or set the invoice due date in Cin7",
        )
    match parsed.kind:
        case TermsKind.DAYS_AFTER_INVOICE:
            return invoice_date + timedelta(days=parsed.day)
        case TermsKind.DAY_OF_FOLLOWING_MONTH:
            year, month = _following_month(invoice_date)
            return date(year, month, min(parsed.day, _last_day(year, month)))
        case TermsKind.END_OF_FOLLOWING_MONTH:
            year, month = _following_month(invoice_date)
            return date(year, month, _last_day(year, month))
        case TermsKind.END_OF_MONTH:
            return date(invoice_date.year, invoice_date.month, _last_day(invoice_date.year, invoice_date.month))
        case _:
            assert_never(parsed.kind)


def xero_payment_terms(terms: str | None, *, side: Side = "sales") -> XeroPaymentTerms | None:
    """A contact's Xero payment terms for a Cin7 PaymentTerm; None when blank or not understood.

    ``side`` "sales" sets a customer's ``Sales`` terms, "purchases" a supplier's ``Bills`` terms.
    """
    if terms is None or not terms.strip():
        return None
    parsed = parse_terms(terms)
    if parsed is None:
        return None
    match parsed.kind:
        case TermsKind.DAYS_AFTER_INVOICE:
            term = XeroPaymentTerm(day=parsed.day, type=PaymentTermType.DAYSAFTERBILLDATE)
        case TermsKind.DAY_OF_FOLLOWING_MONTH:
            term = XeroPaymentTerm(day=parsed.day, type=PaymentTermType.OFFOLLOWINGMONTH)
        case TermsKind.END_OF_FOLLOWING_MONTH:
            # Xero clamps day 31 to the month's last day.
            term = XeroPaymentTerm(day=31, type=PaymentTermType.OFFOLLOWINGMONTH)
        case TermsKind.END_OF_MONTH:
            term = XeroPaymentTerm(day=31, type=PaymentTermType.OFCURRENTMONTH)
        case _:
            assert_never(parsed.kind)
    return XeroPaymentTerms(sales=term) if side == "sales" else XeroPaymentTerms(bills=term)

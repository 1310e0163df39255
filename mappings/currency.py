"""Exchange rates: Cin7 quotes base units per foreign unit, Xero foreign units per base unit.

An AUD company selling in USD has a Cin7 rate of about 1.45 (AUD for one USD); Xero wants about 0.69
(USD for one AUD). Sending Cin7's number unchanged values every foreign invoice at the wrong AUD amount,
and sending none lets Xero apply the XE.com day rate, so a suspicious rate stops the document instead.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from .errors import MappingProblem
from .util import decimal_to_str

__all__ = ["XERO_RATE_PLACES", "document_currency_rate", "xero_currency_rate"]

# Xero keeps CurrencyRate to 6 decimal places.
XERO_RATE_PLACES = Decimal("0.000001")


def xero_currency_rate(
    cin7_rate: Decimal | None, *, currency: str | None, base_currency: str | None, document: str, field: str
) -> tuple[Decimal | None, MappingProblem | None]:
    """Xero's CurrencyRate for a document (None in the base currency), or the problem that stops it.

    `cin7_rate` is the document's own rate (or its sale's); `document` names it in messages
    ("invoice INV-1") and `field` is the Cin7 field the rate came from.
    """
    if currency is None or base_currency is None or currency == base_currency:
        if cin7_rate is not None and cin7_rate != 1:
            return None, MappingProblem(
                field,
                decimal_to_str(cin7_rate),
                f"{document} is in the base currency {base_currency or currency} but carries currency rate "
                f"{decimal_to_str(cin7_rate)}; a base-currency document has rate 1: fix the rate in Cin7",
            )
        return None, None
    if cin7_rate is None or cin7_rate <= 0 or cin7_rate == 1:
        shown = "no currency rate" if cin7_rate is None else f"currency rate {decimal_to_str(cin7_rate)}"
        return None, MappingProblem(
            field,
            None if cin7_rate is None else decimal_to_str(cin7_rate),
            f"{document} is in {currency} (base {base_currency}) with {shown}; Cin7's rate is {base_currency} for "
            f"one {currency} and must be positive and not 1: set the rate in Cin7",
        )
    return (Decimal(1) / cin7_rate).quantize(XERO_RATE_PLACES, rounding=ROUND_HALF_UP), None


def document_currency_rate(
    own_rate: Decimal | None,
    header_rate: Decimal | None,
    *,
    own_field: str,
    currency: str | None,
    base_currency: str | None,
    document: str,
) -> tuple[Decimal | None, MappingProblem | None]:
    """`xero_currency_rate` of a document's own rate when Cin7 gives one, else of its header's.

    Each invoice or credit note may be converted at its own rate; the header's ``CurrencyRate`` (the
    sale's or purchase's) is the fallback.
    """
    if own_rate is not None:
        return xero_currency_rate(
            own_rate, currency=currency, base_currency=base_currency, document=document, field=own_field
        )
    return xero_currency_rate(
        header_rate, currency=currency, base_currency=base_currency, document=document, field="CurrencyRate"
    )

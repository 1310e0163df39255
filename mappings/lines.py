"""Cin7 document lines -> Xero line items, at Xero's precision, with their tax checked against both rates.

Shared by every document kind that has lines: invoices, credit notes and bills (``LineContext.side``). Cin7 keeps up
to 4 dp; Xero keeps LineAmount and TaxAmount at 2 dp and UnitAmount at 4 (with unitdp=4). Each line goes
at Xero's own line amount, round(Quantity x UnitAmount x (1 - Discount/100), 2), and Cin7's tax rounded to
the cent; what that moves in the totals is put right by one rounding line (`mappings.rounding`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .cin7core import Cin7AdditionalCharge, Cin7Line
from .errors import MappingError, MappingProblem
from .reference import OrgReference
from .rules import MappingRules, Side
from .util import CENT, clean_text, decimal_to_str, round_half_up
from .xero import XeroLineItem, XeroLineTracking, XeroTaxType, expected_line_amount

__all__ = ["DESCRIPTION_MAX", "LineSource", "check_amount", "fmt_amount", "map_lines"]

DESCRIPTION_MAX = 4000
_NO_DESCRIPTION = "(no description)"
_FOUR_DP = Decimal("0.0001")
# Beyond these an amount is a typing or export error, not a price: Xero would refuse or overflow it.
AMOUNT_LIMIT = Decimal("1e12")
AMOUNT_MAX_PLACES = 10
# Cin7 rounds each line's tax from a 4-dp net amount; anything further from the rate than this is not rounding.
TAX_TOLERANCE = CENT

LineSource = Cin7Line | Cin7AdditionalCharge


def fmt_amount(value: Decimal) -> str:
    """Amounts in messages: at least cents, so "14.00" reads as money, but never hide extra places."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(CENT)
    return decimal_to_str(value)


def check_amount(field: str, value: Decimal | None, where: str) -> MappingProblem | None:
    """A problem when an amount is out of any plausible range or has more places than a ledger holds."""
    if value is None:
        return None
    exponent = value.as_tuple().exponent
    if not value.is_finite() or not isinstance(exponent, int):
        return MappingProblem(field, str(value), f"{field}{where} is not a number ({value})")
    if abs(value) >= AMOUNT_LIMIT:
        return MappingProblem(
            field, decimal_to_str(value), f"{field}{where} is {decimal_to_str(value)}, beyond ±{AMOUNT_LIMIT:,.0f}"
        )
    if -exponent > AMOUNT_MAX_PLACES:
        return MappingProblem(
            field,
            decimal_to_str(value),
            f"{field}{where} is {decimal_to_str(value)}, with more than {AMOUNT_MAX_PLACES} decimal places",
        )
    return None


@dataclass(frozen=True)
class LineContext:
    """What every line of one document is mapped with."""

    document: str
    default_tax_rule: str | None
    fallback_account: str | None
    rules: MappingRules
    reference: OrgReference
    #: True when Cin7's prices include tax, False when not, None when the document's TaxCalculation is unknown.
    tax_inclusive: bool | None
    #: Xero takes no line discount on this document (credit notes, bills): the discount goes into the price.
    fold_discount: bool = False
    #: Sales or purchases: which tax table the rules look rules up in, and which default account they name.
    side: Side = "sales"
    #: The tracking options every line carries (the sale's sales representative).
    tracking: tuple[XeroLineTracking, ...] = ()


def _label(number: int, line: LineSource) -> str:
    if isinstance(line, Cin7Line):
        ident = (line.sku or "").strip() or (line.name or "").strip()
        return f"line {number} (SKU {ident})" if ident else f"line {number}"
    desc = (line.description or "").strip()
    return f"line {number} (charge {desc})" if desc else f"line {number} (additional charge)"


def _description(rules: MappingRules, line: LineSource) -> str:
    if isinstance(line, Cin7Line):
        text = rules.describe(sku=line.sku, name=line.name)
        comment = (line.comment or "").strip()
        if comment:
            text = f"{text}\n{comment}" if text else comment
    else:
        text = (line.description or "").strip()
    # Xero rejects an empty Description; its limit is 4000 and a cut description harms nobody.
    return (text or _NO_DESCRIPTION)[:DESCRIPTION_MAX]


def map_lines(sources: Sequence[LineSource], ctx: LineContext, problems: list[MappingProblem]) -> list[XeroLineItem]:
    """Every line worth sending (a line with no quantity and no amount is not), problems appended."""
    items: list[XeroLineItem] = []
    for number, line in enumerate(sources, start=1):
        if line.quantity == 0 and line.total == 0:
            continue
        items.append(_map_line(number, line, ctx, problems))
    return items


def _map_line(number: int, line: LineSource, ctx: LineContext, problems: list[MappingProblem]) -> XeroLineItem:
    label = _label(number, line)
    where = f" on {label} of {ctx.document}"
    field = f"Lines[{number}]"
    rule = clean_text(line.tax_rule) or clean_text(ctx.default_tax_rule) or ""
    tax_type: XeroTaxType | None = None
    try:
        tax_type = ctx.rules.tax_type_for(rule, where=where, side=ctx.side)
    except MappingError as exc:
        problems.append(MappingProblem(f"{field}.TaxRule", exc.value, exc.message))
    account_code: str | None = None
    try:
        account_code = ctx.rules.account_for(
            line.account,
            fallback=ctx.fallback_account,
            valid_accounts=ctx.reference.account_codes,
            where=where,
            side=ctx.side,
        )
    except MappingError as exc:
        problems.append(MappingProblem(f"{field}.Account", exc.value, exc.message))
    amounts_ok = _check_amounts(line, field, where, problems)
    discount_rate = line.discount if line.discount != 0 else None
    line_amount = expected_line_amount(line.quantity, line.price, discount_rate) if amounts_ok else Decimal(0)
    unit_amount = line.price
    if amounts_ok:
        _check_line_total(line, line_amount, field, where, problems)
        if tax_type is not None:
            _check_tax(line, rule, tax_type, ctx, field, where, problems)
    if ctx.fold_discount and discount_rate is not None and amounts_ok:
        # The discounted price at Xero's 4 dp; what the last place loses over the quantity is rounding,
        # which the document's rounding line puts right against Cin7's totals.
        unit_amount = round_half_up(line.price * (1 - discount_rate / 100), 4)
        line_amount = expected_line_amount(line.quantity, unit_amount, None)
        discount_rate = None
    return XeroLineItem(
        description=_description(ctx.rules, line),
        quantity=line.quantity,
        unit_amount=unit_amount,
        discount_rate=discount_rate,
        account_code=account_code,
        tax_type=tax_type,
        tax_amount=round_half_up(line.tax) if amounts_ok else Decimal(0),
        line_amount=line_amount,
        tracking=list(ctx.tracking) or None,
    )


def _check_amounts(line: LineSource, field: str, where: str, problems: list[MappingProblem]) -> bool:
    """False when an amount cannot even be computed with (the line's other checks would only add noise)."""
    before = len(problems)
    for name, value in (
        ("Quantity", line.quantity),
        ("Price", line.price),
        ("Discount", line.discount),
        ("Tax", line.tax),
        ("Total", line.total),
    ):
        problem = check_amount(f"{field}.{name}", value, where)
        if problem is not None:
            problems.append(problem)
    if len(problems) > before:
        return False
    for name, value in (("Quantity", line.quantity), ("Price", line.price)):
        if value != value.quantize(_FOUR_DP):
            problems.append(
                MappingProblem(
                    f"{field}.{name}",
                    fmt_amount(value),
                    f"{name.lower()} {fmt_amount(value)}{where} has more than 4 decimal places; Xero keeps at most 4",
                )
            )
    if not Decimal(0) <= line.discount <= Decimal(100):
        problems.append(
            MappingProblem(
                f"{field}.Discount",
                fmt_amount(line.discount),
                f"discount {fmt_amount(line.discount)}%{where} is not a percentage between 0 and 100",
            )
        )
    return True


def _check_line_total(
    line: LineSource, line_amount: Decimal, field: str, where: str, problems: list[MappingProblem]
) -> None:
    # Cin7's 4-dp total and Xero's 2-dp amount come from the same product: more than a cent apart,
    # the line's own numbers disagree and no rounding explains it.
    if abs(line.total - line_amount) > CENT:
        discount = f" less {fmt_amount(line.discount)}%" if line.discount else ""
        problems.append(
            MappingProblem(
                f"{field}.Total",
                fmt_amount(line.total),
                f"Cin7 line total {fmt_amount(line.total)}{where} differs from {fmt_amount(line.quantity)} x "
                f"{fmt_amount(line.price)}{discount} = {fmt_amount(line_amount)}; fix the line in Cin7",
            )
        )


def _check_tax(
    line: LineSource,
    rule: str,
    tax_type: XeroTaxType,
    ctx: LineContext,
    field: str,
    where: str,
    problems: list[MappingProblem],
) -> None:
    """The Xero tax type's rate equals the Cin7 rule's, and the line's tax is that rate of the line."""
    xero_rate: Decimal | None = None
    if ctx.reference.xero_tax_rates is not None:
        xero_rate = ctx.reference.xero_tax_rates.get(tax_type.value)
        if xero_rate is None:
            problems.append(
                MappingProblem(
                    f"{field}.TaxRule",
                    rule,
                    f"Cin7 tax rule {rule!r}{where} maps to Xero tax type {tax_type}, which is not an active tax "
                    "rate in Xero: activate it in Xero or map the rule to another type in the rules file",
                )
            )
            return
    cin7_rate = ctx.reference.cin7_rate(rule)
    if cin7_rate is not None and xero_rate is not None and cin7_rate != xero_rate:
        problems.append(
            MappingProblem(
                f"{field}.TaxRule",
                rule,
                f"Cin7 tax rule {rule!r}{where} is {fmt_rate(cin7_rate)}% but maps to Xero tax type {tax_type} "
                f"at {fmt_rate(xero_rate)}%: map it to a Xero tax type of the same rate in the rules file",
            )
        )
        return
    rate = cin7_rate if cin7_rate is not None else xero_rate
    if rate is None or ctx.tax_inclusive is None:
        return
    net = line.quantity * line.price * (1 - line.discount / 100)
    expected = net * rate / (100 + rate) if ctx.tax_inclusive else net * rate / 100
    if abs(line.tax - expected) > TAX_TOLERANCE:
        basis = "tax-inclusive " if ctx.tax_inclusive else ""
        problems.append(
            MappingProblem(
                f"{field}.Tax",
                fmt_amount(line.tax),
                f"Cin7 tax {fmt_amount(line.tax)}{where} is not {fmt_rate(rate)}% (tax rule {rule!r}, Xero "
                f"{tax_type}) of the {basis}line amount {fmt_amount(round_half_up(net, 4))}, which is "
                f"{fmt_amount(round_half_up(expected))}: fix the line's tax or its tax rule in Cin7",
            )
        )


def fmt_rate(rate: Decimal) -> str:
    """A percentage without trailing zeros: 10, 12.5, 0."""
    return format(rate.normalize(), "f")

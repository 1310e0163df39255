"""One rounding line that makes Xero's SubTotal, TotalTax and Total equal Cin7's to the cent.

Cin7 keeps amounts to 4 dp and rounds its header totals once; Xero rounds every line to 2 dp and adds the
rounded lines. The two can differ by a cent or a few. A small difference is Xero's rounding, put right by
one line on the organisation's Rounding account; a larger one is a document that does not add up, and
is a mapping problem rather than something to hide.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .errors import MappingProblem
from .lines import fmt_amount
from .reference import OrgReference
from .rules import MappingRules
from .util import round_half_up
from .xero import LineAmountTypes, Totals, XeroLineItem, XeroTaxType

__all__ = ["ROUNDING_DESCRIPTION", "Cin7Totals", "rounding_line", "totals_in_xero"]

ROUNDING_DESCRIPTION = "Rounding"


@dataclass(frozen=True)
class Cin7Totals:
    """A Cin7 document's header totals, as Cin7 states them (up to 4 dp)."""

    subtotal: Decimal
    tax: Decimal
    total: Decimal


def totals_in_xero(cin7: Cin7Totals) -> Totals:
    """What Xero must show for a Cin7 document: its Tax and Total to the cent, and the subtotal between them.

    Xero's Total is always SubTotal + TotalTax; Cin7's 4-dp TotalBeforeTax, rounded on its own, can be a
    cent away from that, and the receivable and the GST are what a bookkeeper checks.
    """
    tax, total = round_half_up(cin7.tax), round_half_up(cin7.total)
    return Totals(subtotal=total - tax, total_tax=tax, total=total)


def rounding_line(
    xero: Totals,
    cin7: Cin7Totals,
    lines: list[XeroLineItem],
    *,
    amount_types: LineAmountTypes,
    rules: MappingRules,
    reference: OrgReference,
    document: str,
) -> tuple[XeroLineItem | None, list[MappingProblem]]:
    """The line to add (None when the totals already agree), or the problems that stop the document.

    Targets are Cin7's Tax and Total at 2 dp; the subtotal follows as Total - Tax, which is what Xero
    shows. When Cin7's own TotalBeforeTax disagrees with that by more than a cent, Cin7's header does not
    add up and that is reported.
    """
    target = totals_in_xero(cin7)
    subtotal, tax, total = target.subtotal, target.total_tax, target.total
    if abs(subtotal - cin7.subtotal) > Decimal("0.01"):
        return None, [
            MappingProblem(
                "TotalBeforeTax",
                fmt_amount(cin7.subtotal),
                f"{document}: Cin7's TotalBeforeTax {fmt_amount(cin7.subtotal)} plus Tax {fmt_amount(cin7.tax)} "
                f"is not its Total {fmt_amount(cin7.total)}; fix the document in Cin7",
            )
        ]
    gap_subtotal, gap_tax = subtotal - xero.subtotal, tax - xero.total_tax
    if gap_subtotal == 0 and gap_tax == 0:
        return None, []
    limit = rules.max_rounding_difference
    too_far = [
        (name, theirs, ours)
        for name, theirs, ours, gap in (
            ("SubTotal", subtotal, xero.subtotal, gap_subtotal),
            ("TotalTax", tax, xero.total_tax, gap_tax),
            ("Total", total, xero.total, gap_subtotal + gap_tax),
        )
        if abs(gap) > limit
    ]
    if too_far:
        return None, [
            MappingProblem(
                name,
                fmt_amount(theirs),
                f"{document}: the lines give Xero {name} {fmt_amount(ours)} but Cin7 says {fmt_amount(theirs)}, "
                f"{fmt_amount(abs(theirs - ours))} apart, more than rounding (max_rounding_difference "
                f"{fmt_amount(limit)} in the rules file); fix the document in Cin7",
            )
            for name, theirs, ours in too_far
        ]
    account, problems = _rounding_account(rules, reference, document)
    if account is None:
        return None, problems
    amount = gap_subtotal + gap_tax if amount_types is LineAmountTypes.INCLUSIVE else gap_subtotal
    return (
        XeroLineItem(
            description=ROUNDING_DESCRIPTION,
            quantity=Decimal(1),
            unit_amount=amount,
            account_code=account,
            tax_type=_rounding_tax_type(rules, lines, gap_tax),
            tax_amount=gap_tax,
            line_amount=amount,
        ),
        [],
    )


def _rounding_account(
    rules: MappingRules, reference: OrgReference, document: str
) -> tuple[str | None, list[MappingProblem]]:
    account = rules.rounding_account or reference.rounding_account
    if account is None:
        return None, [
            MappingProblem(
                "RoundingAccount",
                None,
                f"{document} needs a rounding line but Xero has no Rounding account (SystemAccount ROUNDING): "
                "set rounding_account in the rules file",
            )
        ]
    if reference.account_codes is not None and account not in reference.account_codes:
        return None, [
            MappingProblem(
                "RoundingAccount",
                account,
                f"{document} needs a rounding line but the rounding account {account!r} is not an active account "
                "in Xero: fix rounding_account in the rules file",
            )
        ]
    return account, []


def _rounding_tax_type(rules: MappingRules, lines: list[XeroLineItem], gap_tax: Decimal) -> XeroTaxType | None:
    """Untaxed unless the tax itself needs the cent: then the tax type that carries most of the tax."""
    if gap_tax == 0:
        return rules.rounding_tax_type
    taxed = [line for line in lines if line.tax_type is not None and line.tax_amount]
    if not taxed:
        return rules.rounding_tax_type
    return max(taxed, key=lambda line: abs(line.tax_amount or Decimal(0))).tax_type

"""What a mapping checks a document against: the organisation's accounts and tax rates, Cin7's tax rules.

The pipeline reads these from Xero and Cin7 (and caches them); the mapping only receives them. A field left
None was not read and is not checked, so a caller that has no Xero (a test, a dry run) still maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

__all__ = ["OrgReference", "tax_rule_key"]


def tax_rule_key(name: str) -> str:
    """A Cin7 tax rule name as compared: case and runs of spaces ignored (Cin7's names are typed by users)."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class OrgReference:
    """The Xero organisation's and the Cin7 account's reference data for mapping one tenant's documents."""

    #: Active Xero account codes; a line's account must be one of them.
    account_codes: frozenset[str] | None = None
    #: Codes of the Xero accounts a payment may go to (BANK, or EnablePaymentsToAccount).
    payment_account_codes: frozenset[str] | None = None
    #: The later of Xero's PeriodLockDate and EndOfYearLockDate: nothing dated on or before it is written.
    lock_date: date | None = None
    #: The Xero organisation's base currency; Cin7's must be the same.
    base_currency: str | None = None
    #: The code of Xero's Rounding account (SystemAccount ROUNDING), the rounding line's default account.
    rounding_account: str | None = None
    #: Xero TaxType -> EffectiveRate (percent) of the organisation's active tax rates.
    xero_tax_rates: Mapping[str, Decimal] | None = None
    #: tax_rule_key(Cin7 rule name) -> TaxPercent, for every Cin7 tax rule (inactive ones too: old
    #: documents still name them).
    cin7_tax_rules: Mapping[str, Decimal] | None = None

    def locked(self, day: date | None) -> bool:
        """A document dated `day` falls on or before Xero's lock date."""
        return day is not None and self.lock_date is not None and day <= self.lock_date

    def cin7_rate(self, rule: str) -> Decimal | None:
        """Cin7's percentage for a rule name, or None when Cin7's list was not read or lacks it."""
        if self.cin7_tax_rules is None:
            return None
        return self.cin7_tax_rules.get(tax_rule_key(rule))

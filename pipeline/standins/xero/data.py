"""Reference data and wire-format helpers for the Xero stand-in.

Holds the AU demo organisation's chart of accounts, tax rates and currencies (as in
``docs/conventions-for-helpers.md``), plus the money and MS-JSON date helpers that both the stand-in
and its tests rely on.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

__all__ = [
    "ACCOUNTS",
    "CURRENCIES",
    "DEFAULT_CURRENCY_RATES",
    "TAX_CLASSES",
    "TAX_RATES",
    "Account",
    "TaxRate",
    "ms_date",
    "ms_datetime",
    "parse_decimal",
    "parse_input_date",
    "parse_ms_datetime",
    "round2",
]

CENT = Decimal("0.01")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
_MS_DATE_RE = re.compile(r"^/Date\((-?\d+)([+-]\d{2}:?\d{2})?\)/$")
_NAMESPACE = uuid.UUID("6b0d3c2e-9a51-4f4b-8f0e-2a7c1d9e5b30")


def round2(value: Decimal) -> Decimal:
    """Round half-up to cents, the way Xero rounds line and tax amounts."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_decimal(value: Any) -> Decimal | None:
    """Decimal from a JSON number or numeric string; None when absent; ValueError when not numeric."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not a number")
    if isinstance(value, Decimal):
        result = value
    else:
        try:
            result = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError(f"'{value}' is not a number") from exc
    if not result.is_finite():
        raise ValueError(f"'{value}' is not a number")
    return result


def ms_date(value: dt.date) -> str:
    """``/Date(1552262400000+0000)/`` for a calendar date (midnight UTC), as Xero writes ``Date``."""
    moment = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return f"/Date({(moment - _EPOCH) // _MS}+0000)/"


def ms_datetime(value: dt.datetime) -> str:
    """``/Date(1573755038314+0000)/`` for an aware datetime, as Xero writes ``UpdatedDateUTC``."""
    return f"/Date({(value - _EPOCH) // _MS}+0000)/"


def parse_ms_datetime(value: str) -> dt.datetime:
    """Parse an MS-JSON date into an aware UTC datetime (ValueError when malformed)."""
    match = _MS_DATE_RE.match(value.strip())
    if not match:
        raise ValueError(f"'{value}' is not an MS-JSON date")
    return _EPOCH + dt.timedelta(milliseconds=int(match.group(1)))


def parse_input_date(value: Any) -> dt.date:
    """A request date: MS-JSON (what xero-python sends), ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SS``."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{value}' is not a valid date")
    text = value.strip()
    match = _MS_DATE_RE.match(text)
    if match:
        moment = _EPOCH + dt.timedelta(milliseconds=int(match.group(1)))
        offset = match.group(2)
        if offset:
            sign = 1 if offset[0] == "+" else -1
            digits = offset[1:].replace(":", "")
            moment += sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return moment.date()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a valid date") from exc


def stable_id(kind: str, key: str) -> str:
    """A deterministic UUID for reference data, so IDs survive restarts of the stand-in."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{key}"))


@dataclass(frozen=True, slots=True)
class Account:
    """One row of the chart of accounts."""

    code: str
    name: str
    type: str
    account_class: str
    tax_type: str
    usable_on_invoices: bool
    system_account: str | None = None
    bank_account_number: str | None = None

    def to_xero(self, updated: dt.datetime) -> dict[str, Any]:
        """The account as ``GET /Accounts`` returns it."""
        out: dict[str, Any] = {
            "AccountID": stable_id("account", self.code),
            "Code": self.code,
            "Name": self.name,
            "Status": "ACTIVE",
            "Type": self.type,
            "TaxType": self.tax_type,
            "Class": self.account_class,
            "EnablePaymentsToAccount": False,
            "ShowInExpenseClaims": self.type == "EXPENSE",
            "ReportingCode": self.account_class[:3],
            "ReportingCodeName": self.account_class.title(),
            "HasAttachments": False,
            "UpdatedDateUTC": ms_datetime(updated),
            "AddToWatchlist": False,
        }
        if self.system_account:
            out["SystemAccount"] = self.system_account
        if self.bank_account_number:
            out["BankAccountNumber"] = self.bank_account_number
            out["BankAccountType"] = "BANK"
            out["CurrencyCode"] = "AUD"
        return out


#: Account class -> the ``GET /TaxRates`` flag saying whether a rate applies to accounts of that class.
TAX_CLASSES = {
    "ASSET": "CanApplyToAssets",
    "EQUITY": "CanApplyToEquity",
    "EXPENSE": "CanApplyToExpenses",
    "LIABILITY": "CanApplyToLiabilities",
    "REVENUE": "CanApplyToRevenue",
}
_SALES_CLASSES = frozenset({"ASSET", "EQUITY", "LIABILITY", "REVENUE"})
_PURCHASE_CLASSES = frozenset({"ASSET", "EQUITY", "EXPENSE", "LIABILITY"})
_ZERO_RATED_CLASSES = frozenset({"LIABILITY", "REVENUE"})
_ALL_CLASSES = frozenset(TAX_CLASSES)


@dataclass(frozen=True, slots=True)
class TaxRate:
    """An AU tax rate; ``revenue``/``expenses`` say which side's documents (sales, purchases) may use it.

    ``applies_to`` is what ``GET /TaxRates`` reports per account class. It follows the spec's example
    organisation (XERO-OAS ``GET /TaxRates``: INPUT2, OUTPUT2, GSTONIMPORTS, NONE, ZERORATED), so GST on
    Imports names only liabilities. Lines are still checked by side alone, as the stand-in always has.
    """

    tax_type: str
    name: str
    rate: Decimal
    report_tax_type: str
    revenue: bool
    expenses: bool
    applies_to: frozenset[str]
    status: str = "ACTIVE"

    def to_xero(self) -> dict[str, Any]:
        """The tax rate as ``GET /TaxRates`` returns it."""
        out: dict[str, Any] = {"Name": self.name, "TaxType": self.tax_type, "ReportTaxType": self.report_tax_type}
        for account_class, flag in TAX_CLASSES.items():
            out[flag] = account_class in self.applies_to
        return out | {
            "DisplayTaxRate": float(self.rate),
            "EffectiveRate": float(self.rate),
            "Status": self.status,
            "TaxComponents": [
                {"Name": "GST", "Rate": float(self.rate), "IsCompound": False, "IsNonRecoverable": False}
            ],
        }


# The AU demo organisation's codes. Purchases code stock to 630 and freight and services to 425 and 429
# (the generator's Cin7 chart); 800 is the payable control account, which Xero keeps off document lines.
ACCOUNTS: dict[str, Account] = {
    a.code: a
    for a in (
        Account(
            "090",
            "Business Bank Account",
            "BANK",
            "ASSET",
            "BASEXCLUDED",
            False,
            bank_account_number="062-000 12345678",
        ),
        Account("200", "Sales", "REVENUE", "REVENUE", "OUTPUT", True),
        Account("260", "Other Revenue", "REVENUE", "REVENUE", "OUTPUT", True),
        Account("270", "Interest Income", "REVENUE", "REVENUE", "EXEMPTOUTPUT", True),
        Account("300", "Purchases", "DIRECTCOSTS", "EXPENSE", "INPUT", True),
        Account("400", "Advertising", "EXPENSE", "EXPENSE", "INPUT", True),
        Account("425", "Freight & Courier", "EXPENSE", "EXPENSE", "INPUT", True),
        Account("429", "General Expenses", "EXPENSE", "EXPENSE", "INPUT", True),
        Account("610", "Accounts Receivable", "CURRENT", "ASSET", "BASEXCLUDED", False, system_account="DEBTORS"),
        Account("630", "Inventory", "INVENTORY", "ASSET", "BASEXCLUDED", True),
        Account("800", "Accounts Payable", "CURRLIAB", "LIABILITY", "BASEXCLUDED", False, system_account="CREDITORS"),
        Account("820", "GST", "CURRLIAB", "LIABILITY", "BASEXCLUDED", False, system_account="GST"),
        Account("860", "Rounding", "CURRLIAB", "LIABILITY", "BASEXCLUDED", True, system_account="ROUNDING"),
    )
}

_TEN = Decimal("10.0000")
_ZERO = Decimal("0.0000")
TAX_RATES: dict[str, TaxRate] = {
    t.tax_type: t
    for t in (
        TaxRate("OUTPUT", "GST on Income", _TEN, "OUTPUT", True, False, _SALES_CLASSES),
        TaxRate("INPUT", "GST on Expenses", _TEN, "INPUT", False, True, _PURCHASE_CLASSES),
        TaxRate("CAPEXINPUT", "GST on Capital", _TEN, "CAPITALEXINPUT", False, True, _PURCHASE_CLASSES),
        TaxRate("EXEMPTOUTPUT", "GST Free Income", _ZERO, "EXEMPTOUTPUT", True, False, _ZERO_RATED_CLASSES),
        TaxRate("EXEMPTEXPORT", "GST Free Exports", _ZERO, "EXEMPTEXPORT", True, False, _ZERO_RATED_CLASSES),
        TaxRate("EXEMPTEXPENSES", "GST Free Expenses", _ZERO, "EXEMPTEXPENSES", False, True, _PURCHASE_CLASSES),
        TaxRate("EXEMPTCAPITAL", "GST Free Capital", _ZERO, "EXEMPTCAPITAL", False, True, _PURCHASE_CLASSES),
        TaxRate("INPUTTAXED", "Input Taxed", _ZERO, "INPUTTAXED", True, True, _ALL_CLASSES),
        TaxRate("BASEXCLUDED", "BAS Excluded", _ZERO, "BASEXCLUDED", True, True, _ALL_CLASSES),
        TaxRate("GSTONIMPORTS", "GST on Imports", _ZERO, "GSTONIMPORTS", False, True, frozenset({"LIABILITY"})),
        TaxRate(
            "GSTONCAPIMPORTS", "GST on Capital Imports", _ZERO, "GSTONCAPIMPORTS", False, True, frozenset({"LIABILITY"})
        ),
        # A retired custom rate: present in /TaxRates but not usable, as in real orgs.
        TaxRate("TAX001", "GST on Income (retired)", _TEN, "OUTPUT", True, False, _SALES_CLASSES, status="DELETED"),
    )
}

CURRENCIES: dict[str, str] = {
    "AUD": "Australian Dollar",
    "NZD": "New Zealand Dollar",
    "USD": "United States Dollar",
    "GBP": "British Pound",
    "EUR": "Euro",
}

# Foreign units per 1 AUD, used when an invoice in a foreign currency omits CurrencyRate.
DEFAULT_CURRENCY_RATES: dict[str, Decimal] = {
    "AUD": Decimal("1"),
    "NZD": Decimal("1.0850"),
    "USD": Decimal("0.6550"),
    "GBP": Decimal("0.5150"),
    "EUR": Decimal("0.6050"),
}

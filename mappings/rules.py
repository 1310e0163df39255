"""Mapping rules: the operator-editable tables that turn Cin7 names into Xero codes.

Defaults live in ``default_rules.toml`` next to this module; an override TOML file is deep-merged on top.
Nothing is guessed: a tax rule or account the tables do not cover is a :class:`MappingError` naming it.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator

from .errors import MappingError
from .xero import XeroTaxType

__all__ = ["DEFAULT_RULES_PATH", "MappingRules", "Side", "load_rules"]

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.toml")

_AU_TAX_TYPES = frozenset(
    {
        XeroTaxType.OUTPUT,
        XeroTaxType.INPUT,
        XeroTaxType.EXEMPTOUTPUT,
        XeroTaxType.EXEMPTEXPORT,
        XeroTaxType.EXEMPTEXPENSES,
        XeroTaxType.EXEMPTCAPITAL,
        XeroTaxType.CAPEXINPUT,
        XeroTaxType.GSTONIMPORTS,
        XeroTaxType.GSTONCAPIMPORTS,
        XeroTaxType.INPUTTAXED,
        XeroTaxType.BASEXCLUDED,
    }
)
_NZ_TAX_TYPES = frozenset({XeroTaxType.OUTPUT2, XeroTaxType.INPUT2, XeroTaxType.ZERORATEDOUTPUT, XeroTaxType.NONE})
_TEMPLATE_FIELDS = frozenset({"sku", "name"})
# The tables of region-specific tax types: an override that changes region drops the defaults of both.
_REGIONAL_TABLES = ("tax_types", "purchase_tax_types")

#: Which side of the ledger a document is on: sales (invoices, their credit notes) or purchases (bills).
Side = Literal["sales", "purchases"]


def _rule_key(name: str) -> str:
    return " ".join(name.split()).casefold()


class MappingRules(BaseModel):
    """Tables and choices for mapping Cin7 documents to Xero; see ``default_rules.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Literal["AU", "NZ"] = "AU"
    tax_types: dict[str, XeroTaxType]
    account_codes: dict[str, str] = {}
    default_revenue_account: str = "200"
    invoice_status: Literal["AUTHORISED", "DRAFT"] = "AUTHORISED"
    description_template: str = "{sku} {name}"
    # The rounding line's account; None: the organisation's Rounding account (SystemAccount ROUNDING).
    rounding_account: str | None = None
    # The largest difference between Cin7's totals and Xero's that a rounding line may absorb.
    max_rounding_difference: Decimal = Decimal("0.05")
    # Cin7 payment account -> Xero bank account code, only where they differ.
    payment_accounts: dict[str, str] = {}
    # Cin7 tax rule -> Xero TaxType for bills and supplier credit notes (Xero's purchase types differ).
    purchase_tax_types: dict[str, XeroTaxType] = {}
    # A bill line's account when the Cin7 line has none; None: such a line is a mapping problem.
    default_expense_account: str | None = None
    # Free and ISP mail domains: an e-mail there says nothing about which company a person works for.
    public_mail_domains: frozenset[str] = frozenset()
    # The Xero tracking category a sale's SalesRepresentative goes to as an option on every line
    # (e.g. "Sales Rep"); None: sales representatives are not carried to Xero.
    sales_rep_tracking_category: str | None = None

    @property
    def rounding_tax_type(self) -> XeroTaxType:
        """The untaxed type a rounding line carries: BAS Excluded in Australia, No GST in New Zealand."""
        return XeroTaxType.BASEXCLUDED if self.region == "AU" else XeroTaxType.NONE

    @field_validator("tax_types", "purchase_tax_types", mode="before")
    @classmethod
    def _upper_tax_codes(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {k: v.strip().upper() if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("tax_types", "purchase_tax_types")
    @classmethod
    def _unique_rule_names(cls, value: dict[str, XeroTaxType], info: ValidationInfo) -> dict[str, XeroTaxType]:
        seen: dict[str, str] = {}
        for name in value:
            key = _rule_key(name)
            if not key:
                raise ValueError(f"a tax rule name in {info.field_name} is blank")
            if key in seen:
                raise ValueError(f"tax rules {seen[key]!r} and {name!r} are the same name ignoring case/spaces")
            seen[key] = name
        return value

    @field_validator("rounding_account", "default_expense_account", "sales_rep_tracking_category")
    @classmethod
    def _blank_rounding_account_is_none(cls, value: str | None) -> str | None:
        return (value or "").strip() or None

    @field_validator("max_rounding_difference")
    @classmethod
    def _sensible_rounding(cls, value: Decimal) -> Decimal:
        if not Decimal(0) <= value <= Decimal(1):
            raise ValueError(f"max_rounding_difference {value} must be between 0 and 1 (a few cents)")
        return value

    @field_validator("account_codes", "payment_accounts")
    @classmethod
    def _trimmed_account_codes(cls, value: dict[str, str]) -> dict[str, str]:
        cleaned = {k.strip(): v.strip() for k, v in value.items()}
        if any(not k or not v for k, v in cleaned.items()):
            raise ValueError("an account table has a blank Cin7 or Xero account code")
        return cleaned

    @field_validator("default_revenue_account")
    @classmethod
    def _non_blank_account(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("default_revenue_account is blank")
        return value.strip()

    @field_validator("description_template")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"description_template {value!r} is not a valid template: {exc}") from exc
        unknown = fields - _TEMPLATE_FIELDS
        if unknown:
            raise ValueError(f"description_template {value!r} uses {sorted(unknown)}; only {{sku}} and {{name}}")
        return value

    @field_validator("public_mail_domains", mode="before")
    @classmethod
    def _lower_domains(cls, value: object) -> object:
        if isinstance(value, list | tuple | set | frozenset):
            return frozenset(_bare_domain(d) if isinstance(d, str) else d for d in value) - {""}
        return value

    @model_validator(mode="after")
    def _tax_types_fit_region(self) -> Self:
        allowed = _AU_TAX_TYPES if self.region == "AU" else _NZ_TAX_TYPES
        wrong = sorted(
            f"{name!r} -> {code}"
            for table in (self.tax_types, self.purchase_tax_types)
            for name, code in table.items()
            if code not in allowed
        )
        if wrong:
            raise ValueError(f"tax types not valid for a {self.region} organisation: {', '.join(wrong)}")
        return self

    def tax_type_for(self, cin7_rule: str, *, where: str = "", side: Side = "sales") -> XeroTaxType:
        """The Xero TaxType for a Cin7 tax rule name (case and spaces ignored).

        ``where`` (e.g. " on line 2 (SKU ABC)") is put in the error message. ``side`` picks the table:
        ``tax_types`` for sales, ``purchase_tax_types`` for bills, since one Cin7 rule name can mean
        OUTPUT on a sale and INPUT on a purchase. Raises MappingError naming the rule when it is blank
        or not in the table.
        """
        key = _rule_key(cin7_rule or "")
        if not key:
            raise MappingError(
                "TaxRule",
                cin7_rule,
                f"missing Cin7 tax rule{where}: set a tax rule on the line or the sale in Cin7",
            )
        table_name = "tax_types" if side == "sales" else "purchase_tax_types"
        table = self.tax_types if side == "sales" else self.purchase_tax_types
        for name, code in table.items():
            if _rule_key(name) == key:
                return code
        raise MappingError(
            "TaxRule",
            cin7_rule,
            f"unknown Cin7 tax rule {cin7_rule.strip()!r}{where}: add it to the {table_name} table in the rules file",
        )

    def account_for(
        self,
        cin7_account: str | None,
        *,
        fallback: str | None,
        valid_accounts: frozenset[str] | None,
        where: str = "",
        side: Side = "sales",
    ) -> str:
        """The Xero account code for a Cin7 account (or ``fallback`` when the line has none).

        ``account_codes`` overrides the code; otherwise it is used as is. When ``valid_accounts`` is given,
        a code outside it raises MappingError naming the code. ``side`` names the rules setting that
        supplies the fallback (``default_revenue_account`` or ``default_expense_account``) in the message.
        """
        source = (cin7_account or "").strip() or (fallback or "").strip()
        if not source:
            setting = "default_revenue_account" if side == "sales" else "default_expense_account"
            raise MappingError(
                "AccountCode",
                None,
                f"no account{where}: set the Account in Cin7 or {setting} in the rules file",
            )
        return _mapped_account(
            source,
            self.account_codes,
            valid_accounts,
            field="AccountCode",
            where=where,
            noun="unknown Xero account code",
            remedy=": it is not an active account in Xero; "
            "add it in Xero or map it in the account_codes table of the rules file",
        )

    def payment_account_for(self, cin7_account: str | None, *, bank_accounts: frozenset[str] | None, where: str) -> str:
        """The Xero bank account a Cin7 payment account maps to; MappingError naming it when it is none."""
        source = (cin7_account or "").strip()
        if not source:
            raise MappingError("Account", None, f"no payment account{where}: set the payment's Account in Cin7")
        return _mapped_account(
            source,
            self.payment_accounts,
            bank_accounts,
            field="Account",
            where=where,
            noun="Xero account",
            remedy=" is not a bank account or an account enabled for payments "
            "in Xero: map the Cin7 payment account in the payment_accounts table of the rules file",
        )

    def is_public_domain(self, domain: str | None) -> bool:
        """Whether a mail or web domain is a free or ISP one (``public_mail_domains``), subdomains included.

        Two people at gmail.com are not colleagues, so the resolver must not match a supplier by it.
        """
        bare = _bare_domain(domain or "")
        return any(bare == public or bare.endswith("." + public) for public in self.public_mail_domains)

    def describe(self, *, sku: str | None, name: str | None) -> str:
        """Line description from the template, falling back to whichever of SKU/name is present."""
        sku_text = (sku or "").strip()
        name_text = (name or "").strip()
        if sku_text and name_text:
            if sku_text.casefold() == name_text.casefold():
                return name_text
            return self.description_template.format(sku=sku_text, name=name_text).strip()
        return sku_text or name_text


def _mapped_account(
    source: str,
    table: Mapping[str, str],
    allowed: frozenset[str] | None,
    *,
    field: str,
    where: str,
    noun: str,
    remedy: str,
) -> str:
    """`source` through an account table; MappingError naming the code when `allowed` is given and lacks it.

    The message reads "<noun> '<code>' (mapped from Cin7 account '<source>')<where><remedy>", the
    "mapped from" only when the table changed the code, so the operator knows which of the two to fix.
    """
    code = table.get(source, source)
    if allowed is not None and code not in allowed:
        origin = "" if code == source else f" (mapped from Cin7 account {source!r})"
        raise MappingError(field, code, f"{noun} {code!r}{origin}{where}{remedy}")
    return code


def _bare_domain(domain: str) -> str:
    """A domain as compared: trimmed, lower-case, without a trailing dot or a leading ``www.``."""
    bare = domain.strip().rstrip(".").lower()
    return bare.removeprefix("www.")


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise MappingError("rules file", str(path), f"cannot read rules file {str(path)!r}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MappingError("rules file", str(path), f"rules file {str(path)!r} is not valid TOML: {exc}") from exc


def load_rules(override_path: Path | None = None) -> MappingRules:
    """The packaged default rules, deep-merged with ``override_path`` when given.

    When the override changes ``region``, the default (AU) tax tables (sales and purchases) are dropped
    rather than merged, since their tax types mean nothing to an organisation in another region. Raises
    MappingError for an unreadable or invalid file.
    """
    data = _read_toml(DEFAULT_RULES_PATH)
    if override_path is not None:
        override = _read_toml(override_path)
        if override.get("region", data.get("region")) != data.get("region"):
            data = {k: v for k, v in data.items() if k not in _REGIONAL_TABLES}
        data = _deep_merge(data, override)
    try:
        return MappingRules.model_validate(data)
    except ValidationError as exc:
        where = str(override_path) if override_path is not None else str(DEFAULT_RULES_PATH)
        raise MappingError("rules file", where, f"invalid mapping rules in {where!r}: {exc}") from exc

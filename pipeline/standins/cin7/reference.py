"""The Cin7 stand-in's account and reference data: ``GET me``, ``ref/tax`` and ``ref/account``.

Cin7's chart of accounts is held here; its tax rules are the generator's ``TAX_RULES``.
"""

from __future__ import annotations

import uuid
from typing import Any

from pipeline.standins.cin7.query import QueryMixin
from pipeline.standins.cin7.responses import Response, json_response
from pipeline.standins.generator import TAX_RULES
from pipeline.standins.generator.tables import PURCHASE_TAX_RULES

# Cin7's own chart. 999 exists in Cin7 (so a line can use it) but not in the Xero chart.
_ACCOUNTS: list[dict[str, Any]] = [
    {
        "Code": "090",
        "Name": "Business Bank Account",
        "Status": "ACTIVE",
        "Type": "BANK",
        "Class": "ASSET",
        "SystemAccount": None,
    },
    {
        "Code": "200",
        "Name": "Sales",
        "Status": "ACTIVE",
        "Type": "REVENUE",
        "Class": "REVENUE",
        "SystemAccount": None,
    },
    {
        "Code": "260",
        "Name": "Other Revenue",
        "Status": "ACTIVE",
        "Type": "REVENUE",
        "Class": "REVENUE",
        "SystemAccount": None,
    },
    {
        "Code": "270",
        "Name": "Interest Income",
        "Status": "ACTIVE",
        "Type": "REVENUE",
        "Class": "REVENUE",
        "SystemAccount": None,
    },
    {
        "Code": "400",
        "Name": "Advertising",
        "Status": "ACTIVE",
        "Type": "EXPENSE",
        "Class": "EXPENSE",
        "SystemAccount": None,
    },
    {
        "Code": "610",
        "Name": "Accounts Receivable",
        "Status": "ACTIVE",
        "Type": "CURRENT",
        "Class": "ASSET",
        "SystemAccount": "DEBTORS",
    },
    {
        "Code": "300",
        "Name": "Purchases",
        "Status": "ACTIVE",
        "Type": "DIRECTCOSTS",
        "Class": "EXPENSE",
        "SystemAccount": None,
    },
    {
        "Code": "425",
        "Name": "Freight & Courier",
        "Status": "ACTIVE",
        "Type": "EXPENSE",
        "Class": "EXPENSE",
        "SystemAccount": None,
    },
    {
        "Code": "429",
        "Name": "General Expenses",
        "Status": "ACTIVE",
        "Type": "EXPENSE",
        "Class": "EXPENSE",
        "SystemAccount": None,
    },
    {
        "Code": "630",
        "Name": "Inventory",
        "Status": "ACTIVE",
        "Type": "INVENTORY",
        "Class": "ASSET",
        "SystemAccount": None,
    },
    {
        "Code": "800",
        "Name": "Accounts Payable",
        "Status": "ACTIVE",
        "Type": "CURRLIAB",
        "Class": "LIABILITY",
        # Suppliers' AccountPayable must be the account Cin7 marks as accounts payable.
        "SystemAccount": "CREDITORS",
    },
    {
        "Code": "820",
        "Name": "GST",
        "Status": "ACTIVE",
        "Type": "CURRLIAB",
        "Class": "LIABILITY",
        "SystemAccount": "GST",
    },
    {
        "Code": "999",
        "Name": "Suspense Sales",
        "Status": "ACTIVE",
        "Type": "REVENUE",
        "Class": "REVENUE",
        "SystemAccount": None,
    },
]


class ReferenceMixin(QueryMixin):
    """The company, its tax rules and its chart of accounts."""

    def _me(self, query: dict[str, str], body: bytes) -> Response:
        return json_response(
            200,
            {
                "Company": "Stand-in Trading Pty Ltd",
                "Currency": "AUD",
                "TimeZone": "AUS Eastern Standard Time",
                "DefaultWeightUnits": "g",
                "DefaultDimensionsUnits": "cm",
                "LockDate": None,
            },
        )

    def _tax_rules(self, query: dict[str, str], body: bytes) -> Response:
        page, limit = self._paging(query)
        rules = []
        for rule_name, rate in TAX_RULES.items():
            percent = rate * 100
            purchase = rule_name in PURCHASE_TAX_RULES
            rules.append(
                {
                    "ID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"cin7-standin/tax/{rule_name}")),
                    "Name": rule_name,
                    "Account": "820",
                    "IsActive": True,
                    "TaxInclusive": False,
                    "TaxPercent": percent,
                    "IsTaxForSale": not purchase,
                    "IsTaxForPurchase": purchase,
                    "Components": [{"Name": rule_name, "Percent": percent, "AccountCode": "820", "Compound": False}],
                }
            )
        for flag in ("IsActive", "IsTaxForSale"):
            value = query.get(flag.lower())
            if value:
                rules = [r for r in rules if str(r[flag]).lower() == value.strip().lower()]
        chunk = rules[(page - 1) * limit : page * limit]
        return json_response(200, {"Total": len(rules), "Page": page, "TaxRuleList": chunk})

    def _accounts(self, query: dict[str, str], body: bytes) -> Response:
        page, limit = self._paging(query)
        chunk = _ACCOUNTS[(page - 1) * limit : page * limit]
        return json_response(200, {"Total": len(_ACCOUNTS), "Page": page, "AccountsList": chunk})

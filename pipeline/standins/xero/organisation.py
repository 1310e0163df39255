"""The Xero stand-in's reference-data endpoints: Organisation, Accounts, TaxRates and Currencies.

The tables themselves live in ``data.py``; this module only serves them.
"""

from __future__ import annotations

from typing import Any

from pipeline.standins.xero.data import ACCOUNTS, CURRENCIES, TAX_RATES, ms_date, ms_datetime
from pipeline.standins.xero.query import QueryMixin
from pipeline.standins.xero.responses import Request, Response


class OrganisationMixin(QueryMixin):
    """``GET /Organisation``, ``/Accounts``, ``/TaxRates`` and ``/Currencies``."""

    def _get_organisation(self, request: Request) -> Response:
        org: dict[str, Any] = {
            "OrganisationID": self._org_id,
            "APIKey": "",
            "Name": self.org_name,
            "LegalName": self.org_name,
            "PaysTax": True,
            "Version": "AU",
            "OrganisationType": "COMPANY",
            "BaseCurrency": "AUD",
            "CountryCode": "AU",
            "IsDemoCompany": False,
            "OrganisationStatus": "ACTIVE",
            "TaxNumber": "12345678901",
            "FinancialYearEndDay": 30,
            "FinancialYearEndMonth": 6,
            "SalesTaxBasis": "ACCRUALS",
            "SalesTaxPeriod": "QUARTERLY1",
            "DefaultSalesTax": "Tax Exclusive",
            "DefaultPurchasesTax": "Tax Exclusive",
            "CreatedDateUTC": ms_datetime(self._created),
            "OrganisationEntityType": "COMPANY",
            "Timezone": "AUSEASTERNSTANDARDTIME",
            "ShortCode": "!sT4nd",
            "Class": "STANDARD",
            "Edition": "BUSINESS",
            "LineOfBusiness": "Wholesale",
            "Addresses": [],
            "Phones": [],
            "ExternalLinks": [],
            "PaymentTerms": {},
        }
        if self.period_lock_date is not None:
            org["PeriodLockDate"] = ms_date(self.period_lock_date)
            org["EndOfYearLockDate"] = ms_date(self.period_lock_date)
        return self._envelope("Organisations", [org])

    def _get_accounts(self, request: Request) -> Response:
        return self._envelope("Accounts", [a.to_xero(self._created) for a in ACCOUNTS.values()])

    def _get_tax_rates(self, request: Request) -> Response:
        return self._envelope("TaxRates", [t.to_xero() for t in TAX_RATES.values()])

    def _get_currencies(self, request: Request) -> Response:
        return self._envelope("Currencies", [{"Code": c, "Description": d} for c, d in CURRENCIES.items()])

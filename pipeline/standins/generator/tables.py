"""The generator's tables: tax rules, currency rates, names, products, places and the special customers.

Every list the generator draws from is here, once; ``TAX_RULES`` is also what the Cin7 stand-in serves
as ``ref/tax``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

UNKNOWN_TAX_RULE = "Zero Rated Imports"
# 0 % in this Cin7 account, but the default rules map it to OUTPUT (GST on Income, 10 %): the mapping must
# refuse it rather than put GST-coded sales with no GST on the BAS.
ZERO_RATED_AS_GST_RULE = "Tax on Sales"
UNKNOWN_ACCOUNT = "999"
LOCK_DATE = date(2020, 6, 30)
LOCKED_INVOICE_DATE = date(2019, 5, 10)

#: Cin7 tax rule name -> rate. ``Zero Rated Imports`` exists in Cin7 but the mapping rules do not know it.
TAX_RULES: dict[str, Decimal] = {
    "GST on Income": Decimal("0.10"),
    "GST Free Income": Decimal("0"),
    "GST Free Exports": Decimal("0"),
    "BAS Excluded": Decimal("0"),
    UNKNOWN_TAX_RULE: Decimal("0"),
    ZERO_RATED_AS_GST_RULE: Decimal("0"),
    # The purchase side's rules (bills and supplier credit notes); ``ref/tax`` flags them IsTaxForPurchase.
    "GST on Expenses": Decimal("0.10"),
    "GST Free Expenses": Decimal("0"),
}
#: The rules of ``TAX_RULES`` that are for purchases rather than sales.
PURCHASE_TAX_RULES = frozenset({"GST on Expenses", "GST Free Expenses"})


# Cin7's convention: AUD (the base) for ONE unit of the customer's currency. Xero's CurrencyRate is the
# inverse (foreign units per AUD): about 1.0850 NZD, 0.6550 USD and 98.5 JPY for one AUD.
RATES: dict[str, Decimal] = {
    "AUD": Decimal("1"),
    "NZD": Decimal("0.9217"),
    "USD": Decimal("1.5267"),
    "JPY": Decimal("0.0102"),
}

PAYMENT_TERMS = ["30 days", "14 days", "Due on receipt", "20th of following month", "End of following month"]
FRACTIONAL_QUANTITIES = [Decimal(q) for q in ("0.5", "1.5", "2.5", "3.25", "4.75", "7.5", "12.5")]
DISCOUNTS = [Decimal("5"), Decimal("10"), Decimal("12.5")]

NAME_FIRST = [
    "Acacia",
    "Banksia",
    "Coastal",
    "Dingo",
    "Emu",
    "Flinders",
    "Gidgee",
    "Hawkesbury",
    "Ironbark",
    "Jarrah",
    "Kookaburra",
    "Lorikeet",
    "Murray",
    "Nullarbor",
    "Otway",
    "Pilbara",
    "Quokka",
    "Riverina",
    "Snowy",
    "Tasman",
    "Uluru",
    "Victoria",
    "Wattle",
    "Yarra",
]
NAME_SECOND = [
    "Bakery",
    "Builders",
    "Cafe",
    "Cycles",
    "Design",
    "Electrical",
    "Farms",
    "Garden Centre",
    "Hardware",
    "Imports",
    "Joinery",
    "Kitchens",
    "Landscaping",
    "Motors",
    "Nursery",
    "Outfitters",
    "Plumbing",
    "Provisions",
    "Retail",
    "Surf Co",
    "Textiles",
    "Timber",
    "Wholesale",
    "Wines",
]
NAME_SUFFIX = ["Pty Ltd", "Ltd", "& Co", "Group", "", "", ""]
PRODUCT_NOUNS = [
    "Widget",
    "Bracket",
    "Hinge",
    "Gasket",
    "Valve",
    "Fitting",
    "Panel",
    "Cable",
    "Sprocket",
    "Filter",
    "Bolt Pack",
    "Seal Kit",
    "Bearing",
    "Spring",
    "Lamp",
    "Switch",
]
PRODUCT_ADJECTIVES = [
    "Small",
    "Large",
    "Heavy Duty",
    "Stainless",
    "Galvanised",
    "Premium",
    "Compact",
    "Blue",
]

AU_CITIES = [
    ("Sydney", "NSW", "2000"),
    ("Melbourne", "VIC", "3000"),
    ("Brisbane", "QLD", "4000"),
    ("Perth", "WA", "6000"),
    ("Adelaide", "SA", "5000"),
    ("Hobart", "TAS", "7000"),
    ("Canberra", "ACT", "2600"),
    ("Darwin", "NT", "0800"),
]
FOREIGN = {
    "NZD": ("New Zealand", [("Auckland", "Auckland", "1010"), ("Wellington", "Wellington", "6011")]),
    "USD": ("United States", [("Seattle", "WA", "98101"), ("Austin", "TX", "73301")]),
    "JPY": ("Japan", [("Tokyo", "Tokyo", "100-0001")]),
}
STREETS = ["George St", "Queen St", "King St", "Collins St", "Pitt St", "Main Rd", "Harbour Dr", "High St"]


# (name, email, currency, contact person). Indexes are referenced by the Xero seed contacts
# (``customers.seeded_xero_contacts``).
SPECIAL_CUSTOMERS: list[tuple[str, str, str, str]] = [
    ("O'Brien & Sons", "o'brien@example.com", "AUD", "Pat O'Brien"),
    ('Zoë\'s "Best" Café', "Accounts@ZoesCafe.example.com", "AUD", "Zoë Martin"),
    ("Ngā Tamariki Ltd", "kiaora@ngatamariki.example.nz", "NZD", "Aroha Ngata"),
    ("Smith Trading", "accounts@smithtrading.example.com", "AUD", "Jo Smith"),
    ("Smith Trading", "Smith.Trading@Example.NET", "USD", "Sam Smith"),
    ("Kauri Timber Co   ", "orders@kauritimber.example.com", "AUD", "Kim Lee"),
    ("Harbour Supplies", "Accounts@HarbourSupplies.example.com", "AUD", "Hana Park"),
    ("Blue Gum Hardware", "blue.gum@example.com", "AUD", "Ben Gray"),
]
EMAIL_ADOPT_INDEX = 6  # Harbour Supplies
ARCHIVED_NAME_INDEX = 2  # Ngā Tamariki Ltd
NUMBER_ADOPT_INDEX = 7  # Blue Gum Hardware

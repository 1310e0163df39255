"""The purchase side's tables: supplier names, people, e-mail domains, bought goods and services.

Supplier names use words that customer names (``tables.NAME_FIRST``/``NAME_SECOND``) never do, so a supplier
and a customer only share a Xero contact name when the generator means them to (the merge case).
"""

from __future__ import annotations

from decimal import Decimal

#: The tax rules of a supplier (and so of its freight): GST-registered at home, GST-free from abroad.
DOMESTIC_PURCHASE_RULE = "GST on Expenses"
FREE_PURCHASE_RULE = "GST Free Expenses"

#: Account codes of Cin7's chart (``ref/account``) that purchases use.
ACCOUNT_PAYABLE = "800"
PURCHASES_ACCOUNT = "300"
FREIGHT_ACCOUNT = "425"
SERVICES_ACCOUNT = "429"
INVENTORY_ACCOUNT = "630"
BANK_ACCOUNT = "090"

#: Cin7 Core lets a supplier have any number of people; Xero takes at most this many ContactPersons besides
#: the primary one (xero.md "Contact persons").
XERO_MAX_CONTACT_PERSONS = 5
#: How many people the crowded suppliers have: enough that two are left out of Xero.
CROWDED_PEOPLE = 7

SUPPLIER_FIRST = [
    "Southern Cross",
    "Eureka",
    "Brolga",
    "Coolabah",
    "Goanna",
    "Mallee",
    "Numbat",
    "Platypus",
    "Saltbush",
    "Spinifex",
    "Wombat",
    "Yabby",
]
SUPPLIER_TRADE = [
    "Packaging",
    "Fasteners",
    "Steel Supply",
    "Logistics",
    "Paper Mills",
    "Chemicals",
    "Components",
    "Plastics",
    "Electronics",
    "Freight Lines",
]
SUPPLIER_SUFFIX = ["Pty Ltd", "Pty Ltd", "Pty. Ltd.", "Ltd", "Group", ""]

#: (name, currency, company domain or "" for people on public domains). The foreign ones come first.
FOREIGN_SUPPLIERS: list[tuple[str, str, str]] = [
    ("Pacific Rim Trading LLC", "USD", "pacificrim.example.com"),
    ("Aotearoa Packaging Ltd", "NZD", "aotearoapack.example.co.nz"),
]
#: A sole trader whose people all use public mail.
SOLE_TRADER = "Dave Nguyen Courier Services"
PUBLIC_DOMAINS = ["gmail.com", "outlook.com", "bigpond.com"]

PEOPLE_FIRST = [
    "Alex",
    "Bronwyn",
    "Chloe",
    "Darren",
    "Erin",
    "Farid",
    "Grace",
    "Hamish",
    "Isla",
    "Jack",
    "Kiri",
    "Liam",
    "Mia",
    "Noah",
    "Olivia",
    "Priya",
    "Quinn",
    "Ruby",
    "Sanjay",
    "Tahlia",
]
PEOPLE_LAST = [
    "Anderson",
    "Brown",
    "Chen",
    "D'Souza",
    "Evans",
    "Fitzgerald",
    "Gupta",
    "Harris",
    "Ivanova",
    "Jones",
    "Kowalski",
    "Lee",
    "Mac Donald",
    "Nguyen",
    "O'Connor",
    "Patel",
]
JOB_ROLES = ["accounts", "sales", "orders", "dispatch", "admin"]

#: What stock purchases buy: (SKU prefix, name).
STOCK_GOODS = [
    ("RAW-STL", "Steel Sheet 2mm"),
    ("RAW-ALU", "Aluminium Bar"),
    ("PKG-BOX", "Shipping Carton Large"),
    ("PKG-TAP", "Packing Tape Roll"),
    ("CMP-BRG", "Bearing 6204"),
    ("CMP-SCR", "Screw Pack M6"),
    ("CMP-PCB", "Control Board"),
    ("PLS-PEL", "Resin Pellets 25kg"),
]
#: What service purchases buy (no stock, an expense account).
SERVICES = ["Equipment servicing", "Consulting", "Cleaning", "Warehouse labour hire", "IT support"]
#: How each supplier writes its own invoice numbers (the ``{n}`` is its running number).
INVOICE_NUMBER_FORMATS = ["{n}", "INV-{n:05d}", "SI/{n}", "{n:06d}", "TAX-{n}"]
FREIGHT_PRICES = (Decimal("15.00"), Decimal("49.50"), Decimal("120.00"), Decimal("8.95"))

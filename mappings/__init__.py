"""Pure mappings from Cin7 Core models to Xero payloads.

No I/O here: no network, no database, no clock. Dates, rules and lookup tables come in as arguments.
"""

from . import cin7core, cin7purchases, xero
from .bill import map_bill, map_purchase_credit_note
from .cin7core import *  # noqa: F403
from .cin7purchases import *  # noqa: F403
from .contact import MappedContact, contact_name_variant, map_contact, map_customer
from .credit_note import credit_note_void_payload, map_credit_note
from .errors import MappingError, MappingProblem
from .invoice import InvoiceAction, decide_invoice_action, map_invoice, recheck_invoice_action, void_payload
from .payments import CreditAllocation, credit_allocations, map_allocation, map_payment, money_total
from .people import ContactPeople, map_people, split_name
from .reference import OrgReference, tax_rule_key
from .rounding import Cin7Totals, totals_in_xero
from .rules import DEFAULT_RULES_PATH, MappingRules, Side, load_rules
from .supplier import abn_key, email_domain, map_supplier, website_domain
from .terms import due_date_from_terms, parse_terms, xero_payment_terms
from .util import canonical_json, content_hash, normalise_email, normalise_name, round_half_up
from .xero import *  # noqa: F403

__all__ = [
    "DEFAULT_RULES_PATH",
    "Cin7Totals",
    "ContactPeople",
    "CreditAllocation",
    "InvoiceAction",
    "MappedContact",
    "MappingError",
    "MappingProblem",
    "MappingRules",
    "OrgReference",
    "Side",
    "abn_key",
    "canonical_json",
    "contact_name_variant",
    "content_hash",
    "credit_allocations",
    "credit_note_void_payload",
    "decide_invoice_action",
    "due_date_from_terms",
    "email_domain",
    "load_rules",
    "map_allocation",
    "map_bill",
    "map_contact",
    "map_credit_note",
    "map_customer",
    "map_invoice",
    "map_payment",
    "map_people",
    "map_purchase_credit_note",
    "map_supplier",
    "money_total",
    "normalise_email",
    "normalise_name",
    "parse_terms",
    "recheck_invoice_action",
    "round_half_up",
    "split_name",
    "tax_rule_key",
    "totals_in_xero",
    "void_payload",
    "website_domain",
    "xero_payment_terms",
]
# The Cin7 models and the Xero payloads are exported whole, so each list of names is kept once, in its module.
__all__ += cin7core.__all__
__all__ += cin7purchases.__all__
__all__ += xero.__all__

"""What the Xero stand-in's invoices and credit notes share: validating, claiming, committing, finding.

Xero treats the two documents alike in most things: the contact (found, or created from a bare name),
status transitions, numbers, dates against the period lock date, line amount types, currencies and
lines. Each step here checks one of them on a working copy of the record and appends Xero's messages to
``errors``; a ``DocumentSpec`` (``INVOICE_SPEC``, ``CREDIT_NOTE_SPEC``) says what differs between the two.
``invoices.py`` and ``credit_notes.py`` serve the endpoints on top.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pipeline.standins.xero.batches import Claims
from pipeline.standins.xero.contacts import ContactPlan, ContactsMixin, new_contact_record
from pipeline.standins.xero.data import CURRENCIES, DEFAULT_CURRENCY_RATES, parse_decimal, parse_input_date
from pipeline.standins.xero.document_lines import LineRules, document_totals, line_inputs, prepare_line, same_lines
from pipeline.standins.xero.schemas import (
    CREDIT_NOTE_TYPES,
    INVOICE_STATUSES,
    INVOICE_TYPES,
    LINE_AMOUNT_TYPES,
    STATUS_TRANSITIONS,
)
from pipeline.standins.xero.state import DocumentStore
from pipeline.standins.xero.tracking import TrackingMixin
from pipeline.standins.xero.values import ZERO_GUID, Record, as_text, is_guid, utc_now


@dataclass(frozen=True, slots=True)
class DocumentSpec:
    """How one kind of document differs from the other (invoice or credit note).

    ``types[0]`` is the sales type (ACCREC, ACCRECCREDIT): only it takes a Reference, is auto-numbered, has
    unique numbers and, on invoices, takes line discounts (``discounts``); Xero keeps purchase numbers as
    typed, repeats included. ``applied_key`` is the record field that allocations add to.
    ``settled_edits``: whether a document with payments or allocations may still take edits that leave
    its amounts alone (credit notes), rather than refusing every edit (invoices, as the stand-in always has).
    """

    noun: str
    indefinite: str
    store_key: str
    id_key: str
    number_key: str
    types: tuple[str, ...]
    number_prefix: str
    duplicate_number: str
    text_fields: tuple[str, ...]
    applied_key: str
    discounts: bool
    settled_edits: bool

    @property
    def sales_type(self) -> str:
        """ACCREC or ACCRECCREDIT."""
        return self.types[0]


@dataclass(slots=True)
class DocumentPlan:
    """A validated document element: the record to store, the one it replaces, and a contact to create first."""

    existing_id: str | None
    record: Record
    new_contact: Record | None = None


class Rejected(Exception):
    """An element refused outright: it is answered with this one error and no field is validated."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


INVOICE_SPEC = DocumentSpec(
    noun="Invoice",
    indefinite="an invoice",
    store_key="invoice",
    id_key="InvoiceID",
    number_key="InvoiceNumber",
    types=INVOICE_TYPES,
    number_prefix="INV-",
    duplicate_number="Invoice # must be unique.",
    text_fields=("Reference", "Url", "BrandingThemeID"),
    applied_key="AmountCredited",
    discounts=True,
    settled_edits=False,
)
CREDIT_NOTE_SPEC = DocumentSpec(
    noun="Credit Note",
    indefinite="a credit note",
    store_key="credit_note",
    id_key="CreditNoteID",
    number_key="CreditNoteNumber",
    types=CREDIT_NOTE_TYPES,
    number_prefix="CN-",
    duplicate_number="Credit Note number must be unique.",
    text_fields=("Reference", "BrandingThemeID"),
    applied_key="AmountAllocated",
    discounts=False,
    settled_edits=True,
)


class DocumentValidationMixin(ContactsMixin, TrackingMixin):
    """The checks, claims and commits of document elements that invoices and credit notes have in common.

    Based on ``TrackingMixin`` so that the tracking categories are seeded before any seeded document names them.
    """

    def _prepare_document(
        self,
        spec: DocumentSpec,
        elem: Any,
        method: str,
        path_document: Record | None,
        unitdp4: bool,
        claims: Claims | None,
    ) -> tuple[DocumentPlan | None, list[str]]:
        """Validate one element of a ``PUT``/``POST`` of invoices or credit notes into a plan to commit."""
        if not isinstance(elem, dict):
            return None, [f"{spec.indefinite.capitalize()} element must be a JSON object."]
        number = (as_text(elem.get(spec.number_key)) or "").strip() or None
        elem_type = (as_text(elem.get("Type")) or "").upper() or None
        try:
            existing = self._document_to_update(spec, elem, method, path_document, number, elem_type)
        except Rejected as exc:
            return None, [exc.message]
        errors: list[str] = []
        record = self._starting_record(spec, existing, elem_type, errors)
        kind = record["Type"] or spec.sales_type
        self._apply_status(elem, record, existing, spec.noun, errors)
        self._apply_number(spec, number, record, existing, kind, claims, errors)
        new_contact: Record | None = None
        if "Contact" in elem or existing is None:
            record["ContactID"], new_contact = self._resolve_document_contact(elem.get("Contact"), errors)
        for key in spec.text_fields:
            if key in elem:
                record[key] = as_text(elem[key])
        if kind != spec.sales_type:
            record["Reference"] = None
        if "SentToContact" in elem:
            record["SentToContact"] = bool(elem["SentToContact"])
        self._apply_dates(elem, record, errors)
        self._apply_line_amount_types(elem, record, errors)
        self._apply_currency(elem, record, errors)
        sales = kind == spec.sales_type
        rules = LineRules(
            sales=sales, unitdp4=unitdp4, discounts=spec.discounts and sales, noun=spec.noun, tracking=self._tracking
        )
        self._apply_lines(elem, record, existing, rules, errors)
        settled = settled_edit_problems(spec, existing, record) if existing is not None else []
        if settled:
            # Like a rejection: what the edit would change does not matter once the document is settled.
            return None, settled
        if errors:
            return None, errors
        return DocumentPlan(existing[spec.id_key] if existing else None, record, new_contact), []

    def _document_to_update(
        self,
        spec: DocumentSpec,
        elem: Record,
        method: str,
        path_document: Record | None,
        number: str | None,
        elem_type: str | None,
    ) -> Record | None:
        """The stored document this element edits (by path, ID or number), or None for a new one.

        Raises ``Rejected`` when the element cannot go ahead at all, so no field errors are reported with it.
        """
        store = self._documents[spec.store_key]
        existing = path_document
        given_id = as_text(elem.get(spec.id_key))
        lower = spec.noun.lower()
        if existing is None and given_id and given_id != ZERO_GUID:
            existing = store.records.get(given_id.lower()) if is_guid(given_id) else None
            if existing is None:
                raise Rejected(f"The {lower} with {spec.id_key} {given_id} could not be found.")
            if method == "PUT":
                found = f"{spec.indefinite.capitalize()} with {spec.id_key} {given_id}"
                raise Rejected(f"{found} already exists. Use POST to update it.")
        if existing is None and number is not None:
            kinds = [elem_type] if elem_type in spec.types else list(spec.types)
            key = number.casefold()
            match = next((store.by_number[(k, key)] for k in kinds if (k, key) in store.by_number), None)
            if match is not None and method == "PUT":
                # A repeated bill or purchase credit note number is not an error: a PUT then creates another.
                if store.records[match]["Type"] == spec.sales_type:
                    raise Rejected(spec.duplicate_number)
            elif match is not None:
                existing = store.records[match]
        if existing is not None:
            if existing["Status"] in ("VOIDED", "DELETED"):
                raise Rejected(f"{spec.noun} not of valid status for modification")
            if not spec.settled_edits and is_settled(spec, existing):
                raise Rejected(EDIT_SETTLED)
        return existing

    @staticmethod
    def _starting_record(
        spec: DocumentSpec, existing: Record | None, elem_type: str | None, errors: list[str]
    ) -> Record:
        """A copy of the document being edited, or a new draft of ``elem_type``."""
        if existing is not None:
            return dict(existing)
        if elem_type not in spec.types:
            choices = " or ".join(spec.types)
            errors.append(
                f"{spec.noun} Type must be {choices}." if elem_type else f"The {spec.noun} Type must be specified."
            )
        return new_document_record(spec, elem_type)

    def _apply_number(
        self,
        spec: DocumentSpec,
        number: str | None,
        record: Record,
        existing: Record | None,
        kind: str,
        claims: Claims | None,
        errors: list[str],
    ) -> None:
        if number is None or (existing is not None and number == existing.get(spec.number_key)):
            return
        if len(number) > 255:
            errors.append(f"{spec.noun} Number must be 255 characters or less.")
        if kind == spec.sales_type:
            key = (kind, number.casefold())
            holder = self._documents[spec.store_key].by_number.get(key)
            existing_id = existing[spec.id_key] if existing else None
            if (holder is not None and holder != existing_id) or (claims is not None and key in claims.numbers):
                errors.append(spec.duplicate_number)
        record[spec.number_key] = number

    def _find_document(self, spec: DocumentSpec, ref: str) -> Record | None:
        """A stored document by its ID or its number (of any type of ``spec``)."""
        store = self._documents[spec.store_key]
        if is_guid(ref):
            return store.records.get(ref.lower())
        for kind in spec.types:
            found = store.by_number.get((kind, ref.casefold()))
            if found:
                return store.records[found]
        return None

    @staticmethod
    def _claim_document(spec: DocumentSpec, plan: DocumentPlan, claims: Claims) -> None:
        record = plan.record
        if record.get(spec.number_key):
            claims.numbers.add((record["Type"], record[spec.number_key].casefold()))
        if plan.new_contact is not None:
            claims.contact_names.add(plan.new_contact["Name"].casefold())

    def _commit_document(self, spec: DocumentSpec, plan: DocumentPlan) -> Record:
        """Store a validated document, its number and contact indexes, and the contact it creates."""
        store = self._documents[spec.store_key]
        record = plan.record
        if plan.new_contact is not None:
            # An earlier element of the same batch may have created this contact already.
            found = self._active_contact_by_name.get(plan.new_contact["Name"].casefold())
            if found is None:
                found = self._commit_contact(ContactPlan(None, plan.new_contact))["ContactID"]
            record["ContactID"] = found
        if plan.existing_id is not None:
            old = store.records[plan.existing_id]
            if old.get(spec.number_key):
                key = (old["Type"], old[spec.number_key].casefold())
                if store.by_number.get(key) == plan.existing_id:
                    del store.by_number[key]
            store.by_contact.get(old["ContactID"], set()).discard(plan.existing_id)
        else:
            record[spec.id_key] = str(uuid.uuid4())
            if not record.get(spec.number_key) and record["Type"] == spec.sales_type:
                record[spec.number_key] = _next_number(spec, store)
        doc_id = record[spec.id_key]
        if record.get(spec.number_key):
            # Numbers of bills and purchase credit notes may repeat: the index then points at the newest.
            store.by_number[(record["Type"], record[spec.number_key].casefold())] = doc_id
        store.by_contact.setdefault(record["ContactID"], set()).add(doc_id)
        contact = self._contacts.get(record["ContactID"])
        if contact is not None:
            # Xero derives these flags and, notably, does not bump the contact's UpdatedDateUTC.
            contact["IsCustomer" if record["Type"] == spec.sales_type else "IsSupplier"] = True
        self._touch(store.records, record, spec.id_key)
        return record

    def _resolve_document_contact(self, ref: Any, errors: list[str]) -> tuple[str | None, Record | None]:
        """(existing ContactID, or None plus a contact to create when Name alone is given)."""
        if not isinstance(ref, dict) or not any(ref.get(k) for k in ("ContactID", "ContactNumber", "Name")):
            errors.append("A Contact must be specified for this type of transaction")
            return None, None
        contact: Record | None = None
        contact_id = as_text(ref.get("ContactID"))
        number = as_text(ref.get("ContactNumber"))
        name = (as_text(ref.get("Name")) or "").strip()
        if contact_id and contact_id != ZERO_GUID:
            contact = self._contacts.get(contact_id.lower()) if is_guid(contact_id) else None
            if contact is None:
                errors.append(f"The contact with ContactID {contact_id} could not be found.")
                return None, None
        elif number:
            contact = self._find_contact_by_number(number)
            if contact is None and not name:
                errors.append(f"The contact with ContactNumber {number} could not be found.")
                return None, None
        if contact is None and name:
            found = self._active_contact_by_name.get(name.casefold())
            contact = self._contacts.get(found) if found else None
        if contact is None:
            new = new_contact_record(None)
            new["Name"] = name
            if number:
                new["ContactNumber"] = number
            new_errors = self._apply_contact_fields(new, {}, None)
            if number and self._find_contact_by_number(number) is not None:
                new_errors.append(f"The contact number {number} is already assigned to another contact.")
            errors.extend(new_errors)
            return None, (new if not new_errors else None)
        if contact["ContactStatus"] != "ACTIVE":
            errors.append(f"The contact is archived and cannot be used on new transactions ({contact.get('Name')}).")
        return contact["ContactID"], None

    @staticmethod
    def _apply_status(elem: Record, record: Record, existing: Record | None, noun: str, errors: list[str]) -> None:
        """Take the element's Status if the document may move to it; ``noun`` is "Invoice" or "Credit Note"."""
        if "Status" not in elem or elem["Status"] is None:
            return
        status = str(elem["Status"]).upper()
        if status not in INVOICE_STATUSES:
            errors.append(f"'{elem['Status']}' is not a valid {noun.lower()} status.")
        elif existing is None and status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            errors.append(f"{noun} not of valid status for creation")
        elif (
            existing is not None
            and status != existing["Status"]
            and status not in STATUS_TRANSITIONS.get(existing["Status"], frozenset())
        ):
            errors.append(f"{noun} not of valid status for modification")
        record["Status"] = status

    def _apply_dates(self, elem: Record, record: Record, errors: list[str]) -> None:
        for key in ("Date", "DueDate"):
            if elem.get(key):
                try:
                    record[key] = parse_input_date(elem[key])
                except ValueError:
                    errors.append(f"The {key} '{elem[key]}' is not a valid date.")
        if record["Date"] is None:
            record["Date"] = utc_now().date()
        self._check_lock_date(record["Date"], errors)

    def _check_lock_date(self, date: dt.date, errors: list[str]) -> None:
        """Xero refuses a transaction (document, payment, allocation) dated on or before the period lock date."""
        lock = self.period_lock_date
        if lock is not None and date <= lock:
            errors.append(
                f"The document date cannot be before the period lock date ({lock.day} {lock.strftime('%b %Y')})."
            )

    @staticmethod
    def _apply_line_amount_types(elem: Record, record: Record, errors: list[str]) -> None:
        if elem.get("LineAmountTypes") is None:
            return
        lat = LINE_AMOUNT_TYPES.get(str(elem["LineAmountTypes"]).lower())
        if lat is None:
            errors.append(f"'{elem['LineAmountTypes']}' is not a valid LineAmountTypes value.")
        else:
            record["LineAmountTypes"] = lat

    @staticmethod
    def _apply_currency(elem: Record, record: Record, errors: list[str]) -> None:
        if elem.get("CurrencyCode"):
            code = str(elem["CurrencyCode"]).upper()
            if code not in CURRENCIES:
                errors.append(
                    f"The currency {code} has not been enabled for this organisation. "
                    "Add it in Settings > Currencies before using it."
                )
            elif code != record["CurrencyCode"]:
                record["CurrencyRate"] = DEFAULT_CURRENCY_RATES[code]
            record["CurrencyCode"] = code
        if elem.get("CurrencyRate") is not None and record["CurrencyCode"] != "AUD":
            rate = positive_rate(elem["CurrencyRate"])
            if rate is None:
                errors.append("The CurrencyRate must be greater than zero.")
            else:
                record["CurrencyRate"] = rate
        if record["CurrencyCode"] == "AUD":
            record["CurrencyRate"] = Decimal("1")

    @staticmethod
    def _apply_lines(
        elem: Record, record: Record, existing: Record | None, rules: LineRules, errors: list[str]
    ) -> None:
        # Stored lines are re-derived when only LineAmountTypes changes, since their tax depends on it.
        recompute = "LineItems" in elem or (
            existing is not None and record["LineAmountTypes"] != existing["LineAmountTypes"]
        )
        if not recompute and existing is not None:
            return
        raw_lines, old_ids = line_inputs(elem, existing)
        if not isinstance(raw_lines, list) or not raw_lines:
            errors.append("At least one line item must be specified.")
            raw_lines = []
        lines = [prepare_line(raw, record["LineAmountTypes"], rules, old_ids, errors) for raw in raw_lines]
        record["LineItems"] = [line for line in lines if line is not None]
        document_totals(record)


def positive_rate(value: Any) -> Decimal | None:
    """A currency rate from a request, or None when it is not a number greater than zero."""
    try:
        rate = parse_decimal(value)
    except ValueError:
        return None
    return rate if rate is not None and rate > 0 else None


#: Xero's words for a change to a document that payments or allocations have settled in part or in full.
EDIT_SETTLED = "This document cannot be edited as it has a payment or credit note allocated to it."
#: The stand-in's words for voiding such a document (Xero's own text is not documented).
VOID_SETTLED = "This document cannot be voided as it has a payment or credit note allocated to it."
#: The fields of a settled document that may not change: all that its amounts, contact and date rest on.
_SETTLED_FIELDS = ("Type", "ContactID", "Date", "CurrencyCode", "CurrencyRate", "LineAmountTypes", "Total")


def is_settled(spec: DocumentSpec, doc: Record) -> bool:
    """Whether payments or allocations have been applied to the document."""
    return bool(doc["Status"] == "PAID" or doc["AmountPaid"] > 0 or doc[spec.applied_key] > 0)


def settled_edit_problems(spec: DocumentSpec, existing: Record, record: Record) -> list[str]:
    """Why an edit of a document with payments or allocations is refused (nothing when it may go ahead)."""
    if not is_settled(spec, existing):
        return []
    if record["Status"] == "VOIDED":
        return [VOID_SETTLED]
    changed = any(record.get(k) != existing.get(k) for k in _SETTLED_FIELDS)
    if changed or not same_lines(record["LineItems"], existing["LineItems"]):
        return [EDIT_SETTLED]
    return []


def _next_number(spec: DocumentSpec, store: DocumentStore) -> str:
    while True:
        candidate = f"{spec.number_prefix}{store.next_number:04d}"
        store.next_number += 1
        if (spec.sales_type, candidate.casefold()) not in store.by_number:
            return candidate


def new_document_record(spec: DocumentSpec, kind: str | None) -> Record:
    """A draft document of ``kind`` with no fields given yet (its ID is assigned on commit)."""
    return {
        spec.id_key: None,
        "Type": kind,
        spec.number_key: None,
        "Reference": None,
        "ContactID": None,
        "Date": None,
        "DueDate": None,
        "Status": "DRAFT",
        "LineAmountTypes": "Exclusive",
        "LineItems": [],
        "CurrencyCode": "AUD",
        "CurrencyRate": Decimal("1"),
        "AmountPaid": Decimal("0.00"),
        spec.applied_key: Decimal("0.00"),
        "SentToContact": False,
        "FullyPaidOnDate": None,
        "IsDiscounted": False,
    }

"""The Xero stand-in's contacts: listing, reading, validating, writing and seeding them.

``GET``/``PUT``/``POST /Contacts`` with Xero's uniqueness rules (active names, contact numbers) and
``summarizeErrors`` element results, plus the in-process ``contacts()`` and ``seed_contacts()``.
"""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.standins.xero.batches import BatchWriteMixin, Claims, failed_element
from pipeline.standins.xero.data import CURRENCIES, ms_datetime
from pipeline.standins.xero.query import Candidates
from pipeline.standins.xero.responses import Request, Response, not_found
from pipeline.standins.xero.schemas import (
    ADDRESS_TYPES,
    CONTACT_SCHEMA,
    CONTACT_STATUSES,
    CONTACT_SUMMARY_FIELDS,
    CONTACT_TEXT_FIELDS,
    PHONE_TYPES,
)
from pipeline.standins.xero.values import (
    ZERO_GUID,
    Num,
    Record,
    as_decimal,
    as_float,
    as_text,
    is_guid,
    jsonable,
    split_csv,
)
from pipeline.standins.xero.where import equality_hints, evaluate

#: Xero keeps at most this many people besides the contact's own (xero.md "Contact persons").
MAX_CONTACT_PERSONS = 5
#: Xero's words, as an integration catalogue quotes them (xero.md "Contact persons").
NO_PRIMARY_EMAIL = "Additional people cannot be added when the primary person has no email address set."
#: The stand-in's words: Xero documents the limit but not its message.
TOO_MANY_PERSONS = f"A contact can have a maximum of {MAX_CONTACT_PERSONS} contact persons."
_PERSON_TEXT_FIELDS = ("FirstName", "LastName", "EmailAddress")


@dataclass(slots=True)
class ContactPlan:
    """A validated contact element: the record to store and the contact it replaces (``None`` for a new one)."""

    existing_id: str | None
    record: Record


def new_contact_record(contact_id: str | None) -> Record:
    """A contact not yet given any fields (``ContactID`` ``None``: one is assigned on commit)."""
    return {
        "ContactID": contact_id,
        "ContactStatus": "ACTIVE",
        "Addresses": {},
        "Phones": {},
        "IsSupplier": False,
        "IsCustomer": False,
        "ContactPersons": [],
    }


class ContactsMixin(BatchWriteMixin):
    """Contact endpoints and the contact indexes they keep (by number, active contacts by name)."""

    def _clear_state(self) -> None:
        # Cleared state starts with the seed contacts again (at construction and on every reset()).
        super()._clear_state()
        for seed in self._seed_contacts:
            self._seed_one_contact(seed)

    def contacts(self) -> list[dict[str, Any]]:
        """All contacts (archived included) as Xero JSON; oldest update first."""
        with self._lock:
            return [self._render_contact(c, num=as_decimal) for c in self._contacts.values()]

    def seed_contacts(self, contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert contacts without API validation beyond uniqueness (archived ones allowed)."""
        with self._lock:
            return [self._render_contact(self._seed_one_contact(c), num=as_decimal) for c in contacts]

    def _seed_one_contact(self, seed: Mapping[str, Any]) -> Record:
        contact_id = str(seed.get("ContactID") or uuid.uuid4()).lower()
        record = new_contact_record(contact_id)
        existing_id = contact_id if contact_id in self._contacts else None
        if existing_id is not None:
            record = copy.deepcopy(self._contacts[existing_id])
        errors = self._apply_contact_fields(record, seed, existing_id)
        self._check_contact_uniqueness(record, existing_id, None, errors)
        if errors:
            raise ValueError("; ".join(errors))
        return self._commit_contact(ContactPlan(existing_id, record))

    def _find_contact(self, ref: str) -> Record | None:
        if is_guid(ref):
            return self._contacts.get(ref.lower())
        contact_id = self._contact_by_number.get(ref.casefold())
        return self._contacts.get(contact_id) if contact_id else None

    @staticmethod
    def _contact_field(record: Record, path: tuple[str, ...]) -> Any:
        if len(path) != 1:
            return None
        name = path[0].lower()
        for key in CONTACT_SCHEMA:
            if key.lower() == name:
                return record.get(key)
        return None

    def _render_contact(self, c: Record, *, num: Num, summary: bool = False, persons: bool = True) -> dict[str, Any]:
        """A contact as Xero JSON; ``persons``: with its ContactPersons (single and paged GETs, writes)."""
        out: dict[str, Any] = {"ContactID": c["ContactID"], "ContactStatus": c["ContactStatus"]}
        for key in CONTACT_SUMMARY_FIELDS if summary else CONTACT_TEXT_FIELDS:
            if c.get(key) is not None:
                out[key] = c[key]
        out["UpdatedDateUTC"] = ms_datetime(c["UpdatedDateUTC"])
        out["IsSupplier"] = c["IsSupplier"]
        out["IsCustomer"] = c["IsCustomer"]
        if summary:
            out["HasValidationErrors"] = False
            return out
        addresses = dict(c["Addresses"])
        for kind in ADDRESS_TYPES:
            addresses.setdefault(kind, {"AddressType": kind})
        phones = dict(c["Phones"])
        for kind in ("DEFAULT", "DDI", "FAX", "MOBILE"):
            phones.setdefault(kind, {"PhoneType": kind})
        out["Addresses"] = [dict(a) for a in addresses.values()]
        out["Phones"] = [dict(p) for p in phones.values()]
        out["ContactGroups"] = []
        if persons:
            out["ContactPersons"] = jsonable(c["ContactPersons"], num)
        if c.get("PaymentTerms"):
            out["PaymentTerms"] = jsonable(c["PaymentTerms"], num)
        out["HasAttachments"] = False
        out["HasValidationErrors"] = False
        return out

    def _list_contacts(self, request: Request) -> Response:
        node = self._where(request, CONTACT_SCHEMA, "Contact")
        include_archived = bool(request.flag("includeArchived"))
        ids = {i.lower() for i in split_csv(request.query.get("ids"))}
        hints = equality_hints(node) if node is not None else {}
        candidates = Candidates()
        if ids:
            candidates.narrow(i for i in ids if i in self._contacts)
        if "contactid" in hints:
            candidates.narrow([hints["contactid"].lower()] if hints["contactid"].lower() in self._contacts else [])
        if "contactnumber" in hints:
            found = self._contact_by_number.get(hints["contactnumber"].casefold())
            candidates.narrow([found] if found else [])
        if "name" in hints and not include_archived:
            found = self._active_contact_by_name.get(hints["name"].strip().casefold())
            candidates.narrow([found] if found else [])
        since, newer = self._modified_since(request, self._contacts)
        records = self._records_to_scan(self._contacts, candidates, newer)
        term = (request.query.get("searchterm") or "").strip().casefold()
        out: list[Record] = []
        for c in records:
            if not include_archived and c["ContactStatus"] == "ARCHIVED" and not ids:
                continue
            if since is not None and c["UpdatedDateUTC"] < since:
                continue
            if term and not any(
                term in (c.get(k) or "").casefold()
                for k in ("Name", "ContactNumber", "EmailAddress", "FirstName", "LastName")
            ):
                continue
            if node is not None and not evaluate(node, functools.partial(self._contact_field, c)):
                continue
            out.append(c)
        out = self._order(request, out, CONTACT_SCHEMA, "Contact", self._contact_field)
        paging = self._paging(request)
        page, pagination = self._paginate(out, paging)
        summary = bool(request.flag("summaryOnly"))
        # Xero leaves the people out of unpaged lists (xero.md "Contact persons"; XeroAPI/Xero-Java #245).
        persons = paging is not None and "page" in request.query
        return self._envelope(
            "Contacts",
            [self._render_contact(c, num=as_float, summary=summary, persons=persons) for c in page],
            pagination,
        )

    def _get_contact(self, request: Request) -> Response:
        contact = self._find_contact(request.segments[1])
        if contact is None:
            return not_found()
        return self._envelope("Contacts", [self._render_contact(contact, num=as_float)])

    def _apply_contact_fields(self, record: Record, elem: Mapping[str, Any], existing_id: str | None) -> list[str]:
        errors: list[str] = []
        _apply_contact_input(record, elem, errors)
        _check_contact_lengths(record, existing_id, errors)
        return errors

    def _check_contact_uniqueness(
        self, record: Record, existing_id: str | None, claims: Claims | None, errors: list[str]
    ) -> None:
        name = (record.get("Name") or "").casefold()
        if name and record["ContactStatus"] == "ACTIVE":
            holder = self._active_contact_by_name.get(name)
            if (holder is not None and holder != existing_id) or (claims is not None and name in claims.contact_names):
                errors.append(
                    f"The contact name {record['Name']} is already assigned to another contact. "
                    "The contact name must be unique across all active contacts."
                )
        number = (record.get("ContactNumber") or "").casefold()
        if number:
            holder = self._contact_by_number.get(number)
            if (holder is not None and holder != existing_id) or (
                claims is not None and number in claims.contact_numbers
            ):
                errors.append(
                    f"The contact number {record['ContactNumber']} is already assigned to another contact. "
                    "The contact number must be unique across all contacts."
                )

    def _prepare_contact(
        self, elem: Any, method: str, path_contact: Record | None, claims: Claims | None
    ) -> tuple[ContactPlan | None, list[str]]:
        if not isinstance(elem, dict):
            return None, ["A contact element must be a JSON object."]
        existing = path_contact
        given_id = as_text(elem.get("ContactID"))
        if existing is None and given_id and given_id != ZERO_GUID:
            existing = self._contacts.get(given_id.lower()) if is_guid(given_id) else None
            if existing is None:
                return None, [f"The contact with ContactID {given_id} could not be found."]
            if method == "PUT":
                return None, [f"A contact with ContactID {given_id} already exists. Use POST to update it."]
        number = as_text(elem.get("ContactNumber"))
        if existing is None and number and method == "POST":
            existing = self._find_contact_by_number(number)
        if existing is not None:
            record = copy.deepcopy(existing)
            existing_id: str | None = existing["ContactID"]
        else:
            record = new_contact_record(None)
            existing_id = None
        errors = self._apply_contact_fields(record, elem, existing_id)
        self._check_contact_uniqueness(record, existing_id, claims, errors)
        if errors:
            return None, errors
        return ContactPlan(existing_id, record), []

    def _find_contact_by_number(self, number: str) -> Record | None:
        contact_id = self._contact_by_number.get(number.casefold())
        return self._contacts.get(contact_id) if contact_id else None

    def _claim_contact(self, record: Record, claims: Claims) -> None:
        if record.get("Name") and record["ContactStatus"] == "ACTIVE":
            claims.contact_names.add(record["Name"].casefold())
        if record.get("ContactNumber"):
            claims.contact_numbers.add(record["ContactNumber"].casefold())

    def _commit_contact(self, plan: ContactPlan) -> Record:
        record = plan.record
        if plan.existing_id is not None:
            old = self._contacts[plan.existing_id]
            old_name = (old.get("Name") or "").casefold()
            if self._active_contact_by_name.get(old_name) == plan.existing_id:
                del self._active_contact_by_name[old_name]
            old_number = (old.get("ContactNumber") or "").casefold()
            if old_number and self._contact_by_number.get(old_number) == plan.existing_id:
                del self._contact_by_number[old_number]
        else:
            record["ContactID"] = record.get("ContactID") or str(uuid.uuid4())
        if record.get("Name") and record["ContactStatus"] == "ACTIVE":
            self._active_contact_by_name[record["Name"].casefold()] = record["ContactID"]
        if record.get("ContactNumber"):
            self._contact_by_number[record["ContactNumber"].casefold()] = record["ContactID"]
        self._touch(self._contacts, record, "ContactID")
        return record

    def _contact_error_echo(self, elem: Any, errors: list[str]) -> dict[str, Any]:
        echo: dict[str, Any] = jsonable(dict(elem), as_float) if isinstance(elem, dict) else {}
        return failed_element(echo, "ContactID", errors, validation_flag=True)

    def _write_contacts(self, request: Request) -> Response:
        path_contact: Record | None = None
        if len(request.segments) == 2:
            path_contact = self._find_contact(request.segments[1])
            if path_contact is None:
                return not_found()
        items = self._batch_items(request, "Contacts", "Contact", path_contact)
        return self._write_batch(
            request,
            "Contacts",
            items,
            lambda elem, claims: self._prepare_contact(elem, request.method, path_contact, claims),
            lambda plan, claims: self._claim_contact(plan.record, claims),
            self._commit_contact,
            lambda record: self._render_contact(record, num=as_float),
            self._contact_error_echo,
        )


def _apply_contact_input(record: Record, elem: Mapping[str, Any], errors: list[str]) -> None:
    """Copy the element's fields onto ``record``; addresses and phones merge by type into the stored ones."""
    for key in CONTACT_TEXT_FIELDS:
        if key in elem:
            value = as_text(elem[key])
            record[key] = value.strip() if value is not None and key == "Name" else value
    if "ContactStatus" in elem:
        status = str(elem["ContactStatus"] or "ACTIVE").upper()
        if status not in CONTACT_STATUSES:
            errors.append(f"The ContactStatus '{elem['ContactStatus']}' is not valid.")
        record["ContactStatus"] = status
    if "Addresses" in elem:
        invalid = "The address type '{kind}' is not valid. Use POBOX or STREET."
        _merge_typed(record["Addresses"], elem["Addresses"], "AddressType", ADDRESS_TYPES, invalid, errors)
    if "Phones" in elem:
        invalid = "The phone type '{kind}' is not valid."
        _merge_typed(record["Phones"], elem["Phones"], "PhoneType", PHONE_TYPES, invalid, errors)
    if "PaymentTerms" in elem:
        record["PaymentTerms"] = copy.deepcopy(elem["PaymentTerms"]) or {}
    if "ContactPersons" in elem:
        record["ContactPersons"] = _contact_persons(elem["ContactPersons"], errors)
    # Checked only when the element touches either side, so an unrelated edit of an old contact goes through.
    touched = "ContactPersons" in elem or "EmailAddress" in elem
    if touched and record["ContactPersons"] and not (record.get("EmailAddress") or "").strip():
        errors.append(NO_PRIMARY_EMAIL)


def _contact_persons(items: Any, errors: list[str]) -> list[Record]:
    """The people of a ``ContactPersons`` list as Xero keeps them: the list replaces the stored one."""
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        errors.append("ContactPersons must be a list of contact person objects.")
        return []
    if len(items) > MAX_CONTACT_PERSONS:
        errors.append(TOO_MANY_PERSONS)
    people: list[Record] = []
    for item in items:
        person: Record = {}
        for key in _PERSON_TEXT_FIELDS:
            value = as_text(item.get(key))
            if value is not None:
                person[key] = value
        for key, value in person.items():
            if len(value) > 255:
                errors.append(f"The contact person's {key} must be 255 characters or less.")
        person["IncludeInEmails"] = bool(item.get("IncludeInEmails"))
        people.append(person)
    return people


def _merge_typed(
    target: dict[str, Any], items: Any, type_key: str, allowed: tuple[str, ...], invalid: str, errors: list[str]
) -> None:
    """Store each item under its upper-cased ``type_key``; ``invalid`` is formatted with the rejected ``kind``."""
    for item in items or []:
        kind = str((item or {}).get(type_key) or "").upper()
        if kind not in allowed:
            errors.append(invalid.format(kind=kind))
            continue
        target[kind] = {k: v for k, v in item.items() if v is not None} | {type_key: kind}


def _check_contact_lengths(record: Record, existing_id: str | None, errors: list[str]) -> None:
    name = record.get("Name")
    if not name:
        errors.append(
            "The contact name must be specified." if existing_id is None else "The contact name cannot be empty."
        )
    elif len(name) > 255:
        errors.append("The contact name must be 255 characters or less.")
    number = record.get("ContactNumber")
    if number is not None and len(number) > 50:
        errors.append("The Contact Number must be 50 characters or less.")
    if record.get("AccountNumber") and len(record["AccountNumber"]) > 50:
        errors.append("The Account Number must be 50 characters or less.")
    email_address = record.get("EmailAddress")
    if email_address is not None and len(email_address) > 255:
        errors.append("The Email Address must be 255 characters or less.")
    currency = record.get("DefaultCurrency")
    if currency and currency not in CURRENCIES:
        errors.append(f"The currency {currency} has not been enabled for this organisation.")

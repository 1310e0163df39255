"""The Xero stand-in's tracking categories and the tracking on document lines.

``GET /TrackingCategories`` (``where``, ``order``, ``includeArchived``), ``GET /TrackingCategories/{id}``
and ``PUT /TrackingCategories/{id}/Options``, plus the in-process ``tracking_categories()`` and
``seed_tracking()``. Xero's rules (xero.md "Tracking categories"): an organisation has at most two ACTIVE
categories and four in all; names are at most 100 characters, and an option created through the API at
most 50. A line names at most two categories, by ``Name`` and ``Option`` (the IDs are optional), and a
category or option that Xero does not know is dropped from the line without a word, never created on the
fly: callers create options first and read the lines back.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.standins.xero.query import QueryMixin
from pipeline.standins.xero.responses import Request, Response, not_found, validation_error
from pipeline.standins.xero.state import SeedTracking
from pipeline.standins.xero.values import Record, as_text, is_guid
from pipeline.standins.xero.where import FieldSpec, evaluate

MAX_ACTIVE_CATEGORIES = 2
MAX_CATEGORIES = 4
MAX_NAME_LENGTH = 100
#: The PUT Options table allows shorter option names than the categories' and the UI's 100.
MAX_PUT_OPTION_LENGTH = 50
MAX_LINE_TRACKING = 2
#: Xero's words for a repeated option name (the ValidationException quoted in calcinai/xero-php #920).
DUPLICATE_OPTION = "For each specified tracking option the name must be unique."
#: The stand-in's words, after the spec's ``LineItem.Tracking`` text ("Any LineItem can have a maximum of 2
#: <TrackingCategory> elements."); Xero's own message is not documented.
TOO_MANY_TRACKING = "Any LineItem can have a maximum of 2 tracking categories."
#: The stand-in's words for what Xero does not document: a line's Tracking that is not a list of objects
#: (real Xero answers a 500, XeroAPI/xero-ruby #86), and option names that are missing, too long or
#: added to an archived category.
TRACKING_NOT_A_LIST = "The Tracking of a line item must be a list of tracking categories."
OPTION_NAME_REQUIRED = "The tracking option Name is required."
OPTION_NAME_TOO_LONG = f"The tracking option Name must be {MAX_PUT_OPTION_LENGTH} characters or less."
ARCHIVED_CATEGORY = "Tracking options cannot be added to an archived tracking category."
TRACKING_CATEGORY_SCHEMA: FieldSpec = {"TrackingCategoryID": "guid", "Name": "string", "Status": "string"}
_STATUSES = ("ACTIVE", "ARCHIVED")


def render_option(option: Record) -> dict[str, Any]:
    """A tracking option as Xero JSON (the flags as in the spec's ``PUT .../Options`` example)."""
    status = option["Status"]
    return {
        "TrackingOptionID": option["TrackingOptionID"],
        "Name": option["Name"],
        "Status": status,
        "HasValidationErrors": False,
        "IsDeleted": status == "DELETED",
        "IsArchived": status == "ARCHIVED",
        "IsActive": status == "ACTIVE",
    }


def render_category(category: Record, *, archived: bool) -> dict[str, Any]:
    """A tracking category as Xero JSON; ``archived``: with its archived options too."""
    options = [o for o in category["Options"] if archived or o["Status"] == "ACTIVE"]
    return {
        "Name": category["Name"],
        "Status": category["Status"],
        "TrackingCategoryID": category["TrackingCategoryID"],
        "Options": [render_option(o) for o in options],
    }


def line_tracking(raw: Any, categories: Mapping[str, Record], errors: list[str]) -> list[Record]:
    """A line's ``Tracking`` as Xero keeps it: the ACTIVE category and option pairs it knows, with their IDs.

    Anything else is dropped silently, as Xero does. A given ID wins over a name; names match exactly after
    trimming, since whether Xero ignores case here is not documented. A second pair for the same category
    is dropped too (a line holds one option per category).
    """
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        errors.append(TRACKING_NOT_A_LIST)
        return []
    if len(raw) > MAX_LINE_TRACKING:
        errors.append(TOO_MANY_TRACKING)
    kept: list[Record] = []
    for item in raw:
        category = _pick(categories.values(), item.get("TrackingCategoryID"), item.get("Name"), "TrackingCategoryID")
        if category is None or any(k["TrackingCategoryID"] == category["TrackingCategoryID"] for k in kept):
            continue
        option = _pick(category["Options"], item.get("TrackingOptionID"), item.get("Option"), "TrackingOptionID")
        if option is None:
            continue
        kept.append(
            {
                "Name": category["Name"],
                "Option": option["Name"],
                "TrackingCategoryID": category["TrackingCategoryID"],
                "TrackingOptionID": option["TrackingOptionID"],
            }
        )
    return kept


def _pick(records: Iterable[Record], given_id: Any, given_name: Any, id_key: str) -> Record | None:
    """The ACTIVE record with the given ID, or else with the given name (trimmed, exact)."""
    ref = (as_text(given_id) or "").strip().lower()
    name = (as_text(given_name) or "").strip()
    for record in records:
        if record["Status"] != "ACTIVE":
            continue
        if (ref and record[id_key] == ref) or (not ref and name and record["Name"] == name):
            return record
    return None


def _category_field(record: Record, path: tuple[str, ...]) -> Any:
    if len(path) != 1:
        return None
    name = path[0].lower()
    return next((record.get(key) for key in TRACKING_CATEGORY_SCHEMA if key.lower() == name), None)


def _seed_category(seed: Any) -> Record:
    """A category record from one seed (see ``SeedTracking``); ``ValueError`` when Xero would not hold it."""
    if not isinstance(seed, Mapping):
        raise ValueError(f"a tracking category seed must be an object, not {seed!r}")
    name = (as_text(seed.get("Name")) or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a tracking category needs a Name of 1 to {MAX_NAME_LENGTH} characters: {name!r}")
    options: list[Record] = []
    for raw in seed.get("Options") or []:
        option = raw if isinstance(raw, Mapping) else {"Name": raw}
        option_name = (as_text(option.get("Name")) or "").strip()
        if not option_name or len(option_name) > MAX_NAME_LENGTH:
            raise ValueError(f"a tracking option needs a Name of 1 to {MAX_NAME_LENGTH} characters: {option_name!r}")
        if any(o["Name"] == option_name for o in options):
            raise ValueError(f"{name}: {DUPLICATE_OPTION}")
        options.append(
            {
                "TrackingOptionID": _seed_id(option.get("TrackingOptionID"), f"{name}/{option_name}"),
                "Name": option_name,
                "Status": _seed_status(option.get("Status")),
            }
        )
    return {
        "TrackingCategoryID": _seed_id(seed.get("TrackingCategoryID"), name),
        "Name": name,
        "Status": _seed_status(seed.get("Status")),
        "Options": options,
    }


def _seed_id(value: Any, names: str) -> str:
    """The given GUID, or one derived from the names, so that a seed keeps its IDs across ``reset()``."""
    text = as_text(value)
    if text is None:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-standin-tracking:{names}"))
    if not is_guid(text):
        raise ValueError(f"not a GUID: {text!r}")
    return text.lower()


def _seed_status(value: Any) -> str:
    status = (as_text(value) or "ACTIVE").upper()
    if status not in _STATUSES:
        raise ValueError(f"a seeded tracking status must be one of {_STATUSES}, not {value!r}")
    return status


def _category_problems(categories: list[Record]) -> list[str]:
    """Why Xero could not hold these categories together (its limits, unique names and IDs)."""
    problems: list[str] = []
    if sum(c["Status"] == "ACTIVE" for c in categories) > MAX_ACTIVE_CATEGORIES:
        problems.append(f"an organisation has at most {MAX_ACTIVE_CATEGORIES} ACTIVE tracking categories")
    if len(categories) > MAX_CATEGORIES:
        problems.append(f"an organisation has at most {MAX_CATEGORIES} tracking categories")
    names = [c["Name"] for c in categories]
    problems.extend(f"a tracking category named {n!r} already exists" for n in sorted(set(names)) if names.count(n) > 1)
    ids = [c["TrackingCategoryID"] for c in categories]
    if len(set(ids)) != len(ids):
        problems.append("a TrackingCategoryID is used twice")
    return problems


class TrackingMixin(QueryMixin):
    """Tracking categories and their options: the endpoints, the seeds and the in-process accessors."""

    def _clear_state(self) -> None:
        # The constructor's categories come back on every reset(), before any seeded document names them.
        super()._clear_state()
        self._add_tracking(self._seed_tracking)

    def tracking_categories(self) -> list[dict[str, Any]]:
        """Every tracking category (archived ones too) with all its options, as Xero JSON."""
        with self._lock:
            return [render_category(c, archived=True) for c in self._tracking.values()]

    def seed_tracking(self, categories: SeedTracking) -> list[dict[str, Any]]:
        """Add tracking categories as typed in Xero (see ``SeedTracking``); return them as Xero JSON.

        All or nothing: ``ValueError`` when Xero could not hold them (more than 2 ACTIVE or 4 in all, a
        repeated name, a name longer than 100 characters). Never counted, limited or faulted.
        """
        with self._lock:
            return [render_category(c, archived=True) for c in self._add_tracking(categories)]

    def _add_tracking(self, seeds: SeedTracking) -> list[Record]:
        """Validate and store seed categories (the caller holds the lock)."""
        items: list[Any] = (
            [{"Name": name, "Options": list(options)} for name, options in seeds.items()]
            if isinstance(seeds, Mapping)
            else list(seeds)
        )
        records = [_seed_category(item) for item in items]
        problems = _category_problems([*self._tracking.values(), *records])
        if problems:
            raise ValueError("; ".join(problems))
        for record in records:
            self._tracking[record["TrackingCategoryID"]] = record
        return records

    def _list_tracking_categories(self, request: Request) -> Response:
        node = self._where(request, TRACKING_CATEGORY_SCHEMA, "TrackingCategory")
        archived = bool(request.flag("includeArchived"))
        found = [
            c
            for c in self._tracking.values()
            if (archived or c["Status"] == "ACTIVE")
            and (node is None or evaluate(node, functools.partial(_category_field, c)))
        ]
        found = self._order(request, found, TRACKING_CATEGORY_SCHEMA, "TrackingCategory", _category_field)
        return self._envelope("TrackingCategories", [render_category(c, archived=archived) for c in found])

    def _get_tracking_category(self, request: Request) -> Response:
        ref = request.segments[1]
        category = self._tracking.get(ref.lower()) if is_guid(ref) else None
        if category is None:
            return not_found()
        return self._envelope("TrackingCategories", [render_category(category, archived=True)])

    def _put_tracking_options(self, request: Request) -> Response:
        ref = request.segments[1]
        category = self._tracking.get(ref.lower()) if is_guid(ref) else None
        if category is None:
            return not_found()
        # The SDK sends one TrackingOption as the body; {"Options": [...]} adds several.
        items = self._json_body(request, "Options", "TrackingOption")
        taken = {o["Name"] for o in category["Options"]}
        names: list[str] = []
        failures: list[dict[str, Any]] = []
        for item in items:
            name = ((as_text(item.get("Name")) if isinstance(item, dict) else None) or "").strip()
            message = None
            if category["Status"] != "ACTIVE":
                message = ARCHIVED_CATEGORY
            elif not name:
                message = OPTION_NAME_REQUIRED
            elif len(name) > MAX_PUT_OPTION_LENGTH:
                message = OPTION_NAME_TOO_LONG
            elif name in taken:
                message = DUPLICATE_OPTION
            taken.add(name)
            names.append(name)
            if message is not None:
                failures.append({"Name": name, "ValidationErrors": [{"Message": message}]})
        if failures:
            # All or nothing, like Xero's other writes without summarizeErrors=false.
            return validation_error("A validation exception occurred", failures)
        added = [{"TrackingOptionID": str(uuid.uuid4()), "Name": name, "Status": "ACTIVE"} for name in names]
        category["Options"].extend(added)
        return self._envelope("Options", [render_option(o) for o in added])

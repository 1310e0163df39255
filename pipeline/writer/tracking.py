"""Tracking options made in Xero before the documents that name them are written.

Xero silently drops a line's tracking option it does not have, so the invoice would land without its
sales representative and nobody would know. Before a batch goes, every option its payloads name is
looked up in the tenant's tracking categories; a missing one is created, and read back to check it
is there. A category Xero does not have, or an option it would not make, fails only the documents
that name it, each with the reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from pipeline.context import TenantContext
from pipeline.errors import ErrorClass
from pipeline.idempotency import idempotency_key
from pipeline.ledger.models import SyncDocument
from pipeline.writer.outcomes import WriteOutcome, record_dead

log = logging.getLogger(__name__)

# Options seen in Xero are trusted this long before they are looked up again (a person may archive
# one; the next look-up after that makes it again).
KNOWN_FOR_SECONDS = 600.0

_known: dict[str, tuple[float, dict[str, tuple[str, str, dict[str, str]]]]] = {}
_lock = threading.Lock()


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def named_options(payload: dict[str, Any]) -> set[tuple[str, str]]:
    """(category, option) of every tracking option the payload's lines name, as given."""
    found: set[tuple[str, str]] = set()
    for line in payload.get("LineItems") or []:
        for tracking in (line or {}).get("Tracking") or []:
            name, option = str(tracking.get("Name") or ""), str(tracking.get("Option") or "")
            if name and option:
                found.add((name, option))
    return found


def _remembered(tenant_key: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    with _lock:
        seen_at, active = _known.get(tenant_key, (0.0, {}))
        return active if time.monotonic() - seen_at < KNOWN_FOR_SECONDS else {}


def _remember(tenant_key: str, active: dict[str, tuple[str, str, dict[str, str]]]) -> None:
    with _lock:
        _known[tenant_key] = (time.monotonic(), active)


def _active_options(categories: Sequence[dict[str, Any]]) -> dict[str, tuple[str, str, dict[str, str]]]:
    """Category (compared) -> (its id, its name as Xero spells it, its active options: compared -> as spelt)."""
    active: dict[str, tuple[str, str, dict[str, str]]] = {}
    for category in categories:
        if str(category.get("Status") or "ACTIVE").upper() != "ACTIVE":
            continue
        options = {
            _key(str(o.get("Name") or "")): str(o.get("Name") or "").strip()
            for o in category.get("Options") or []
            if str(o.get("Status") or "ACTIVE").upper() == "ACTIVE"
        }
        name = str(category.get("Name") or "").strip()
        active[_key(name)] = (str(category.get("TrackingCategoryID")), name, options)
    return active


def _pairs(active: dict[str, tuple[str, str, dict[str, str]]]) -> set[tuple[str, str]]:
    return {(category, option) for category, (_id, _name, held) in active.items() for option in held}


def _as_xero_spells(payload: dict[str, Any], active: dict[str, tuple[str, str, dict[str, str]]]) -> None:
    """Name each line's category and option exactly as Xero holds them: whether Xero matches names
    regardless of case is not documented, and an option it does not match is dropped in silence.
    """
    for line in payload.get("LineItems") or []:
        for tracking in (line or {}).get("Tracking") or []:
            found = active.get(_key(str(tracking.get("Name") or "")))
            if found is None:
                continue
            tracking["Name"] = found[1]
            tracking["Option"] = found[2].get(_key(str(tracking.get("Option") or "")), tracking.get("Option"))


def ensure_tracking_options(
    ctx: TenantContext, token: str, docs: list[SyncDocument], outcome: WriteOutcome
) -> list[SyncDocument]:
    """Make the tracking options the documents' payloads name; the documents that may now be written,
    their options spelt as Xero holds them.
    """
    wanted = {doc.id: named_options(doc.payload or {}) for doc in docs}
    needed = {(_key(c), _key(o)) for options in wanted.values() for c, o in options}
    if not needed:
        return docs
    remembered = _remembered(ctx.tenant_key)
    if needed <= _pairs(remembered):
        for doc in docs:
            _as_xero_spells(doc.payload or {}, remembered)
        return docs
    active = _active_options(ctx.xero.get_tracking_categories())
    refused: dict[tuple[str, str], tuple[ErrorClass, str]] = {}
    to_make: dict[str, list[str]] = {}
    for options in wanted.values():
        for category, option in options:
            found = active.get(_key(category))
            if found is None:
                refused[(_key(category), _key(option))] = (
                    ErrorClass.MAPPING,
                    f"Xero has no active tracking category {category!r} (sales_rep_tracking_category in the "
                    "rules file): add it in Xero, or change the rules file, then requeue",
                )
            elif _key(option) not in found[2] and option not in to_make.setdefault(found[0], []):
                to_make[found[0]].append(option)
    if to_make:
        for category_id, names in to_make.items():
            ctx.xero.create_tracking_options(
                category_id, names, idempotency_key(ctx.tenant_key, f"PUT /TrackingCategories/{category_id}", names)
            )
            log.info("tracking options %s created in category %s", names, category_id)
        # Checked, not assumed: read back what Xero now holds, which is what the lines are matched to.
        active = _active_options(ctx.xero.get_tracking_categories())
    present = _pairs(active)
    for pair in needed - present:
        refused.setdefault(
            pair, (ErrorClass.VALIDATION, f"Xero did not keep the tracking option {pair[1]!r} in category {pair[0]!r}")
        )
    _remember(ctx.tenant_key, active)
    ready: list[SyncDocument] = []
    for doc in docs:
        problems = [refused[p] for p in ((_key(c), _key(o)) for c, o in wanted[doc.id]) if p in refused]
        if problems:
            messages = [message for _, message in problems]
            record_dead(ctx, doc, token, "write", problems[0][0], messages, doc.payload, outcome)
        else:
            _as_xero_spells(doc.payload or {}, active)
            ready.append(doc)
    return ready

"""How the Xero stand-in writes the elements of one ``PUT``/``POST``: one by one, or all or nothing.

With ``summarizeErrors=false`` every element is committed or answered with its own errors; otherwise
(Xero's default) one failing element fails the whole batch with a 400 and nothing is written. The
``Claims`` of a batch hold the names and numbers its earlier elements take before anything is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pipeline.standins.xero.query import QueryMixin
from pipeline.standins.xero.responses import Request, Response, validation_error
from pipeline.standins.xero.values import ZERO_GUID, Record

Plan = TypeVar("Plan")


@dataclass(slots=True)
class Claims:
    """Names and numbers taken by earlier elements of an all-or-nothing batch not yet committed."""

    contact_names: set[str] = field(default_factory=set)
    contact_numbers: set[str] = field(default_factory=set)
    invoice_numbers: set[tuple[str, str]] = field(default_factory=set)


def failed_element(echo: dict[str, Any], id_key: str, errors: list[str], *, validation_flag: bool) -> dict[str, Any]:
    """Mark an echoed element as failed with ``errors`` (Xero's ``StatusAttributeString: ERROR`` form)."""
    if not echo.get(id_key):
        echo[id_key] = ZERO_GUID
    echo["HasErrors"] = True
    if validation_flag:
        echo["HasValidationErrors"] = True
    echo["StatusAttributeString"] = "ERROR"
    echo["ValidationErrors"] = [{"Message": m} for m in errors]
    return echo


class BatchWriteMixin(QueryMixin):
    """The element-by-element and the all-or-nothing write of a batch of contacts or invoices."""

    def _batch_items(self, request: Request, key: str, singular: str, path_record: Record | None) -> list[Any]:
        # A write to /Contacts/{id} or /Invoices/{id} takes the first element only.
        items = self._json_body(request, key, singular)
        return items[:1] if path_record is not None else items

    def _write_batch(
        self,
        request: Request,
        key: str,
        items: list[Any],
        prepare: Callable[[Any, Claims | None], tuple[Plan | None, list[str]]],
        claim: Callable[[Plan, Claims], None],
        commit: Callable[[Plan], Record],
        render: Callable[[Record], dict[str, Any]],
        error_echo: Callable[[Any, list[str]], dict[str, Any]],
    ) -> Response:
        if request.flag("summarizeErrors") is False:
            results: list[dict[str, Any]] = []
            for elem in items:
                plan, errors = prepare(elem, None)
                if plan is None:
                    results.append(error_echo(elem, errors))
                    continue
                record = commit(plan)
                results.append(render(record) | {"StatusAttributeString": "OK"})
            return self._envelope(key, results)
        claims = Claims()
        plans: list[Plan] = []
        failures: list[dict[str, Any]] = []
        for elem in items:
            plan, errors = prepare(elem, claims)
            if plan is None:
                failures.append(error_echo(elem, errors))
            else:
                claim(plan, claims)
                plans.append(plan)
        if failures:
            return validation_error("A validation exception occurred", failures)
        committed = [commit(plan) for plan in plans]
        return self._envelope(key, [render(record) for record in committed])

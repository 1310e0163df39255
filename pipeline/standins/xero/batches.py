"""How the Xero stand-in writes the elements of one ``PUT``/``POST``: one by one, or all or nothing.

With ``summarizeErrors=false`` every element is committed or answered with its own errors; otherwise
(Xero's default) one failing element fails the whole batch with a 400 and nothing is written. The
``Claims`` of a batch hold the names and numbers its earlier elements take before anything is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from pipeline.standins.xero.data import ms_date, parse_input_date
from pipeline.standins.xero.query import QueryMixin
from pipeline.standins.xero.responses import Request, Response, validation_error
from pipeline.standins.xero.values import ZERO_GUID, Record, as_float, jsonable

Plan = TypeVar("Plan")


@dataclass(slots=True)
class Claims:
    """What earlier elements of an all-or-nothing batch take before anything is committed.

    ``numbers`` holds (document type, number) pairs of invoices and credit notes; ``amounts`` the money
    that earlier payments or allocations of the batch take off each document (by its ID), so that two
    elements cannot together settle more than a document has outstanding.
    """

    contact_names: set[str] = field(default_factory=set)
    contact_numbers: set[str] = field(default_factory=set)
    numbers: set[tuple[str, str]] = field(default_factory=set)
    amounts: dict[str, Decimal] = field(default_factory=dict)

    def claimed(self, document_id: str) -> Decimal:
        """The amount earlier elements of the batch take off this document."""
        return self.amounts.get(document_id, Decimal("0.00"))

    def claim_amount(self, document_id: str, amount: Decimal) -> None:
        """Record that an element of the batch takes ``amount`` off this document."""
        self.amounts[document_id] = self.claimed(document_id) + amount


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


def echo_failed(id_key: str, elem: Any, errors: list[str]) -> dict[str, Any]:
    """A failed document, payment or allocation element echoed as sent, its dates as MS-JSON dates."""
    echo: dict[str, Any] = {}
    if isinstance(elem, dict):
        for key, value in elem.items():
            if key in ("Date", "DueDate"):
                try:
                    echo[key] = ms_date(parse_input_date(value))
                except ValueError:
                    continue
            else:
                echo[key] = jsonable(value, as_float)
    return failed_element(echo, id_key, errors, validation_flag=False)


class BatchWriteMixin(QueryMixin):
    """The element-by-element and the all-or-nothing write of a batch (contacts, documents, payments ...)."""

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

"""Cin7 Core answers read into models for passes over many sales (reconciliation, migration): a record
that does not parse is named, with its field, in the pass's errors and passed over, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from mappings import Cin7Purchase, Cin7PurchaseListRow, Cin7Sale, Cin7SaleListRow


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def list_rows(page: Iterable[dict[str, Any]], errors: list[str]) -> dict[str, Cin7SaleListRow]:
    """A saleList page's rows by SaleID."""
    rows: dict[str, Cin7SaleListRow] = {}
    for raw in page:
        try:
            row = Cin7SaleListRow.model_validate(raw)
        except ValidationError as exc:
            errors.append(f"unreadable saleList row {raw.get('SaleID')}: {_problem(exc)}")
            continue
        rows[row.sale_id] = row
    return rows


def parse_sale(detail: dict[str, Any], row: Cin7SaleListRow, errors: list[str]) -> Cin7Sale | None:
    """A sale's detail as the model, or None (noted) when it does not parse."""
    try:
        return Cin7Sale.model_validate(detail)
    except ValidationError as exc:
        errors.append(f"Cin7 sale {row.sale_id} ({row.order_number}) does not parse: {_problem(exc)}")
        return None


def parse_purchase(detail: dict[str, Any], row: Cin7PurchaseListRow, errors: list[str]) -> Cin7Purchase | None:
    """A purchase's detail as the model, or None (noted) when it does not parse."""
    try:
        return Cin7Purchase.model_validate(detail)
    except ValidationError as exc:
        errors.append(f"Cin7 purchase {row.id} ({row.order_number}) does not parse: {_problem(exc)}")
        return None


def list_purchase_rows(page: Sequence[dict[str, Any]], errors: list[str]) -> list[Cin7PurchaseListRow]:
    """A purchaseList page's rows; one that cannot be read is named in `errors` and passed over."""
    rows = []
    for raw in page:
        try:
            rows.append(Cin7PurchaseListRow.model_validate(raw))
        except ValueError as exc:
            errors.append(f"unreadable purchaseList row {raw.get('ID')}: {exc}")
    return rows

"""The Cin7 stand-in's settings and in-memory store: sales, customers, suppliers, purchases, webhooks,
counters and faults.

Also what tests reach in process: loading the dataset, ``put_sale``/``put_customer``/``sale``/``webhooks``,
``put_supplier``/``supplier``/``put_purchase``/``purchase``, ``stats()``, ``set_faults()`` and ``reset()``.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from http.server import ThreadingHTTPServer
from typing import Any

from pipeline.standins.generator import Dataset, parse_timestamp, sale_list_row
from pipeline.standins.generator.purchase_documents import purchase_list_row

DEFAULT_ACCOUNT_ID = "3f2c6a4e-8d1b-4c57-9e0a-6b7d2f1c9a31"
DEFAULT_APPLICATION_KEY = "b8e41d27-5c9f-4a6e-8f13-2d7c0a9e5b64"


@dataclass
class SaleEntry:
    """A stored sale (or purchase): its detail, its list row, the row's watermark (``Updated``, or a
    purchase's ``LastUpdatedDate``) and the detail's cached JSON.
    """

    detail: dict[str, Any]
    row: dict[str, Any]
    updated: datetime
    encoded: bytes | None = None


class Cin7State:
    """Settings and in-memory state of one Cin7 stand-in (see ``Cin7StandIn``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        application_key: str = DEFAULT_APPLICATION_KEY,
        dataset: Dataset | None = None,
        rate_limit_per_minute: int | None = None,
        window_seconds: float = 60.0,
        throttle_status: int = 429,
    ) -> None:
        self.host = host
        self.port = port
        self.account_id = account_id
        self.application_key = application_key
        self._initial = dataset
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.api_url = ""
        self._sales: dict[str, SaleEntry] = {}
        self._sorted: list[tuple[datetime, str]] | None = None
        self._customers: dict[str, dict[str, Any]] = {}
        self._suppliers: dict[str, dict[str, Any]] = {}
        self._purchases: dict[str, SaleEntry] = {}
        self._purchases_sorted: list[tuple[datetime, str]] | None = None
        self._webhooks: list[dict[str, Any]] = []
        self._rate_limit = rate_limit_per_minute
        self._window = window_seconds
        self._throttle_status = throttle_status
        self._calls_in_window: deque[float] = deque()
        self._calls = 0
        self._throttled = 0
        self._by_endpoint: dict[str, int] = {}
        self._throttle_next = 0
        self._outage_until = 0.0
        self._error_in_200_next = 0
        self._sale_errors_next = 0
        self._load_dataset()

    def _load_dataset(self) -> None:
        with self._lock:
            self._sales.clear()
            self._customers.clear()
            self._suppliers.clear()
            self._purchases.clear()
            self._sorted = None
            self._purchases_sorted = None
            if self._initial is not None:
                for sale in self._initial.sales:
                    self._put_sale_locked(copy.deepcopy(sale))
                for customer in self._initial.customers:
                    self._customers[str(customer["ID"]).lower()] = copy.deepcopy(customer)
                for supplier in self._initial.suppliers:
                    self._suppliers[str(supplier["ID"]).lower()] = copy.deepcopy(supplier)
                for purchase in self._initial.purchases:
                    self._put_purchase_locked(copy.deepcopy(purchase))

    def _put_sale_locked(self, sale: dict[str, Any]) -> None:
        row = sale_list_row(sale)
        updated = parse_timestamp(str(row["Updated"]))
        self._sales[str(sale["ID"]).lower()] = SaleEntry(sale, row, updated)
        self._sorted = None

    def put_sale(self, sale: dict[str, Any]) -> None:
        """Add or replace a sale detail; its list row's ``Updated`` becomes the sale's ``LastModifiedOn``."""
        detail = copy.deepcopy(sale)
        with self._lock:
            self._put_sale_locked(detail)

    def put_list_row(self, row: dict[str, Any], *, updated: datetime) -> str:
        """Serve `row` in ``saleList`` as it is, ordered at `updated`, with no detail behind it.

        For hostile rows (no SaleID, text too long, unreadable stamps) that a real sale detail could not
        produce; ``sale?ID=`` answers 404 for it. Returns the key it is stored under.
        """
        with self._lock:
            key = str(row.get("SaleID") or f"raw-{len(self._sales)}").lower()
            self._sales[key] = SaleEntry({}, copy.deepcopy(row), updated)
            self._sorted = None
            return key

    def put_customer(self, customer: dict[str, Any]) -> None:
        """Add or replace a customer (by ``ID``)."""
        with self._lock:
            self._customers[str(customer["ID"]).lower()] = copy.deepcopy(customer)

    def _put_purchase_locked(self, purchase: dict[str, Any]) -> None:
        row = purchase_list_row(purchase)
        updated = parse_timestamp(str(row["LastUpdatedDate"]))
        self._purchases[str(purchase["ID"]).lower()] = SaleEntry(purchase, row, updated)
        self._purchases_sorted = None

    def put_purchase(self, purchase: dict[str, Any]) -> None:
        """Add or replace a purchase detail; its ``purchaseList`` row is ordered at its ``LastUpdatedDate``."""
        detail = copy.deepcopy(purchase)
        with self._lock:
            self._put_purchase_locked(detail)

    def purchase(self, purchase_id: str) -> dict[str, Any]:
        """A copy of the current purchase detail; ``KeyError`` if unknown."""
        with self._lock:
            return copy.deepcopy(self._purchases[purchase_id.lower()].detail)

    def put_supplier(self, supplier: dict[str, Any]) -> None:
        """Add or replace a supplier (by ``ID``)."""
        with self._lock:
            self._suppliers[str(supplier["ID"]).lower()] = copy.deepcopy(supplier)

    def supplier(self, supplier_id: str) -> dict[str, Any]:
        """A copy of the current supplier; ``KeyError`` if unknown."""
        with self._lock:
            return copy.deepcopy(self._suppliers[supplier_id.lower()])

    def sale(self, sale_id: str) -> dict[str, Any]:
        """A copy of the current sale detail; ``KeyError`` if unknown."""
        with self._lock:
            return copy.deepcopy(self._sales[sale_id.lower()].detail)

    def webhooks(self) -> list[dict[str, Any]]:
        """A copy of the registered webhooks."""
        with self._lock:
            return copy.deepcopy(self._webhooks)

    def stats(self) -> dict[str, Any]:
        """``{"calls": n, "by_endpoint": {...}, "throttled": n}`` for API calls (admin calls not counted)."""
        with self._lock:
            return {
                "calls": self._calls,
                "by_endpoint": dict(self._by_endpoint),
                "throttled": self._throttled,
            }

    def set_faults(self, **faults: Any) -> None:
        """Inject faults.

        ``throttle_next`` (next N calls get the throttle status), ``outage_seconds`` (HTTP 500 for that long),
        ``error_in_200_next`` (next N calls get HTTP 200 with an ``ErrorCode`` body), ``sale_errors_next``
        (the next N ``sale?ID=`` reads get HTTP 500, whatever else is asked meanwhile). Also accepted:
        ``throttle_status``, ``rate_limit_per_minute`` (None disables) and ``window_seconds``.
        """
        with self._lock:
            for name, value in faults.items():
                match name:
                    case "throttle_next":
                        self._throttle_next = int(value)
                    case "outage_seconds":
                        self._outage_until = time.monotonic() + float(value)
                    case "error_in_200_next":
                        self._error_in_200_next = int(value)
                    case "sale_errors_next":
                        self._sale_errors_next = int(value)
                    case "throttle_status":
                        self._throttle_status = int(value)
                    case "rate_limit_per_minute":
                        self._rate_limit = None if value is None else int(value)
                        self._calls_in_window.clear()
                    case "window_seconds":
                        self._window = float(value)
                    case _:
                        raise ValueError(f"unknown fault {name!r}")

    def reset(self, *, restore_data: bool = False) -> None:
        """Clear stats, faults, the rate-limit window and webhooks; optionally reload the initial dataset."""
        with self._lock:
            self._calls = 0
            self._throttled = 0
            self._by_endpoint.clear()
            self._throttle_next = 0
            self._outage_until = 0.0
            self._error_in_200_next = 0
            self._sale_errors_next = 0
            self._calls_in_window.clear()
            self._webhooks.clear()
        if restore_data:
            self._load_dataset()

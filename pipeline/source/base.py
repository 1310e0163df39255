"""What the pipeline asks of a Cin7 product: the seam that Cin7 Core implements, and Cin7 Omni can.

Written from the calls the stages make: discovery lists changed sales, customers, purchases and suppliers
in pages, the fetch reads one sale's or purchase's detail, and the webhook receiver knows which events name
a sale. The records stay the source's own JSON; its models (`mappings.cin7core`, `mappings.cin7purchases`)
say how to read them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol


class Source(Protocol):
    """One Cin7 account, read page by page within its own rate limit."""

    #: The ledger's name for this source (`cin7core`), part of every document's natural key.
    name: str

    def iter_sale_pages(self, updated_since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """Pages of sale headers changed since the watermark, oldest first as the API gives them."""
        ...

    def get_sale(self, sale_id: str, *, bulk: bool = False, wait: bool = True) -> dict[str, Any]:
        """One sale's detail: its invoices, credit notes and payments (`bulk`: a migration's or
        reconciliation's read, which yields to the live sync's under the source's limit; `wait=False`:
        raise RateLimitTimeout unless the source's budget has a slot free now).
        """
        ...

    def iter_customer_pages(self, modified_since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """Pages of customers changed since the watermark."""
        ...

    def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        """One customer, or None when the source does not know it."""
        ...

    def iter_purchase_pages(self, updated_since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """Pages of purchase headers whose LastUpdatedDate is at or after the watermark."""
        ...

    def get_purchase(self, purchase_id: str, *, bulk: bool = False) -> dict[str, Any]:
        """One purchase's detail (simple, advanced or service): its bills, credit notes and payments."""
        ...

    def iter_supplier_pages(self, modified_since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """Pages of suppliers changed since the watermark, deprecated ones included."""
        ...

    def get_supplier(self, supplier_id: str) -> dict[str, Any] | None:
        """One supplier, deprecated ones included, or None when the source does not know it."""
        ...

    def tax_rules(self) -> list[dict[str, Any]]:
        """Every tax rule the account defines, with its rate (the mapping checks Xero's rates against them)."""
        ...

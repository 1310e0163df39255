"""Task options shared by every idempotent task."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, ProgrammingError

# Our own counts (the ledger, and Redis for deliveries), not Celery's, bound attempts at Cin7/Xero;
# these retries cover the database itself being briefly unreachable. A value the database refuses
# (DataError, IntegrityError) or a statement it cannot run fails the same way every time: no retry.
DB_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError, DBAPIError),
    "dont_autoretry_for": (DataError, IntegrityError, ProgrammingError),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 10,
}
# A duplicate delivery finds its row already moved on, so a task lost with its worker is re-delivered.
IDEMPOTENT: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}

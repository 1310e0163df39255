"""Liveness and readiness: what `GET /healthz`, `GET /readyz` and `cin7xero health` answer.

Liveness says only that the process answers (a restart would not fix a database outage, so it never
depends on one). Readiness says whether this process can do its work now: the ledger answers
`SELECT 1` and the broker accepts a connection, each within a short timeout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.app import broker_reachable, worker_answers
from pipeline.db import engine_for
from pipeline.settings import Settings

log = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Readiness:
    """Each dependency's state ("up" or "down") and whether all are up."""

    database: str
    broker: str

    @property
    def ready(self) -> bool:
        """Every dependency up."""
        return self.database == "up" and self.broker == "up"

    def as_json(self) -> dict[str, str]:
        """The `/readyz` body."""
        return {"status": "ok" if self.ready else "unavailable", "database": self.database, "broker": self.broker}


def readiness(settings: Settings) -> Readiness:
    """Ask the ledger and the broker, each once."""
    try:
        with engine_for(settings.database_url).connect() as connection:
            connection.execute(text("SELECT 1"))
        database = "up"
    except SQLAlchemyError as exc:
        log.warning("readiness: ledger unreachable: %s", exc)
        database = "down"
    broker = "up" if broker_reachable(BROKER_TIMEOUT_SECONDS) else "down"
    return Readiness(database, broker)


def worker_alive(name: str, timeout: float) -> bool:
    """The named worker (`cin7@host`) answers a ping through the broker within `timeout`."""
    return worker_answers(name, timeout)

"""API calls made per tenant, API and UTC day: the ledger's folded counts plus what Redis holds since."""

from __future__ import annotations

import logging

import redis
from sqlalchemy.orm import Session

from pipeline.context import UsageCounts, ledger_usage, parse_usage_hash, shared_redis, usage_applied, usage_keys
from pipeline.settings import Settings

log = logging.getLogger(__name__)


# A fold that finishes between our two Redis reads makes us read again; more than this many in a row
# means the sweep is folding in a tight loop, and the last reading is close enough.
_USAGE_READ_TRIES = 5


def api_usage_by_day(settings: Settings, tenant_key: str, tenant_pk: int, session: Session) -> UsageCounts:
    """Calls and 429s per (UTC day, API): the ledger plus what workers counted in Redis since the last fold.

    Lock-free against the sweep's fold (pipeline.recovery.sweep.fold_api_usage): the ledger is read between two
    reads of the fold generation, and a folding hash already committed (its stamp says so) is not
    counted twice.
    """
    client = shared_redis(settings)
    keys = usage_keys(tenant_key)
    for _ in range(_USAGE_READ_TRIES):
        try:
            generation = client.get(keys.generation) if client is not None else None
        except redis.RedisError as exc:
            log.warning("API usage: Redis unavailable (%s); showing the ledger's counts only", exc)
            client = None
        ledger = ledger_usage(session, tenant_pk)
        session.rollback()  # a retry reads afresh, whatever the isolation level
        if client is None:
            return ledger
        try:
            pipe = client.pipeline(transaction=True)
            pipe.get(keys.generation)
            pipe.hgetall(keys.live)
            pipe.hgetall(keys.folding)
            generation_after, live, folding = pipe.execute()
        except redis.RedisError as exc:
            log.warning("API usage: Redis unavailable (%s); showing the ledger's counts only", exc)
            return ledger
        if generation_after != generation:
            continue
        break
    live_counts, _ = parse_usage_hash(live)
    folding_counts, bases = parse_usage_hash(folding)
    total: UsageCounts = dict(ledger)
    for source in (live_counts, {} if usage_applied(folding_counts, bases, ledger) else folding_counts):
        for key, (calls, limited) in source.items():
            seen = total.get(key, (0, 0))
            total[key] = (seen[0] + calls, seen[1] + limited)
    return total


def by_api(usage: UsageCounts) -> dict[str, tuple[int, int]]:
    """Calls and 429s per API, summed over the days."""
    total: dict[str, tuple[int, int]] = {}
    for (_day, api), (calls, limited) in usage.items():
        seen = total.get(api, (0, 0))
        total[api] = (seen[0] + calls, seen[1] + limited)
    return total

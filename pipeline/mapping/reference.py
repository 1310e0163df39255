"""What the mapping checks documents against, read from Xero and Cin7 and cached for the tenant.

Xero's base currency (`GET /Organisation`), its active account codes and Rounding account (`GET
/Accounts`), its tax rates (`GET /TaxRates`) and Cin7's tax rules (`ref/tax`) become one
`mappings.OrgReference`: four calls an hour per tenant, not four per document.
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from mappings import Cin7TaxRule, OrgReference, tax_rule_key
from pipeline.context import TenantContext
from pipeline.errors import ErrorClass, SyncError
from pipeline.ledger.models import Tenant, utcnow
from pipeline.operations.pauses import TenantPaused, paused_for
from pipeline.xero.sdk import parse_xero_date

log = logging.getLogger(__name__)

REFERENCE_TTL = timedelta(hours=1)
# After a failed read, mapping tasks wait this long before anyone asks again.
REFERENCE_RETRY_AFTER = timedelta(seconds=5)
# Each process keeps the tenant's reference this long before it reads the tenant row again: one mapping
# per order would otherwise pay a ledger round trip for data that changes hourly at most.
REFERENCE_PROCESS_TTL_SECONDS = 30.0

# What the cached JSON must hold; a copy without one of them is read again.
REFERENCE_KEYS = frozenset(
    {
        "accounts",
        "payment_accounts",
        "base_currency",
        "lock_date",
        "rounding_account",
        "xero_tax_rates",
        "cin7_tax_rules",
    }
)

_process_cache: dict[tuple[str, int], tuple[float, OrgReference]] = {}


def org_reference(ctx: TenantContext) -> OrgReference:
    """The tenant's reference data: cached in the process briefly, and on the tenant row for an hour."""
    key = (ctx.settings.database_url, ctx.tenant_pk)
    cached_here = _process_cache.get(key)
    if cached_here is not None and time.monotonic() - cached_here[0] < REFERENCE_PROCESS_TTL_SECONDS:
        return cached_here[1]
    reference = as_reference(_tenant_reference(ctx))
    _process_cache[key] = (time.monotonic(), reference)
    return reference


def forget_process_reference() -> None:
    """Drop this process's copies (tests that change what Xero or Cin7 hold)."""
    _process_cache.clear()


def as_reference(stored: dict[str, Any]) -> OrgReference:
    """The cached JSON as the mapping's OrgReference."""
    return OrgReference(
        account_codes=frozenset(stored.get("accounts") or ()),
        payment_account_codes=frozenset(stored.get("payment_accounts") or ()),
        lock_date=date.fromisoformat(stored["lock_date"]) if stored.get("lock_date") else None,
        base_currency=stored.get("base_currency"),
        rounding_account=stored.get("rounding_account"),
        xero_tax_rates={k: Decimal(v) for k, v in (stored.get("xero_tax_rates") or {}).items()},
        cin7_tax_rules={k: Decimal(v) for k, v in (stored.get("cin7_tax_rules") or {}).items()},
    )


def _tenant_reference(ctx: TenantContext) -> dict[str, Any]:
    """The reference JSON, cached on the tenant row for an hour.

    A failed read is remembered for REFERENCE_RETRY_AFTER (`reference_fetched_at` set with nothing
    stored, or a stale copy kept a little longer): otherwise, on a cold cache during an outage, every
    mapping task would call Xero again and again, and spend the tenant's minute limit doing it.
    """
    now = utcnow()
    with ctx.sessions() as session:
        tenant = session.get(Tenant, ctx.tenant_pk)
        assert tenant is not None
        fetched_at = tenant.reference_fetched_at
        cached = tenant.reference
        paused_reason = tenant.pause_reason
    if cached is not None and not cached.keys() >= REFERENCE_KEYS:
        # Cached by an older version that did not read everything the mapping now checks.
        fetched_at = None
    if cached is not None and fetched_at is not None and now - fetched_at < REFERENCE_TTL:
        return cached
    left = paused_for(ctx)
    if left is not None:
        # No calls while paused: an hour-old copy is better than spending a parked tenant's calls.
        if cached is not None:
            return cached
        raise TenantPaused(f"tenant paused ({paused_reason}); mapping waits", retry_after=left)
    if cached is None and fetched_at is not None and now - fetched_at < REFERENCE_RETRY_AFTER:
        wait = (fetched_at + REFERENCE_RETRY_AFTER - now).total_seconds()
        raise SyncError(
            ErrorClass.TRANSIENT,
            "Xero's accounts and tax rates or Cin7's tax rules could not be read just now",
            retry_after=wait,
        )
    try:
        fresh = read_reference(ctx)
    except SyncError:
        _remember_failure(ctx, now, stale=cached is not None)
        if cached is not None:
            log.warning("reference data unavailable; mapping with the copy from %s", fetched_at)
            return cached
        raise
    with ctx.sessions() as session, session.begin():
        tenant = session.get(Tenant, ctx.tenant_pk)
        assert tenant is not None
        tenant.reference = fresh
        tenant.reference_fetched_at = utcnow()
    return fresh


def _remember_failure(ctx: TenantContext, now: datetime, *, stale: bool) -> None:
    with ctx.sessions() as session, session.begin():
        tenant = session.get(Tenant, ctx.tenant_pk)
        assert tenant is not None
        # A stale copy stays usable a little longer; without one, the failure itself is remembered.
        tenant.reference_fetched_at = (now - REFERENCE_TTL + REFERENCE_RETRY_AFTER) if stale else now


def read_reference(ctx: TenantContext) -> dict[str, Any]:
    """Read Xero's accounts and tax rates and Cin7's tax rules now, as the JSON the tenant row caches."""
    accounts = [a for a in ctx.xero.get_accounts() if str(a.get("Status", "ACTIVE")).upper() == "ACTIVE"]
    rounding = next(
        (str(a["Code"]) for a in accounts if a.get("Code") and str(a.get("SystemAccount") or "").upper() == "ROUNDING"),
        None,
    )
    rates: dict[str, str] = {}
    for rate in ctx.xero.get_tax_rates():
        if str(rate.get("Status", "ACTIVE")).upper() == "ACTIVE" and rate.get("TaxType"):
            rates[str(rate["TaxType"])] = _percent(rate.get("EffectiveRate"), f"Xero tax rate {rate['TaxType']}")
    rules: dict[str, str] = {}
    for row in ctx.cin7.tax_rules():
        try:
            rule = Cin7TaxRule.model_validate(row)
        except ValidationError as exc:
            # One unreadable rule must not stop every sale: lines naming it go unchecked against Cin7's
            # rate (Xero's still applies), and the operator hears of it.
            log.warning("Cin7 tax rule %r does not parse: %s", row.get("Name"), exc)
            continue
        if rule.tax_percent is not None:
            rules[tax_rule_key(rule.name)] = format(rule.tax_percent.normalize(), "f")
    organisation = ctx.xero.get_organisation()
    base_currency = str(organisation.get("BaseCurrency") or "").upper() or None
    lock_date = lock_date_of(organisation)
    payable = (
        a for a in accounts if str(a.get("Type") or "").upper() == "BANK" or a.get("EnablePaymentsToAccount") is True
    )
    return {
        "accounts": sorted(str(a["Code"]) for a in accounts if a.get("Code")),
        "payment_accounts": sorted(str(a["Code"]) for a in payable if a.get("Code")),
        "base_currency": base_currency,
        "lock_date": lock_date.isoformat() if lock_date else None,
        "rounding_account": rounding,
        "xero_tax_rates": rates,
        "cin7_tax_rules": rules,
    }


def lock_date_of(organisation: dict[str, Any]) -> date | None:
    """The later of the organisation's period and end-of-year lock dates ("shown if set")."""
    days = [
        day
        for key in ("PeriodLockDate", "EndOfYearLockDate")
        if (day := parse_xero_date(organisation.get(key))) is not None
    ]
    return max(days) if days else None


def _percent(value: object, what: str) -> str:
    try:
        # Floats through str, so 12.5 stays 12.5; "10", not "1E+1", in the cached JSON.
        return format(Decimal(str(value)).normalize(), "f")
    except (InvalidOperation, ValueError) as exc:
        raise SyncError(ErrorClass.VALIDATION, f"{what} has no readable EffectiveRate ({value!r})") from exc

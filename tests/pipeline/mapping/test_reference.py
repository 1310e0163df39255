"""The mapping's reference data read from Xero and Cin7 over HTTP, and cached for the tenant."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mappings import tax_rule_key
from pipeline.errors import SyncError
from pipeline.ledger.models import Tenant
from pipeline.mapping import reference
from pipeline.policy import retryable
from tests.pipeline.inprocess import InProcess

pytestmark = pytest.mark.pipeline


def _xero_calls(p: InProcess, endpoint: str) -> int:
    return int(p.xero.stats()["by_endpoint"].get(endpoint, 0))


def test_accounts_rounding_account_and_both_sides_tax_rates_are_read_once_an_hour(inproc: InProcess) -> None:
    reference.forget_process_reference()
    found = reference.org_reference(inproc.ctx)

    assert found.account_codes is not None and {"200", "260", "860"} <= found.account_codes
    assert found.rounding_account == "860"
    assert found.base_currency == "AUD"
    assert found.xero_tax_rates is not None
    assert found.xero_tax_rates["OUTPUT"] == Decimal(10) and found.xero_tax_rates["EXEMPTOUTPUT"] == 0
    # A deleted Xero rate is not offered to the mapping.
    assert "TAX001" not in found.xero_tax_rates
    assert found.cin7_rate("GST on Income") == Decimal(10)
    assert found.cin7_rate("  tax ON sales ") == Decimal(0)
    assert found.cin7_tax_rules is not None and tax_rule_key("BAS Excluded") in found.cin7_tax_rules

    calls = _xero_calls(inproc, "GET /TaxRates"), _xero_calls(inproc, "GET /Accounts")
    reference.forget_process_reference()
    assert reference.org_reference(inproc.ctx) == found  # from the tenant row, no new calls
    assert (_xero_calls(inproc, "GET /TaxRates"), _xero_calls(inproc, "GET /Accounts")) == calls


def test_a_failed_read_without_a_copy_is_a_transient_error_and_is_not_repeated_at_once(inproc: InProcess) -> None:
    reference.forget_process_reference()
    inproc.xero.set_faults(outage_seconds=30)
    with pytest.raises(SyncError) as first:
        reference.org_reference(inproc.ctx)
    assert retryable(first.value.error_class)
    calls = inproc.xero.stats()["calls"]
    reference.forget_process_reference()
    with pytest.raises(SyncError) as second:
        reference.org_reference(inproc.ctx)
    assert second.value.retry_after is not None and 0 < second.value.retry_after <= 5
    assert inproc.xero.stats()["calls"] == calls


def test_a_stale_copy_is_used_while_xero_is_down(inproc: InProcess) -> None:
    reference.forget_process_reference()
    fresh = reference.org_reference(inproc.ctx)
    with inproc.ctx.sessions() as session, session.begin():
        tenant = session.get(Tenant, inproc.ctx.tenant_pk)
        assert tenant is not None and tenant.reference_fetched_at is not None
        tenant.reference_fetched_at = tenant.reference_fetched_at - reference.REFERENCE_TTL
    inproc.xero.set_faults(outage_seconds=30)
    reference.forget_process_reference()
    assert reference.org_reference(inproc.ctx) == fresh

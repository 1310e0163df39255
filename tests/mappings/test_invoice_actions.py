"""decide_invoice_action and void_payload: what to do in Xero for each Cin7 invoice state."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mappings import Cin7InvoiceStatus, InvoiceAction, XeroInvoiceStatus, decide_invoice_action, void_payload

C = Cin7InvoiceStatus
X = XeroInvoiceStatus
A = InvoiceAction
ZERO = Decimal(0)
PART = Decimal("10.00")

# (cin7 status, synced, xero status, amount paid in xero, content changed) -> action
CASES: list[tuple[Cin7InvoiceStatus | str, bool, XeroInvoiceStatus | None, Decimal | None, bool, InvoiceAction]] = [
    # drafts are never synced, whatever else is true
    (C.DRAFT, False, None, None, False, A.SKIP),
    (C.DRAFT, True, X.AUTHORISED, ZERO, True, A.SKIP),
    (C.NOT_AVAILABLE, False, None, None, True, A.SKIP),
    # voided in Cin7
    (C.VOIDED, False, None, None, False, A.SKIP),
    (C.VOIDED, True, X.DRAFT, ZERO, False, A.DELETE),
    (C.VOIDED, True, X.SUBMITTED, None, True, A.DELETE),
    (C.VOIDED, True, X.AUTHORISED, ZERO, False, A.VOID),
    (C.VOIDED, True, X.AUTHORISED, None, False, A.VOID),
    (C.VOIDED, True, X.AUTHORISED, PART, False, A.CONFLICT),
    (C.VOIDED, True, X.PAID, ZERO, False, A.CONFLICT),
    (C.VOIDED, True, X.VOIDED, ZERO, False, A.NOTHING),
    (C.VOIDED, True, X.DELETED, None, True, A.NOTHING),
    (C.VOIDED, True, None, None, False, A.CONFLICT),
    # authorised or paid in Cin7
    (C.AUTHORISED, False, None, None, False, A.CREATE),
    (C.PAID, False, None, None, True, A.CREATE),
    (C.AUTHORISED, True, X.AUTHORISED, ZERO, False, A.NOTHING),
    (C.PAID, True, X.PAID, Decimal("424.54"), False, A.NOTHING),
    (C.AUTHORISED, True, X.VOIDED, ZERO, False, A.NOTHING),
    (C.AUTHORISED, True, X.AUTHORISED, ZERO, True, A.UPDATE),
    (C.AUTHORISED, True, X.DRAFT, None, True, A.UPDATE),
    (C.PAID, True, X.SUBMITTED, ZERO, True, A.UPDATE),
    (C.AUTHORISED, True, X.AUTHORISED, PART, True, A.CONFLICT),
    (C.PAID, True, X.PAID, Decimal("424.54"), True, A.CONFLICT),
    (C.AUTHORISED, True, X.PAID, None, True, A.CONFLICT),
    (C.AUTHORISED, True, X.VOIDED, ZERO, True, A.CONFLICT),
    (C.AUTHORISED, True, X.DELETED, ZERO, True, A.CONFLICT),
    # plain strings, as read from a ledger row, and statuses Cin7 may add later
    ("authorised", False, None, None, False, A.CREATE),
    ("AUTHORIZED", True, X.AUTHORISED, ZERO, True, A.UPDATE),
    ("PARTIALLY CREDITED", True, X.AUTHORISED, ZERO, True, A.SKIP),
]


@pytest.mark.parametrize(("cin7", "synced", "xero", "paid", "changed", "expected"), CASES)
def test_decide_invoice_action_follows_the_table(
    cin7: Cin7InvoiceStatus | str,
    synced: bool,
    xero: XeroInvoiceStatus | None,
    paid: Decimal | None,
    changed: bool,
    expected: InvoiceAction,
) -> None:
    action = decide_invoice_action(
        cin7, synced=synced, xero_status=xero, xero_amount_paid=paid, content_changed=changed
    )
    assert action is expected


def test_every_cin7_status_is_covered_by_the_table() -> None:
    assert {Cin7InvoiceStatus.parse(c) for c, *_ in CASES} >= set(Cin7InvoiceStatus)


def test_void_payload_carries_only_id_number_and_voided_status() -> None:
    body = void_payload("8f0c2b1e-0000-4000-8000-000000000001", "INV-00039", InvoiceAction.VOID).to_json()
    assert body == {
        "InvoiceID": "8f0c2b1e-0000-4000-8000-000000000001",
        "InvoiceNumber": "INV-00039",
        "Status": "VOIDED",
    }


def test_delete_payload_has_deleted_status() -> None:
    assert void_payload("id-1", "INV-1", InvoiceAction.DELETE).to_json()["Status"] == "DELETED"


@pytest.mark.parametrize("action", [A.CREATE, A.UPDATE, A.SKIP, A.CONFLICT, A.NOTHING])
def test_void_payload_refuses_other_actions(action: InvoiceAction) -> None:
    with pytest.raises(ValueError, match="VOID or DELETE"):
        void_payload("id-1", "INV-1", action)


def test_missing_cin7_status_is_skipped() -> None:
    action = decide_invoice_action(
        None, synced=True, xero_status=X.AUTHORISED, xero_amount_paid=ZERO, content_changed=True
    )
    assert action is A.SKIP

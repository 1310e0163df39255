"""A purchase the ledger cannot hold is refused by the name of the field, before anything is recorded."""

from __future__ import annotations

from mappings import Cin7Purchase
from pipeline.discovery.purchases import unstorable_fields

PURCHASE_ID = "60b75408-0000-4000-8000-000000000001"


def _purchase(**fields: object) -> Cin7Purchase:
    return Cin7Purchase.model_validate({"ID": PURCHASE_ID, "Type": "Advanced Purchase", **fields})


def test_a_storable_purchase_has_no_problem() -> None:
    purchase = _purchase(
        Invoice=[{"TaskID": PURCHASE_ID, "InvoiceNumber": "345345", "Status": "AUTHORISED"}],
        CreditNote=[{"TaskID": PURCHASE_ID, "CreditNoteNumber": "CR-1", "Status": "AUTHORISED"}],
    )
    assert unstorable_fields(purchase) == []


def test_every_over_long_or_nul_field_is_named_with_its_place() -> None:
    purchase = _purchase(
        Invoice=[{"InvoiceNumber": "A" * 256, "Status": "AUTHORISED", "Payments": [{"ID": None, "Amount": 1}]}],
        CreditNote=[
            {"CreditNoteNumber": "CR\x00-1", "Status": "AUTHORISED", "Refunds": [{"Amount": 1, "Reference": "x"}]}
        ],
    )
    problems = unstorable_fields(purchase)
    assert [p.split(":")[0] for p in problems] == ["Invoice[0].InvoiceNumber", "CreditNote[0].CreditNoteNumber"]
    assert "NUL" in problems[1]

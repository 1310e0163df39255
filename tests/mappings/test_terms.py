"""Due dates from Cin7 payment terms."""

from __future__ import annotations

from datetime import date

import pytest

from mappings import MappingError, due_date_from_terms


@pytest.mark.parametrize(
    ("invoice_date", "terms", "expected"),
    [
        (date(2024, 3, 15), "30 days", date(2024, 4, 14)),
        (date(2024, 12, 20), "14 Days", date(2025, 1, 3)),
        (date(2024, 3, 15), "1 day", date(2024, 3, 16)),
        (date(2024, 3, 15), "Net 7", date(2024, 3, 22)),
        (date(2024, 3, 15), "Due on receipt", date(2024, 3, 15)),
        (date(2024, 3, 15), "COD", date(2024, 3, 15)),
        (date(2024, 3, 15), "", date(2024, 3, 15)),
        (date(2024, 3, 15), None, date(2024, 3, 15)),
        (date(2024, 1, 31), "20th of following month", date(2024, 2, 20)),
        (date(2024, 12, 5), "1st of following month", date(2025, 1, 1)),
        (date(2024, 1, 10), "31st of following month", date(2024, 2, 29)),
        (date(2023, 1, 10), "30th of following month", date(2023, 2, 28)),
        (date(2024, 1, 31), "End of following month", date(2024, 2, 29)),
        (date(2024, 12, 1), "end of following month", date(2025, 1, 31)),
        (date(2024, 4, 2), "End of month", date(2024, 4, 30)),
        (date(2024, 2, 29), "EOM", date(2024, 2, 29)),
    ],
)
def test_due_date_from_each_payment_terms_form(invoice_date: date, terms: str | None, expected: date) -> None:
    assert due_date_from_terms(invoice_date, terms) == expected


@pytest.mark.parametrize("terms", ["When the cows come home", "32nd of following month", "0th of following month"])
def test_unknown_payment_terms_raise_naming_them(terms: str) -> None:
    with pytest.raises(MappingError) as info:
        due_date_from_terms(date(2024, 3, 15), terms)
    assert info.value.value == terms
    assert repr(terms) in info.value.message

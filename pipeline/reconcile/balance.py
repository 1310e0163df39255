"""Comparing what was paid and credited: Xero's AmountPaid/AmountCredited/AmountDue against Cin7's.

The sync writes Cin7's payments, refunds and credit note allocations to Xero, so once a document's
totals agree its balance must too. Cin7's side is in the rows (`paid`, `credited`, `due`, built from
`mappings.credit_allocations`); the figures read the same way for a credit note (refunded, allocated,
remaining credit). Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from pipeline.reconcile.rows import CENT, CIN7_LIVE, CREDIT_NOTE, INVOICE, Cin7InvoiceRow, Finding, Kind, XeroInvoiceRow

# Keys of `Finding.difference` for a balance (Xero's invoice field names; for a credit note they stand
# for its refunds, its allocations and its RemainingCredit).
PAID, CREDITED, DUE = "AmountPaid", "AmountCredited", "AmountDue"
BALANCE_KEYS = (PAID, CREDITED, DUE)

# What each figure is called on each kind of document, for the finding's detail.
_WORDS = {INVOICE: ("paid", "credited", "due"), CREDIT_NOTE: ("refunded", "allocated", "remaining")}

NOT_HEALED = (
    "not healed automatically: --heal never adds or removes payments or allocations; correct them in Xero "
    "(or Cin7) by hand"
)


def balance_words(document: str) -> tuple[str, str, str]:
    """How the paid, credited and due figures are called on this kind of document."""
    return _WORDS.get(document, _WORDS[INVOICE])


def balance_differences(
    cin7: Cin7InvoiceRow, xero: XeroInvoiceRow, total_differences: Mapping[str, Decimal] | None = None
) -> dict[str, Decimal]:
    """Xero minus Cin7, to the cent, for each balance figure that differs.

    The amount due (remaining credit) is left out while the totals differ: the totals finding already
    explains it, and the same difference would be reported twice.
    """
    pairs = [(PAID, cin7.paid, xero.amount_paid), (CREDITED, cin7.credited, xero.amount_credited)]
    if not total_differences:
        pairs.append((DUE, cin7.due, xero.due))
    differences = {}
    for name, ours, theirs in pairs:
        difference = (theirs - ours).quantize(CENT)
        if difference != 0:
            differences[name] = difference
    return differences


def _figures(paid: Decimal, credited: Decimal, due: Decimal, words: tuple[str, str, str]) -> str:
    return ", ".join(f"{word} {value.quantize(CENT)}" for word, value in zip(words, (paid, credited, due), strict=True))


def balance_finding(
    cin7: Cin7InvoiceRow,
    xero: XeroInvoiceRow,
    total_differences: Mapping[str, Decimal],
    *,
    noun: str,
    known: str | None,
    doc_id: int | None,
) -> Finding | None:
    """A BALANCE finding when a live Cin7 document and its live Xero one disagree on what was paid or credited."""
    if cin7.status not in CIN7_LIVE or not xero.live:
        return None
    differences = balance_differences(cin7, xero, total_differences)
    if not differences:
        return None
    words = balance_words(cin7.document)
    detail = (
        f"{noun} {words[0]}/{words[1]} differs: Cin7 {_figures(cin7.paid, cin7.credited, cin7.due, words)}; "
        f"Xero {_figures(xero.amount_paid, xero.amount_credited, xero.due, words)} ({NOT_HEALED})"
    )
    return Finding(
        Kind.BALANCE,
        detail,
        cin7=cin7,
        xero=(xero,),
        difference=differences,
        known=known,
        healable=False,
        doc_id=doc_id,
    )

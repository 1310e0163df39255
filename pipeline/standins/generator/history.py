"""``generate_history()``: a generated Cin7 history of several years, part of it already typed into Xero by hand.

For testing a historical migration: the sales are ``generate()``'s (same customers, lines, currencies,
settlement and hostile cases), but spread evenly over the last ``years`` years, oldest first, and about
10 % of them are orders that were never invoiced. Some of the invoices a sync would write are in Xero
already, typed by a bookkeeper (``History.xero_invoices``, to seed the Xero stand-in with), and
``History.fates`` says what a correct migration plan does with every invoice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pipeline.standins.generator.dataset import Dataset, Timeline, generate_on
from pipeline.standins.generator.expectations import InvoiceExpectation
from pipeline.standins.generator.hand_entry import altered_invoice, typed_invoice
from pipeline.standins.generator.settlement import document_day
from pipeline.standins.generator.tables import LOCKED_INVOICE_DATE, SPECIAL_CUSTOMERS

Fate = Literal["create", "adopt", "conflict", "locked", "blocked", "skipped"]

#: Share of the ordinary sales that are orders never invoiced.
NEVER_INVOICED_SHARE = 0.10
# A sale's invoices are dated up to 20 days before its LastModifiedOn and its order up to 5 days before
# its first invoice: stamps start this far into the span, so that every order date falls within it.
_LEAD = timedelta(days=26)


@dataclass
class History:
    """A generated history: the Cin7 ``dataset``, what is in Xero already and what a migration must decide.

    ``dataset.expectations`` keep ``generate()``'s meaning (a sync against the stand-in's default lock date,
    2020-06-30); ``fates`` are the migration's, against ``lock_date``.
    """

    dataset: Dataset
    #: Xero ``PUT /Invoices`` JSON typed by hand (no payments), for ``XeroStandIn(seed_invoices=...)``;
    #: each also carries the ``SubTotal``/``TotalTax``/``Total`` Xero computes from its lines.
    xero_invoices: list[dict[str, Any]]
    #: Xero's period lock date: one year before ``now``.
    lock_date: date
    #: Invoice number -> what a correct migration plan over the whole history does with it.
    fates: dict[str, Fate]
    #: The first day of the history (``years`` before ``now``).
    start: date


def generate_history(
    seed: int,
    n_sales: int,
    *,
    now: datetime,
    years: int = 2,
    pre_entered: float = 0.15,
    altered: float = 0.03,
    hostile: bool = True,
) -> History:
    """Generate ``n_sales`` sales over the ``years`` years before ``now``, with some invoices typed into Xero.

    Sales' ``LastModifiedOn`` are spread evenly from ``start`` (+26 days) to ``now``, oldest first (a few runs
    of consecutive sales share one millisecond, as in ``generate()``); every document date follows it
    within 26 days before, so all fall in [``start``, ``now``] except the hostile locked invoice's
    (2019-05-10). About 10 % of the ordinary sales are orders never invoiced (saleList ``CombinedInvoiceStatus``
    NOT INVOICED, no ``InvoiceNumber``). Of the invoices whose outcome is ``synced``, a share ``pre_entered``
    is in Xero with Cin7's totals and a further share ``altered`` with a different total (as shares of all
    the synced invoices, rounded).

    The fate of each invoice, checked in this order:

    1. ``skipped``: DRAFT or VOIDED (outcome ``ignored``): nothing to write, whatever its date;
    2. ``adopt`` / ``conflict``: typed into Xero already, with Cin7's totals / with other ones, whatever its
       date (the migration writes nothing for it, so the lock date does not matter);
    3. ``blocked``: a mapping problem (outcome ``dead_mapping``), whatever its date: a plan maps every live
       invoice it does not find in Xero, as ``pipeline.migration`` does;
    4. ``locked``: dated on or before ``lock_date`` (the hostile locked invoice always is);
    5. ``create``: everything else, the JPY invoices (``dead_xero``) included: Xero refuses them when they are
       written, which the plan cannot know.

    Typed invoices are drawn from the synced ones of all but the special customers (``tables.SPECIAL_CUSTOMERS``):
    their Xero contacts are not simply the contact of their name (adopted by e-mail or number, archived,
    or one name for two customers), so what a migration should make of a hand-typed invoice of theirs would
    depend on how it links contacts.

    Deterministic in all the arguments. ``ValueError`` when ``now`` is naive, when ``years < 1``, when the
    shares are not in [0, 1] or add up to more than 1, or when the lock date would fall before the hostile
    locked invoice (``now`` before 2020-05-11).
    """
    if years < 1:
        raise ValueError("years must be >= 1")
    if not (0 <= pre_entered <= 1 and 0 <= altered <= 1 and pre_entered + altered <= 1):
        raise ValueError("pre_entered and altered must be shares in [0, 1] adding up to at most 1")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    start, lock_date = years_before(now.date(), years), years_before(now.date(), 1)
    if lock_date < LOCKED_INVOICE_DATE:
        raise ValueError(f"the lock date {lock_date} must not fall before the locked invoice's {LOCKED_INVOICE_DATE}")
    # Which sales stay uninvoiced, and which invoices were typed into Xero, draw from a stream of their own.
    rng = random.Random(f"history:{seed}")

    def never_invoiced(index: int, kind: str) -> bool:
        # Not the special customers' first sales: the contact tests rely on their invoices.
        return kind == "normal" and index >= len(SPECIAL_CUSTOMERS) and rng.random() < NEVER_INVOICED_SHARE

    def stamps(main: random.Random, at: datetime, n: int) -> list[datetime]:
        return spread_stamps(main, datetime.combine(start, datetime.min.time(), UTC) + _LEAD, at, n)

    dataset = generate_on(Timeline(stamps, never_invoiced), seed, n_sales, now=now, hostile=hostile)
    invoices = _invoices_with_expectations(dataset)
    n_synced = sum(1 for _, _, expectation in invoices if expectation.outcome == "synced")
    special = {customer["ID"] for customer in dataset.customers[: len(SPECIAL_CUSTOMERS)]}
    synced = [row for row in invoices if row[2].outcome == "synced" and row[2].customer_id not in special]
    n_altered = round(n_synced * altered)
    typed = rng.sample(range(len(synced)), min(len(synced), n_altered + round(n_synced * pre_entered)))
    fates: dict[str, Fate] = {}
    xero_invoices: list[dict[str, Any]] = []
    # In invoice order, so that the seeded invoices are oldest first as a bookkeeper would have typed them.
    for position, rank in sorted((position, rank) for rank, position in enumerate(typed)):
        sale, invoice, _ = synced[position]
        if rank < n_altered:
            xero_invoices.append(altered_invoice(rng, sale, invoice))
            fates[invoice["InvoiceNumber"]] = "conflict"
        else:
            xero_invoices.append(typed_invoice(sale, invoice))
            fates[invoice["InvoiceNumber"]] = "adopt"
    for _, invoice, expectation in invoices:
        number = invoice["InvoiceNumber"]
        if number not in fates:
            fates[number] = _fate(expectation, document_day(invoice["InvoiceDate"]), lock_date)
    return History(dataset=dataset, xero_invoices=xero_invoices, lock_date=lock_date, fates=fates, start=start)


def spread_stamps(rng: random.Random, first: datetime, last: datetime, n_sales: int) -> list[datetime]:
    """``n_sales`` ``LastModifiedOn`` evenly spread over [``first``, ``last``], non-decreasing, to the millisecond.

    Each sale gets a random moment in its own equal slice; then about one in fifty starts a run of 3-6
    consecutive sales that share its stamp (the poll overlap), which keeps them in order.
    """
    slice_ms = max(0, int((last - first).total_seconds() * 1000)) / max(1, n_sales)
    stamps = []
    for index in range(n_sales):
        moment = first + timedelta(milliseconds=int((index + rng.random()) * slice_ms))
        stamps.append(moment.replace(microsecond=moment.microsecond // 1000 * 1000))
    if n_sales >= 3:
        for _ in range(max(1, n_sales // 50)):
            begin = rng.randrange(n_sales)
            for index in range(begin + 1, min(n_sales, begin + rng.randint(3, 6))):
                stamps[index] = stamps[begin]
    return stamps


def years_before(day: date, years: int) -> date:
    """The same day ``years`` years earlier (28 February for a 29 February that year lacks)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _invoices_with_expectations(
    dataset: Dataset,
) -> list[tuple[dict[str, Any], dict[str, Any], InvoiceExpectation]]:
    """(sale, invoice, its expectation) for every invoice, in sale order (the expectations' order)."""
    pairs = [(sale, invoice) for sale in dataset.sales for invoice in sale["Invoices"]]
    return [(sale, inv, exp) for (sale, inv), exp in zip(pairs, dataset.expectations, strict=True)]


def _fate(expectation: InvoiceExpectation, day: date, lock_date: date) -> Fate:
    """The fate of an invoice not typed into Xero (see ``generate_history`` for the order of the checks)."""
    if expectation.outcome == "ignored":
        return "skipped"
    if expectation.outcome == "dead_mapping":
        return "blocked"
    if day <= lock_date:
        return "locked"
    return "create"

"""`cin7xero demo`: the whole pipeline on embedded defaults, checked against what the data promises.

No servers: a SQLite ledger, Celery's in-memory broker, a real Celery worker (thread pool) consuming
the real queues, and both stand-ins over real HTTP. It syncs a few hundred hostile sales, then edits,
voids and a payment-in-Xero conflict, then runs the same sync again to show that nothing changes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from mappings import Cin7Totals, totals_in_xero
from pipeline.cli.receivables_check import ReceivablesCheck, check_receivables
from pipeline.ledger.models import DeadLetter, DocumentState, SyncDocument
from pipeline.runtime import reload_runtime
from pipeline.standins.cin7 import Cin7StandIn
from pipeline.standins.env import standin_env
from pipeline.standins.generator import Dataset, edit_invoice, generate, void_invoice
from pipeline.standins.xero import XeroStandIn


@dataclass
class Verification:
    """What the run was checked against, and what did not hold."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)
    receivables: ReceivablesCheck = field(default_factory=ReceivablesCheck)

    @property
    def ok(self) -> bool:
        """True when every promise held."""
        return not self.problems


def _amount(value: Any) -> Decimal:
    return Decimal(str(value))


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def expected_invoices(dataset: Dataset, cin7: Cin7StandIn) -> dict[str, dict[str, Any]]:
    """InvoiceNumber -> Cin7's current invoice (after any edits made during the run)."""
    current: dict[str, dict[str, Any]] = {}
    for expectation in dataset.expectations:
        sale = cin7.sale(expectation.sale_id)
        for invoice in sale.get("Invoices") or []:
            if str(invoice.get("TaskID")).lower() == expectation.task_id.lower():
                current[expectation.invoice_number] = invoice
    return current


def verify(
    dataset: Dataset,
    cin7: Cin7StandIn,
    xero: XeroStandIn,
    dead_reasons: dict[str, list[str]],
    conflicts: Collection[str] = frozenset(),
) -> Verification:
    """Every good invoice in Xero exactly once with Cin7's totals; every bad one dead with a reason."""
    result = Verification()
    by_number: dict[str, list[dict[str, Any]]] = {}
    for invoice in xero.invoices():
        if str(invoice.get("Type")) == "ACCREC":
            by_number.setdefault(str(invoice.get("InvoiceNumber")), []).append(invoice)
    current = expected_invoices(dataset, cin7)
    contacts_by_id = {str(c.get("ContactID")): c for c in xero.contacts()}
    for expectation in dataset.expectations:
        result.checked += 1
        found = by_number.get(expectation.invoice_number, [])
        conflict = expectation.invoice_number in conflicts
        problem = _check_invoice(expectation, found, current, cin7, contacts_by_id, dead_reasons, conflict=conflict)
        if problem is not None:
            result.problems.append(problem)
    contacts_per_customer: dict[str, int] = {}
    for contact in xero.contacts():
        number = str(contact.get("ContactNumber") or "").lower()
        if number:
            contacts_per_customer[number] = contacts_per_customer.get(number, 0) + 1
    for customer_id, count in contacts_per_customer.items():
        if count > 1:
            result.problems.append(f"customer {customer_id}: {count} Xero contacts")
    result.receivables = check_receivables(dataset, cin7, xero, skip=conflicts)
    result.problems.extend(result.receivables.problems)
    return result


@contextmanager
def demo_environment(workdir: Path, cin7: Cin7StandIn, xero: XeroStandIn) -> Iterator[None]:
    """Point settings at SQLite, the in-memory broker and the stand-ins, then restore the environment."""
    overrides = {
        **standin_env(f"sqlite:///{workdir / 'ledger.db'}", "memory://localhost/", "", cin7, xero),
        # Xero's 60-call minute still applies, compressed to 6 s so the demo shows it without a long wait.
        "XERO_RATE_WINDOW_SECONDS": "6",
        "XERO_BATCH_WAIT_SECONDS": "0.2",
        "CONTACT_PUSH_QUIET_SECONDS": "1",
        "RETRY_BASE_SECONDS": "0.5",
        "RETRY_CAP_SECONDS": "5",
    }
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    reload_runtime()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reload_runtime()


def run_demo(*, sales: int, seed: int, workdir: Path | None, console: Console) -> bool:
    """Run the demo; True when every check held."""
    from pipeline.app import TaskName, embedded_worker, send
    from pipeline.context import tenant_context
    from pipeline.ledger.migrate import upgrade
    from pipeline.operations.status import LedgerCounts, wait_until_settled
    from pipeline.settings import get_settings

    started = time.monotonic()
    dataset = generate(seed, sales, now=datetime.now(UTC))
    temp = tempfile.TemporaryDirectory(prefix="cin7xero-demo-") if workdir is None else None
    root = Path(temp.name) if temp is not None else workdir
    assert root is not None
    root.mkdir(parents=True, exist_ok=True)
    (root / "ledger.db").unlink(missing_ok=True)
    cin7 = Cin7StandIn(dataset=dataset).start()
    xero = XeroStandIn(seed_contacts=dataset.xero_contacts).start()
    console.print(
        f"[bold]demo[/bold]: {sales} sales (seed {seed}), Cin7 stand-in {cin7.url}, "
        f"Xero stand-in {xero.url}, ledger {root / 'ledger.db'}; Xero's 60-call minute compressed to 6 s"
    )
    try:
        with demo_environment(root, cin7, xero):
            upgrade(get_settings().database_url)
            ctx = tenant_context()
            with embedded_worker():

                def run_poll(label: str) -> LedgerCounts:
                    polls_before = _polls(ctx)
                    send(TaskName.POLL, ctx.tenant_key)
                    with Progress(
                        TextColumn(f"[bold]{label:<14}"),
                        BarColumn(),
                        MofNCompleteColumn(),
                        TextColumn("{task.description}"),
                        TimeElapsedColumn(),
                        console=console,
                    ) as bar:
                        task = bar.add_task("", total=None)

                        def show(counts: LedgerCounts) -> None:
                            total = sum(counts.documents.values())
                            busy = counts.in_flight
                            bar.update(
                                task,
                                total=max(total, 1),
                                completed=max(0, total - busy),
                                description=f"xero calls {counts.xero_calls}",
                            )

                        return wait_until_settled(
                            ctx, timeout=600, on_progress=show, started_after=lambda _c: _polls(ctx) > polls_before
                        )

                first = run_poll("first sync")
                changes = _make_changes(dataset, cin7, xero, ctx)
                second = run_poll("cin7 changes")
                writes_before = _xero_writes(xero)
                third = run_poll("same again")
                rerun_writes = _xero_writes(xero) - writes_before
            dead = _dead_reasons(ctx)
            verification = verify(dataset, cin7, xero, dead, conflicts=changes["conflict"])
            conflicts_recorded = _conflicts(ctx)
        _print_results(
            console,
            (first, second, third),
            changes,
            rerun_writes,
            verification,
            conflicts_recorded,
            dead,
            time.monotonic() - started,
            len(dataset.expectations),
        )
        return verification.ok and rerun_writes == 0 and len(changes["conflict"]) <= conflicts_recorded
    finally:
        cin7.stop()
        xero.stop()
        if temp is not None:
            temp.cleanup()


def _polls(ctx: Any) -> int:
    from pipeline.discovery.poll import SALES_STREAM
    from pipeline.ledger.models import PollCursor

    with ctx.sessions() as session:
        polled = session.scalar(
            select(PollCursor.last_polled_at).where(
                PollCursor.tenant_id == ctx.tenant_pk, PollCursor.stream == SALES_STREAM
            )
        )
    return 0 if polled is None else int(polled.timestamp() * 1000)


def _xero_writes(xero: XeroStandIn) -> int:
    by_endpoint: dict[str, int] = xero.stats().get("by_endpoint", {})
    return sum(count for name, count in by_endpoint.items() if name.split(" ")[0] in ("PUT", "POST"))


def _make_changes(dataset: Dataset, cin7: Cin7StandIn, xero: XeroStandIn, ctx: Any) -> dict[str, Any]:
    """Edit a few synced invoices, void a few, and pay one in Xero before editing it in Cin7."""
    with ctx.sessions() as session:
        synced = {
            doc.document_number: doc
            for doc in session.scalars(select(SyncDocument).where(SyncDocument.state == DocumentState.SYNCED))
        }
    candidates = [
        e
        for e in dataset.expectations
        if e.outcome == "synced"
        and e.invoice_number in synced
        and str(_invoice(cin7, e.sale_id, e.task_id).get("Status")).upper() == "AUTHORISED"
        and len(cin7.sale(e.sale_id).get("Invoices") or []) == 1
        # Cin7 does not let a paid or credited invoice be edited or voided.
        and not _invoice(cin7, e.sale_id, e.task_id).get("Payments")
        and not cin7.sale(e.sale_id).get("CreditNotes")
    ]
    now = datetime.now(UTC)
    edited, voided, conflict = candidates[:5], candidates[5:8], candidates[8:9]
    for expectation in edited + conflict:
        cin7.put_sale(edit_invoice(cin7.sale(expectation.sale_id), expectation.task_id, now=now, quantity_delta=2))
    for expectation in voided:
        cin7.put_sale(void_invoice(cin7.sale(expectation.sale_id), expectation.task_id, now=now))
    for expectation in conflict:
        xero_id = synced[expectation.invoice_number].xero_id
        requests.post(f"{xero.url}/_standin/invoices/{xero_id}/pay", timeout=10).raise_for_status()
    return {"edited": len(edited), "voided": len(voided), "conflict": {e.invoice_number for e in conflict}}


def _invoice(cin7: Cin7StandIn, sale_id: str, task_id: str) -> dict[str, Any]:
    for invoice in cin7.sale(sale_id).get("Invoices") or []:
        if str(invoice.get("TaskID")).lower() == task_id.lower():
            return dict(invoice)
    return {}


def _check_invoice(
    expectation: Any,
    found: list[dict[str, Any]],
    current: dict[str, dict[str, Any]],
    cin7: Cin7StandIn,
    contacts_by_id: dict[str, dict[str, Any]],
    dead_reasons: dict[str, list[str]],
    *,
    conflict: bool,
) -> str | None:
    """What is wrong with one expected invoice in Xero, or None (a conflict's differences are expected)."""
    number = expectation.invoice_number
    cin7_invoice = current.get(number, {})
    status = str(cin7_invoice.get("Status", "")).upper()
    if len(found) > 1:
        return f"{number}: {len(found)} invoices in Xero"
    if expectation.outcome in ("dead_mapping", "dead_xero", "ignored", "locked") or status in (
        "VOIDED",
        "DRAFT",
        "NOT AVAILABLE",
    ):
        return _check_not_synced(expectation, status, found, dead_reasons, conflict=conflict)
    if not found:
        return f"{number}: missing in Xero ({dead_reasons.get(number)})"
    if conflict:
        return None
    xero_invoice = found[0]
    # Xero must show Cin7's Tax and Total to the cent, and the subtotal between them.
    cin7_totals = Cin7Totals(
        subtotal=_amount(cin7_invoice["TotalBeforeTax"]),
        tax=_amount(cin7_invoice["Tax"]),
        total=_amount(cin7_invoice["Total"]),
    )
    should = totals_in_xero(cin7_totals)
    want = (should.subtotal, should.total_tax, should.total)
    got = (_money(xero_invoice["SubTotal"]), _money(xero_invoice["TotalTax"]), _money(xero_invoice["Total"]))
    if want != got:
        return f"{number}: Cin7 totals {want} but Xero {got}"
    rate_problem = _check_rate(number, cin7.sale(expectation.sale_id), cin7_invoice, xero_invoice)
    if rate_problem is not None:
        return rate_problem
    # On its customer's contact, which by now carries the Cin7 CustomerID as its ContactNumber.
    customer_id = str(cin7.sale(expectation.sale_id).get("CustomerID") or "").lower()
    contact = contacts_by_id.get(str((xero_invoice.get("Contact") or {}).get("ContactID")), {})
    if customer_id and str(contact.get("ContactNumber") or "").lower() != customer_id:
        return (
            f"{number}: on Xero contact {contact.get('Name')!r} numbered {contact.get('ContactNumber')!r}, "
            f"not on Cin7 customer {customer_id}'s"
        )
    return None


def _check_rate(
    number: str, sale: dict[str, Any], cin7_invoice: dict[str, Any], xero_invoice: dict[str, Any]
) -> str | None:
    """A foreign invoice carries Xero's rate, the inverse of Cin7's (AUD per unit against units per AUD)."""
    if not sale.get("CustomerCurrency") or sale.get("CustomerCurrency") == sale.get("BaseCurrency"):
        return None
    cin7_rate = Decimal(str(cin7_invoice.get("CurrencyConversionRate") or sale.get("CurrencyRate")))
    xero_rate = Decimal(str(xero_invoice.get("CurrencyRate") or 0))
    if abs(cin7_rate * xero_rate - 1) > Decimal("0.0001"):
        return f"{number}: Xero's currency rate {xero_rate} is not the inverse of Cin7's {cin7_rate}"
    return None


def _check_not_synced(
    expectation: Any, status: str, found: list[dict[str, Any]], dead_reasons: dict[str, list[str]], *, conflict: bool
) -> str | None:
    """An invoice that must be a dead letter, voided in Xero, or absent from it."""
    number = expectation.invoice_number
    if expectation.outcome == "locked":
        return f"{number}: dated on or before Xero's lock date, yet Xero has it" if found else None
    if expectation.outcome in ("dead_mapping", "dead_xero"):
        if found:
            return f"{number}: expected a dead letter ({expectation.reason}) but Xero has it"
        return None if dead_reasons.get(number) else f"{number}: no dead letter for {expectation.reason}"
    if status == "VOIDED":
        if found and str(found[0].get("Status")) not in ("VOIDED", "DELETED") and not conflict:
            return f"{number}: voided in Cin7, {found[0].get('Status')} in Xero"
        return None
    return f"{number}: a {status or 'skipped'} invoice reached Xero" if found else None


def dead_letter_reasons(session: Session) -> dict[str, list[str]]:
    """Open dead letters' reasons by document: an invoice by its number, any other kind as "kind number"."""
    return {
        (str(letter.document_number) if letter.kind == "invoice" else f"{letter.kind} {letter.document_number}"): [
            str(m) for m in letter.messages
        ]
        for letter in session.scalars(select(DeadLetter).where(DeadLetter.resolved_at.is_(None)))
    }


def _dead_reasons(ctx: Any) -> dict[str, list[str]]:
    with ctx.sessions() as session:
        return dead_letter_reasons(session)


def _conflicts(ctx: Any) -> int:
    with ctx.sessions() as session:
        return len(list(session.scalars(select(SyncDocument.id).where(SyncDocument.state == DocumentState.CONFLICT))))


def _print_results(
    console: Console,
    rounds: tuple[Any, Any, Any],
    changes: dict[str, Any],
    rerun_writes: int,
    verification: Verification,
    conflicts: int,
    dead: dict[str, list[str]],
    seconds: float,
    invoices: int,
) -> None:
    first, second, third = rounds
    table = Table(title="cin7xero demo summary")
    table.add_column("")
    table.add_column("first sync", justify="right")
    table.add_column("after Cin7 changes", justify="right")
    table.add_column("same sync again", justify="right")
    for label, state in (
        ("documents synced", DocumentState.SYNCED),
        ("voided", DocumentState.VOIDED),
        ("ignored (drafts, nothing to allocate)", DocumentState.IGNORED),
        ("conflict (paid in Xero)", DocumentState.CONFLICT),
        ("locked (before Xero's lock date)", DocumentState.LOCKED),
        ("waiting (for a document that did not sync)", DocumentState.WAITING),
        ("dead-lettered", DocumentState.DEAD),
    ):
        table.add_row(label, str(first.get(state)), str(second.get(state)), str(third.get(state)))
    for kind in ("credit_note", "payment", "refund", "allocation"):
        label = f"{kind.replace('_', ' ')}s synced"
        table.add_row(label, *(str(r.get(DocumentState.SYNCED, kind)) for r in (first, second, third)))
    table.add_row("Xero calls used (cumulative)", str(first.xero_calls), str(second.xero_calls), str(third.xero_calls))
    table.add_row("Cin7 calls used (cumulative)", str(first.cin7_calls), str(second.cin7_calls), str(third.cin7_calls))
    console.print(table)
    console.print(
        f"Cin7 changes: {changes['edited']} invoices edited (updated in Xero), {changes['voided']} voided, "
        f"{len(changes['conflict'])} paid in Xero then edited in Cin7 (recorded as conflict: {conflicts})"
    )
    console.print(f"same sync again: {rerun_writes} Xero writes")
    if dead:
        reasons = Table(title="dead letters (what needs a person)")
        reasons.add_column("invoice")
        reasons.add_column("reason")
        for number, messages in sorted(dead.items()):
            reasons.add_row(number, "; ".join(messages)[:150])
        console.print(reasons)
    if verification.ok:
        checked = verification.receivables
        console.print(
            f"[green]checked {verification.checked} invoices: every synced total equals Cin7's to the cent, "
            f"one contact per customer, every rejected one has its reason; {checked.invoices} invoices with "
            f"Cin7's paid, credited and due, {checked.payments} payments, {checked.credit_notes} credit notes "
            f"with their allocations and {checked.refunds} refunds each once in Xero[/green] ({seconds:.1f}s)"
        )
    else:
        console.print(f"[red]{len(verification.problems)} problems:[/red]")
        for problem in verification.problems[:30]:
            console.print(f"  - {problem}")

"""`cin7xero migrate plan`: the test run. Read both sides, decide every document's fate, write nothing
to Xero, and say what the cutover would cost.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mappings import Cin7Customer, Cin7Purchase, Cin7PurchaseListRow, Cin7Sale, Cin7SaleListRow, Cin7Supplier
from pipeline.context import TenantContext
from pipeline.discovery.poll import poll_customers, poll_suppliers
from pipeline.ledger.models import (
    ContactLink,
    CustomerRecord,
    DocumentState,
    MigrationRun,
    PartyKind,
    SyncDocument,
    utcnow,
)
from pipeline.mapping.reference import org_reference
from pipeline.migration.fates import Context, Decided, decide_purchase, decide_sale
from pipeline.migration.history import (
    CinRead,
    XeroRead,
    iter_cin7_history,
    iter_cin7_purchase_history,
    read_xero_history,
)
from pipeline.migration.plan_rows import Fate, MigrationPlan, PlanCost, PlanRow
from pipeline.migration.report import write_plan_files
from pipeline.reconcile.window import Window

# Xero calls a cutover makes besides its batches: reference data, the contact cache, lookups.
FIXED_XERO_READS = 6
# A customer new to Xero costs its share of a contact push (50 a call) after its invoice named it.
CONTACT_PUSH_BATCH = 50


@dataclass
class Planned:
    """A plan, and what the Cin7 pass counted (the cutover acts on the same decisions, sale by sale)."""

    plan: MigrationPlan
    cin7: CinRead


#: Called with each sale or purchase, its detail as Cin7 gave it, and the decisions on its documents.
OnParent = Callable[[Cin7Sale | Cin7Purchase, dict[str, Any], list[Decided]], None]


def migration_row(ctx: TenantContext, window: Window, *, update_conflicts: bool = False) -> int:
    """The tenant's migration of this window (the unfinished one, or a new one): its id."""
    with ctx.sessions() as session, session.begin():
        row = session.scalar(
            select(MigrationRun)
            .where(
                MigrationRun.tenant_id == ctx.tenant_pk,
                MigrationRun.window_from == window.start,
                MigrationRun.window_until == window.last,
            )
            .order_by(MigrationRun.id.desc())
        )
        if row is None or row.state == "done":
            row = MigrationRun(
                tenant_id=ctx.tenant_pk, window_from=window.start, window_until=window.last, state="planned"
            )
            session.add(row)
        row.update_conflicts = row.update_conflicts or update_conflicts
        session.flush()
        return row.id


def _context(ctx: TenantContext, window: Window, xero: XeroRead) -> Context:
    """The ledger's contact links and synced documents, and the customers, for deciding fates."""
    with ctx.sessions() as session:
        parties = list(session.scalars(select(CustomerRecord).where(CustomerRecord.tenant_id == ctx.tenant_pk)))
        customers = {
            record.customer_id.lower(): Cin7Customer.model_validate(record.snapshot)
            for record in parties
            if record.kind == PartyKind.CUSTOMER
        }
        suppliers = {
            record.customer_id.lower(): Cin7Supplier.model_validate(record.snapshot)
            for record in parties
            if record.kind == PartyKind.SUPPLIER
        }
        links = {
            link.cin7_customer_id.lower(): link.xero_contact_id
            for link in session.scalars(select(ContactLink).where(ContactLink.tenant_id == ctx.tenant_pk))
        }
        synced = frozenset(
            (kind, task_id)
            for kind, task_id in session.execute(
                select(SyncDocument.kind, SyncDocument.task_id).where(
                    SyncDocument.tenant_id == ctx.tenant_pk,
                    SyncDocument.state.in_([DocumentState.SYNCED, DocumentState.VOIDED]),
                    SyncDocument.xero_id.is_not(None),
                )
            )
        )
    reference = org_reference(ctx)
    return Context(
        window,
        reference,
        ctx.rules,
        customers,
        links,
        synced,
        xero.invoices,
        xero.credit_notes,
        suppliers=suppliers,
        xero_bills=xero.bills,
        xero_supplier_credit_notes=xero.supplier_credit_notes,
    )


def decide(ctx: TenantContext, window: Window, migration_id: int, on_parent: OnParent | None = None) -> Planned:
    """Read Xero's history in the window, then Cin7's sale by sale (and, with `SYNC_PURCHASES`, purchase
    by purchase), deciding each document's fate.

    Only the plan's rows are kept; a parent's detail and payloads go to `on_parent` (the cutover records
    them) and are dropped, so memory does not grow with the length of the history.
    """
    purchases = ctx.settings.sync_purchases
    xero = read_xero_history(ctx, window, purchases=purchases)
    cin7 = CinRead()
    # Customers (and suppliers) in bulk first (every one on a first read, what changed after): otherwise
    # each party of an old document would cost a call of its own when its contact is resolved.
    parties_seen = [poll_customers(ctx)] + ([poll_suppliers(ctx)] if purchases else [])
    cin7.list_calls += sum(max(1, math.ceil(seen / ctx.settings.cin7_page_size)) for seen in parties_seen)
    context = _context(ctx, window, xero)
    rows: list[PlanRow] = []
    for sale, detail in iter_cin7_history(ctx, window, cin7):
        decided = decide_sale(sale, context)
        rows.extend(d.row for d in decided)
        if on_parent is not None:
            on_parent(sale, detail, decided)
    if purchases:
        for purchase, detail in iter_cin7_purchase_history(ctx, window, cin7):
            decided = decide_purchase(purchase, context)
            rows.extend(d.row for d in decided)
            if on_parent is not None:
                on_parent(purchase, detail, decided)
        rows.extend(_listed_purchase(row) for row in cin7.skipped_purchases)
    rows.extend(_listed_only(row) for row in cin7.skipped_rows)
    rows.sort(key=lambda r: (r.date or date.min, r.kind not in ("invoice", "bill"), r.number))
    plan = MigrationPlan(
        migration_id=migration_id,
        tenant=ctx.tenant_key,
        window_from=window.start,
        window_until=window.last,
        generated_at=utcnow(),
        lock_date=context.reference.lock_date,
        cost=cutover_cost(ctx, cin7, xero, rows, customers_in_xero=set(context.contact_links)),
        rows=rows,
        errors=list(cin7.errors),
        reads={
            "cin7_list_calls": cin7.list_calls,
            "cin7_detail_calls": cin7.detail_calls,
            "details_from_ledger": cin7.from_ledger,
            "sales_listed": cin7.listed,
            "purchases_read": cin7.purchases,
            "sales_without_invoice_in_window": cin7.skipped_without_invoice,
            "xero_read_calls": xero.calls,
        },
    )
    return Planned(plan, cin7)


def _listed_only(row: Cin7SaleListRow) -> PlanRow:
    """A draft or void invoice, known from its saleList row alone (its detail is not worth a call)."""
    return PlanRow(
        kind="invoice",
        sale_id=row.sale_id,
        task_id="",
        number=(row.invoice_number or "").strip(),
        date=row.invoice_date.date() if row.invoice_date is not None else None,
        customer=(row.customer or "").strip(),
        currency=row.customer_currency,
        total=row.invoice_amount,
        fate=Fate.SKIPPED,
        reason=f"Cin7 {row.combined_invoice_status}: nothing for Xero (the sale's detail was not read)",
    )


def _listed_purchase(row: Cin7PurchaseListRow) -> PlanRow:
    """A purchase whose listing shows no live bill: its first bill, known from the listing alone."""
    return PlanRow(
        kind="bill",
        sale_id=row.id,
        task_id="",
        number=(row.invoice_number or "").strip(),
        date=row.invoice_date.date() if row.invoice_date is not None else None,
        customer=(row.supplier or "").strip(),
        currency=row.supplier_currency,
        total=row.invoice_amount,
        fate=Fate.SKIPPED,
        reason=f"Cin7 {row.invoice_status or row.status}: nothing for Xero (the purchase's detail was not read)",
    )


def cutover_cost(
    ctx: TenantContext, cin7: CinRead, xero: XeroRead, rows: Iterable[PlanRow], *, customers_in_xero: set[str]
) -> PlanCost:
    """What the cutover would spend: Cin7 lists the window again (details are kept unless changed); Xero
    takes one call per batch of each kind, one per credit note allocated, and the contact pushes.
    """
    rows = list(rows)
    writes = Counter(row.kind for row in rows if row.fate is Fate.CREATE)
    batch = max(1, ctx.settings.xero_batch_size)
    new_customers = {row.sale_id for row in rows if row.fate is Fate.CREATE and row.kind in ("invoice", "bill")}
    # One call per batch of a kind; an allocation is a call of its own (Xero takes them per credit note).
    xero_writes = sum(math.ceil(count / batch) for kind, count in writes.items() if not kind.endswith("allocation"))
    xero_writes += sum(count for kind, count in writes.items() if kind.endswith("allocation"))
    xero_writes += math.ceil(len(new_customers - customers_in_xero) / CONTACT_PUSH_BATCH)
    # Payments of adopted invoices and bills are looked up first (Xero's copy may carry them), 20 a call.
    adopted = {(row.kind, row.number) for row in rows if row.kind in ("invoice", "bill") and row.fate is Fate.ADOPT}
    paid = {
        ("invoice" if row.kind == "payment" else "bill", row.number)
        for row in rows
        if row.kind in ("payment", "bill_payment")
    }
    lookups = math.ceil(len(paid & adopted) / 20)
    return PlanCost(
        cin7_list_calls=cin7.list_calls,
        cin7_detail_calls=0,
        xero_read_calls=xero.calls + FIXED_XERO_READS + lookups,
        xero_write_calls=xero_writes,
        cin7_calls_per_minute=ctx.settings.cin7_calls_per_minute,
        xero_calls_per_minute=int(
            ctx.settings.xero_calls_per_window * 60 / max(1.0, ctx.settings.xero_rate_window_seconds)
        ),
        xero_calls_per_day=5000,
    )


def plan_migration(
    ctx: TenantContext, window: Window, *, out_dir: Path | None = None
) -> tuple[Planned, dict[str, Path]]:
    """The test run: decide, write plan.html/.csv/.json, record the summary on the migration row."""
    migration_id = migration_row(ctx, window)
    planned = decide(ctx, window, migration_id)
    report_dir = out_dir or (ctx.settings.report_dir / f"migration-{migration_id}")
    files = write_plan_files(planned.plan, report_dir)
    with ctx.sessions() as session, session.begin():
        row = session.get(MigrationRun, migration_id)
        assert row is not None
        summary = planned.plan.as_json()
        summary.pop("documents")
        row.plan = summary
        row.planned_at = utcnow()
        row.report_dir = str(report_dir.resolve())
    return planned, files

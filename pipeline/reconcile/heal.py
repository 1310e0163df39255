"""Healing: send what the sync path can fix back through the normal sync; never write to Xero here."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select

from pipeline import app
from pipeline.app import FETCH_TASKS
from pipeline.context import TenantContext
from pipeline.ledger.models import (
    DocumentState,
    SyncDocument,
    utcnow,
)
from pipeline.reconcile.rows import HEALABLE_STATES, PURCHASE_DOCUMENTS, Finding, Kind

log = logging.getLogger(__name__)


def heal(ctx: TenantContext, findings: Sequence[Finding]) -> list[str]:
    """Hand healable findings back to the sync; return the sale (and purchase) ids to fetch again.

    The ledger row goes back to `pending` with no source hash (so the next fetch re-maps it) and no
    synced hash (so the mapped payload is written even if it equals what we once sent). A missing
    invoice or credit note loses its Xero link and is marked uncertain, so the writer looks its number
    up in Xero before creating it. Rows that moved on since the comparison (a write started) are left
    alone. Credit notes heal exactly as invoices do (their ledger rows are kind "credit_note", found by
    `doc_id`); balance findings are never healable, so payments and allocations are not touched here.
    """
    sale_ids: list[str] = []
    purchases: set[str] = set()
    with ctx.sessions() as session, session.begin():
        for finding in findings:
            if not finding.healable or finding.cin7 is None:
                continue
            if finding.doc_id is not None:
                doc = session.scalar(select(SyncDocument).where(SyncDocument.id == finding.doc_id).with_for_update())
                if doc is None or doc.state not in HEALABLE_STATES:
                    continue
                doc.state = DocumentState.PENDING
                doc.source_hash = None
                doc.synced_hash = None
                doc.attempts = 0
                doc.next_attempt_at = None
                doc.error_class = None
                doc.last_error = f"reconciliation: {finding.detail}"[:4000]
                doc.enqueued_at = utcnow()
                if finding.kind is Kind.MISSING_IN_XERO:
                    doc.xero_id = None
                    doc.xero_status = None
                    doc.xero_totals = None
                    doc.write_uncertain = True
                elif finding.xero:
                    doc.xero_status = finding.xero[0].status
            finding.healed = True
            if finding.cin7.sale_id not in sale_ids:
                sale_ids.append(finding.cin7.sale_id)
            if finding.cin7.document in PURCHASE_DOCUMENTS:
                purchases.add(finding.cin7.sale_id)
    if sale_ids:
        for sale_id in sale_ids:
            app.send(FETCH_TASKS["purchase" if sale_id in purchases else "sale"], ctx.tenant_key, sale_id)
        log.info(
            "reconciliation healed %d findings: %d sales sent to fetch", sum(f.healed for f in findings), len(sale_ids)
        )
    return sale_ids

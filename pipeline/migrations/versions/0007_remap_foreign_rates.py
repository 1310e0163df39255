"""foreign-currency invoices synced with Cin7's rate uninverted are mapped again

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:10:00

Before this revision a foreign-currency invoice went to Xero with Cin7's CurrencyRate as it was (base
units per foreign unit), where Xero wants the inverse: its base-currency value in Xero is wrong. Every
synced invoice whose payload carried a CurrencyRate goes back to `pending`, so that the sweep maps it
again (now with 1/rate) and the writer updates it in Xero, or records a conflict where Xero holds a
payment (a person decides), or a dead letter where Xero refuses (a lock date).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_REMAP = (
    "UPDATE sync_documents SET state = 'pending', enqueued_at = NULL, attempts = 0, mapped_source_hash = NULL "
    "WHERE state = 'synced' AND kind = 'invoice' AND payload IS NOT NULL AND "
)
CARRIES_RATE = {
    "postgresql": "(payload::jsonb ? 'CurrencyRate')",
    "sqlite": "json_extract(payload, '$.CurrencyRate') IS NOT NULL",
}


def upgrade() -> None:
    # Both conditions are constants of this module, chosen by dialect: no outside text enters the SQL.
    op.execute(sa.text(_REMAP + CARRIES_RATE[op.get_bind().dialect.name]))


def downgrade() -> None:
    # Nothing to undo: the rows are mapped and written again, and end synced as before.
    pass

"""documents keyed by source: (tenant, source, kind, sale id, task id)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 15:40:00

Cin7 Omni will write beside Cin7 Core into the same ledger, and two sources can use the same ids, so
the source is part of every document's natural key. Every row so far came from Cin7 Core.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_documents") as batch:
        batch.add_column(sa.Column("source", sa.String(length=24), nullable=False, server_default="cin7core"))
        batch.drop_constraint("uq_sync_documents_natural_key", type_="unique")
        batch.create_unique_constraint(
            "uq_sync_documents_natural_key", ["tenant_id", "source", "kind", "sale_id", "task_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_documents") as batch:
        batch.drop_constraint("uq_sync_documents_natural_key", type_="unique")
        batch.create_unique_constraint("uq_sync_documents_natural_key", ["tenant_id", "kind", "sale_id", "task_id"])
        batch.drop_column("source")

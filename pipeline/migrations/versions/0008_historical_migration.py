"""documents know their own date and the migration that brought them; migration runs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 02:00:00

Issue 12: Xero's lock date and the cutover (SYNC_START_DATE) are compared with a document's own date,
and `cin7xero migrate` records its windows and plans. Rows synced before this revision have no date
until their sale is next read; nothing in them changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pipeline.ledger.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "migration_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("window_from", sa.Date(), nullable=False),
        sa.Column("window_until", sa.Date(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("update_conflicts", sa.Boolean(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=True),
        sa.Column("report_dir", sa.Text(), nullable=True),
        sa.Column("created_at", pipeline.ledger.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("planned_at", pipeline.ledger.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", pipeline.ledger.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", pipeline.ledger.models.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_migration_runs_tenant", "migration_runs", ["tenant_id", "id"])
    with op.batch_alter_table("sync_documents") as batch:
        batch.add_column(sa.Column("document_date", sa.Date(), nullable=True))
        batch.add_column(
            sa.Column(
                "migration_id",
                sa.Integer(),
                sa.ForeignKey("migration_runs.id", name="fk_sync_documents_migration"),
                nullable=True,
            )
        )
        batch.create_index("ix_sync_documents_migration", ["migration_id", "state"])


def downgrade() -> None:
    with op.batch_alter_table("sync_documents") as batch:
        batch.drop_index("ix_sync_documents_migration")
        batch.drop_column("migration_id")
        batch.drop_column("document_date")
    op.drop_index("ix_migration_runs_tenant", table_name="migration_runs")
    op.drop_table("migration_runs")

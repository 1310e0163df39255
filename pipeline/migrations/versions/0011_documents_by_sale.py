"""ledger documents are found by their sale without reading the tenant's whole ledger

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 01:10:00

Issue 15: a fetch counts and reads its sale's documents by (tenant, sale); the natural-key index
puts source and kind before the sale, so PostgreSQL read every document of the tenant for each
sale, and the fetch's PostgreSQL CPU per order doubled from 1 000 to 10 000 sales.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_sync_documents_sale", "sync_documents", ["tenant_id", "sale_id"])


def downgrade() -> None:
    op.drop_index("ix_sync_documents_sale", table_name="sync_documents")

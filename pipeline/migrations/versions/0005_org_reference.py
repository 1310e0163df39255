"""tenant reference data: accounts, Rounding account, Xero tax rates and Cin7 tax rules in one cache

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 16:10:00

The mapping now checks each line's tax against Xero's rate and Cin7's rule, and posts rounding to the
organisation's Rounding account, so the chart-of-accounts cache grows into one reference cache. The old
code list is dropped: the next mapping reads everything again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pipeline.ledger.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("reference", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("reference_fetched_at", pipeline.ledger.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch.drop_column("account_codes")
        batch.drop_column("accounts_fetched_at")


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("account_codes", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("accounts_fetched_at", pipeline.ledger.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch.drop_column("reference_fetched_at")
        batch.drop_column("reference")

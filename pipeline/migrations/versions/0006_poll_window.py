"""poll cursors remember where the live sync started reading

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 15:30:00

`cin7xero status` prints the window the live sync covers; the first poll reads back
CIN7_INITIAL_LOOKBACK_DAYS and records that start. Cursors polled before this revision keep it empty
and status says so.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pipeline.ledger.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("poll_cursors") as batch:
        batch.add_column(sa.Column("covers_from", pipeline.ledger.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("poll_cursors") as batch:
        batch.drop_column("covers_from")

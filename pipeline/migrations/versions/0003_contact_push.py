"""contact pushes: what of each customer Xero has from us

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 17:20:00

Contacts may now be created inside an invoice (by name only) and adopted contacts get their
ContactNumber later, so each link records what was last pushed. Links made before this revision
were created with every detail (or numbered at once), so they count as pushed when they were made.
A create records the contact name it sent, so that a lost answer cannot let another customer with
the same name take the contact it may have created.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pipeline.ledger.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact_links") as batch:
        batch.add_column(sa.Column("pushed_at", pipeline.ledger.models.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("pushed_source_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("push_error", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("pushed_modified_on", pipeline.ledger.models.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute("UPDATE contact_links SET pushed_at = created_at, pushed_source_hash = source_hash")
    with op.batch_alter_table("sync_documents") as batch:
        batch.add_column(sa.Column("inline_contact_name", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_documents") as batch:
        batch.drop_column("inline_contact_name")
    with op.batch_alter_table("contact_links") as batch:
        batch.drop_column("pushed_modified_on")
        batch.drop_column("push_error")
        batch.drop_column("pushed_source_hash")
        batch.drop_column("pushed_at")

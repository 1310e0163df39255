"""contact links say which Cin7 people the Xero contact could not carry

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 19:40:00

Issue 13: a customer's or supplier's people go to Xero as its primary person and up to five
ContactPersons; those left out are named on the link with the reason. Links made before this
revision learn theirs at their next push.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact_links") as batch:
        batch.add_column(sa.Column("people_left_out", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact_links") as batch:
        batch.drop_column("people_left_out")

"""purchases beside sales, suppliers beside customers

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:00:00

Issue 13: a Cin7 purchase is a parent document like a sale (its bills are ledger documents of kinds
of their own), and a Cin7 supplier is a party like a customer (its Xero contact is linked the same
way). Both live in the existing tables, told apart by `kind`; every row before this revision is a
sale or a customer. Suppliers are matched to Xero contacts by ABN and domain, so the contact cache
keys those too, and is read again in full once (its cursor is dropped) to fill them.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mappings import abn_key

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cin7_sales") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="sale"))
    with op.batch_alter_table("cin7_customers") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="customer"))
        batch.add_column(sa.Column("tax_key", sa.String(32), nullable=True))
        batch.create_index("ix_cin7_customers_tax", ["tenant_id", "tax_key"])
    _fill_tax_keys()
    with op.batch_alter_table("xero_contacts") as batch:
        batch.add_column(sa.Column("tax_key", sa.String(32), nullable=True))
        batch.add_column(sa.Column("domain_key", sa.String(255), nullable=True))
        batch.add_column(sa.Column("website_key", sa.String(255), nullable=True))
        batch.create_index("ix_xero_contacts_tax", ["tenant_id", "tax_key"])
        batch.create_index("ix_xero_contacts_domain", ["tenant_id", "domain_key"])
        batch.create_index("ix_xero_contacts_website", ["tenant_id", "website_key"])
    op.execute("DELETE FROM poll_cursors WHERE stream = 'xero_contacts'")


def _fill_tax_keys() -> None:
    """Customers stored before this revision get their ABN key now (the poll only re-reads changes)."""
    bind = op.get_bind()
    customers = sa.table(
        "cin7_customers", sa.column("id", sa.Integer), sa.column("snapshot", sa.JSON), sa.column("tax_key", sa.String)
    )
    for row_id, snapshot in bind.execute(sa.select(customers.c.id, customers.c.snapshot)).all():
        data = snapshot if isinstance(snapshot, dict) else json.loads(snapshot or "{}")
        key = abn_key(data.get("TaxNumber"))
        if key is not None:
            bind.execute(sa.update(customers).where(customers.c.id == row_id).values(tax_key=key))


def downgrade() -> None:
    with op.batch_alter_table("xero_contacts") as batch:
        batch.drop_index("ix_xero_contacts_website")
        batch.drop_index("ix_xero_contacts_domain")
        batch.drop_index("ix_xero_contacts_tax")
        batch.drop_column("website_key")
        batch.drop_column("domain_key")
        batch.drop_column("tax_key")
    with op.batch_alter_table("cin7_customers") as batch:
        batch.drop_index("ix_cin7_customers_tax")
        batch.drop_column("tax_key")
        batch.drop_column("kind")
    with op.batch_alter_table("cin7_sales") as batch:
        batch.drop_column("kind")

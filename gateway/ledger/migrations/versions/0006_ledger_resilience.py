"""A ledger nothing can wedge: requests.clipped and the dead-letter table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("clipped", sa.Text))
    op.create_table(
        "ledger_dead_letters",
        sa.Column("row_id", sa.String(64), primary_key=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("row", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_dead_letters")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("clipped")

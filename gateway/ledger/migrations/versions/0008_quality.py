"""Quality evidence: shadow calls in the ledger (requests.shadow, shadow_of) and quality_pairs.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from gateway.ledger.tables import Money

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("shadow", sa.Boolean, server_default=sa.false()))
    op.add_column("requests", sa.Column("shadow_of", sa.String(64)))
    op.create_index("ix_requests_shadow_of", "requests", ["shadow_of"])
    op.create_table(
        "quality_pairs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task", sa.String(100), nullable=False),
        sa.Column("route", sa.String(100)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("comparator", sa.String(32), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("passed", sa.Boolean),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("shadow_request_id", sa.String(64), nullable=False),
        sa.Column("model_cost_usd", Money(), nullable=False),
        sa.Column("reference_cost_usd", Money(), nullable=False),
        sa.Column("model_sample", sa.Text),
        sa.Column("reference_sample", sa.Text),
        sa.Column("truncated", sa.Boolean, nullable=False),
    )
    op.create_index("ix_quality_pairs_created_at", "quality_pairs", ["created_at"])
    op.create_index("ix_quality_pairs_task_model", "quality_pairs", ["task", "model", "created_at"])


def downgrade() -> None:
    op.drop_table("quality_pairs")
    op.drop_index("ix_requests_shadow_of", "requests")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("shadow_of")
        batch.drop_column("shadow")

"""The requests ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Money as this revision created it (decimal text on SQLite), frozen here: the live type in
# ledger/tables.py changed in 0007, and a migration must keep making the schema of its day.
MONEY = sa.Numeric(20, 12).with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("requested_model", sa.String(200)),
        sa.Column("provider", sa.String(100)),
        sa.Column("upstream_model", sa.String(200)),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("error_type", sa.String(100)),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cached_prompt_tokens", sa.Integer, nullable=False),
        sa.Column("cache_write_tokens", sa.Integer, nullable=False),
        sa.Column("reasoning_tokens", sa.Integer, nullable=False),
        sa.Column("input_cost_usd", MONEY, nullable=False),
        sa.Column("output_cost_usd", MONEY, nullable=False),
        sa.Column("cost_usd", MONEY, nullable=False),
        sa.Column("usage_estimated", sa.Boolean, nullable=False),
        sa.Column("ttft_ms", sa.Numeric(12, 3, asdecimal=False)),
        sa.Column("latency_ms", sa.Numeric(12, 3, asdecimal=False), nullable=False),
        sa.Column("upstream_request_id", sa.String(200)),
        sa.Column("route_reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("api_key_id", sa.String(64)),
        sa.Column("team", sa.String(100)),
    )
    op.create_index("ix_requests_created_at", "requests", ["created_at"])
    op.create_index("ix_requests_model_created", "requests", ["requested_model", "created_at"])
    op.create_index("ix_requests_team_created", "requests", ["team", "created_at"])


def downgrade() -> None:
    op.drop_table("requests")

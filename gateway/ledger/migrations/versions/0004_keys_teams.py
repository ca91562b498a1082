"""Governance: teams, virtual keys (hashed), and the per-key spend index budgets rebuild from.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

# Money as this revision created it (decimal text on SQLite), frozen here: the live type in
# ledger/tables.py changed in 0007, and a migration must keep making the schema of its day.
MONEY = sa.Numeric(20, 12).with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("budget_usd_day", MONEY),
        sa.Column("budget_usd_month", MONEY),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_teams_updated_at", "teams", ["updated_at"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("team", sa.String(100), sa.ForeignKey("teams.name"), nullable=False),
        sa.Column("models", sa.JSON),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("budget_usd_day", MONEY),
        sa.Column("budget_usd_month", MONEY),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_api_keys_updated_at", "api_keys", ["updated_at"])
    op.create_index("ix_api_keys_team", "api_keys", ["team"])
    # budgets are rebuilt from the ledger by key as well as by team (ix_requests_team_created)
    op.create_index("ix_requests_key_created", "requests", ["api_key_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_requests_key_created", "requests")
    op.drop_table("api_keys")
    op.drop_table("teams")

"""Stored Responses API responses (`store: true`): previous_response_id chains and
GET/DELETE /v1/responses/{id}.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team", sa.String(100)),
        sa.Column("api_key_id", sa.String(64)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("previous_response_id", sa.String(128)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
    )
    op.create_index("ix_responses_created_at", "responses", ["created_at"])


def downgrade() -> None:
    op.drop_table("responses")

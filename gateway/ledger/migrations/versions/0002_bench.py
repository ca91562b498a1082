"""Load benchmarks: bench_runs (one row per `gateway bench` run) and gpu_calibrations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bench_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("target_url", sa.String(500), nullable=False),
        sa.Column("workload", sa.String(100), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("results", sa.JSON, nullable=False),
        sa.Column("versions", sa.JSON, nullable=False),
    )
    op.create_index("ix_bench_runs_created_at", "bench_runs", ["created_at"])
    op.create_table(
        "gpu_calibrations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("bench_runs.id"), nullable=False),
        sa.Column("max_concurrency", sa.Integer),
        sa.Column("output_tokens_per_s", sa.Float, nullable=False),
        sa.Column("total_tokens_per_s", sa.Float, nullable=False),
        sa.Column("slo", sa.JSON, nullable=False),
    )
    op.create_index(
        "ix_gpu_calibrations_provider_created", "gpu_calibrations", ["provider", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("gpu_calibrations")
    op.drop_table("bench_runs")

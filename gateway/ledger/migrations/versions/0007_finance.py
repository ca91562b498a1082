"""Finance: exact money sums on SQLite, and the hourly usage rollup the reports read.

SQLite kept money as decimal text, which `sum()` adds as floating point; it becomes INTEGER
picodollars (the same 12 decimal places as PostgreSQL's NUMERIC(20, 12), converted exactly,
in Python, row by row). PostgreSQL's money columns are unchanged. `usage_hourly` is created,
on PostgreSQL, filled from the existing rows and kept up to date by a trigger
(gateway/ledger/rollup.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from gateway.ledger import rollup
from gateway.ledger.tables import PICO, Money, to_pico

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# table → (its primary key, its money columns)
MONEY = {
    "requests": ("id", ("input_cost_usd", "output_cost_usd", "cost_usd")),
    "teams": ("name", ("budget_usd_day", "budget_usd_month")),
    "api_keys": ("id", ("budget_usd_day", "budget_usd_month")),
}
BATCH = 5000


def _convert(table: str, to_integer: bool) -> None:
    key, columns = MONEY[table]
    conn = op.get_bind()
    cols = ", ".join(columns)
    # up: the decimal text (a REAL only if something wrote a float); down: after the retype,
    # every amount is the text of its picodollars
    kinds = "'text', 'real'" if to_integer else "'text', 'integer'"
    where = " OR ".join(f"typeof({c}) IN ({kinds})" for c in columns)
    rows = conn.exec_driver_sql(f"SELECT {key}, {cols} FROM {table} WHERE {where}").fetchall()
    sets = ", ".join(f"{c} = ?" for c in columns)
    update = f"UPDATE {table} SET {sets} WHERE {key} = ?"

    def convert(v: Any) -> Any:
        if v is None:
            return None
        if to_integer:
            return to_pico(v)
        return format(Decimal(int(v)) / PICO, "f")

    for i in range(0, len(rows), BATCH):
        params = [(*(convert(v) for v in r[1:]), r[0]) for r in rows[i : i + BATCH]]
        conn.exec_driver_sql(update, params)


def _retype(table: str, new: sa.types.TypeEngine[Any], old: sa.types.TypeEngine[Any]) -> None:
    _, columns = MONEY[table]
    with op.batch_alter_table(table, recreate="always") as batch:
        for c in columns:
            batch.alter_column(c, type_=new, existing_type=old)


def _create_rollup() -> None:
    key: list[sa.Column[Any]] = [
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("team", sa.String(100), nullable=False),
    ]
    sums: list[sa.Column[Any]] = [
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        *(sa.Column(t, sa.BigInteger, nullable=False) for t in rollup.TOKENS),
        sa.Column("cost_usd", Money(24), nullable=False),
        *(sa.Column(h, sa.Integer, nullable=False) for h in (*rollup.LATENCY, *rollup.TTFT)),
    ]
    op.create_table(
        "usage_hourly",
        *key,
        *sums,
        sa.PrimaryKeyConstraint(*rollup.KEY, name="pk_usage_hourly"),
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in MONEY:
            _convert(table, to_integer=True)
            _retype(table, sa.BigInteger(), sa.String(40))
        return
    _create_rollup()
    op.execute(rollup.backfill_sql())
    op.execute("ANALYZE usage_hourly")  # the planner's first reports must not guess its size
    for statement in rollup.postgres_ddl():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in rollup.drop_ddl():
            op.execute(statement)
        op.drop_table("usage_hourly")
    else:
        for table in MONEY:
            _retype(table, sa.String(40), sa.BigInteger())
            _convert(table, to_integer=False)

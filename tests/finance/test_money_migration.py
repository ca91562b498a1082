"""Migration 0007: SQLite's decimal-text money becomes exact integer picodollars (and back);
on PostgreSQL the rollup is filled from the rows already there."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine as create_sync_engine

from gateway.ledger import rollup
from gateway.ledger.migrate import upgrade
from tests.conftest import PG_ADMIN_DSN, _pg_exec

COSTS = ["0.000016575000", "12.5", "0.1", "0.2", "9000000.000000000001"]


def old_row(i: int, cost: str) -> str:
    return (
        "INSERT INTO requests (id, created_at, endpoint, stream, status_code, prompt_tokens, "
        "completion_tokens, cached_prompt_tokens, cache_write_tokens, reasoning_tokens, "
        "input_cost_usd, output_cost_usd, cost_usd, usage_estimated, latency_ms, attempts) "
        f"VALUES ('r{i}', '2026-11-02 10:0{i}:00.000000', 'chat', '0', 200, 10, 5, 0, 0, 0, "
        f"'{cost}', '0', '{cost}', '0', {100 + i}, 1)"
    )


def test_sqlite_money_becomes_exact_picodollars_and_back(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0006")
    with sqlite3.connect(path) as db:
        for i, c in enumerate(COSTS):
            db.execute(old_row(i, c))
        db.execute(
            "INSERT INTO teams (name, budget_usd_day, created_at, updated_at) "
            "VALUES ('t', '0.3', '2026-11-01 00:00:00', '2026-11-01 00:00:00')"
        )
        # the trouble this fixes: SUM over decimal text adds floats
        (floating,) = db.execute("SELECT sum(cost_usd) FROM requests").fetchone()
        assert isinstance(floating, float)
        assert Decimal(repr(floating)) != Decimal("9000012.800016575001")
    upgrade(url)
    exact = sum(Decimal(c) for c in COSTS)
    with sqlite3.connect(path) as db:
        kinds = {r[0] for r in db.execute("SELECT typeof(cost_usd) FROM requests")}
        assert kinds == {"integer"}
        (pico,) = db.execute("SELECT sum(cost_usd) FROM requests").fetchone()
        assert Decimal(pico).scaleb(-12) == exact == Decimal("9000012.800016575001")
        assert db.execute("SELECT budget_usd_day FROM teams").fetchone()[0] == 3 * 10**11
    engine = create_sync_engine(f"sqlite:///{path}")
    from gateway.ledger.tables import requests_table, teams_table

    with engine.connect() as conn:
        assert conn.execute(teams_table.select()).one().budget_usd_day == Decimal("0.3")
        read = {r.id: r.cost_usd for r in conn.execute(requests_table.select())}
    engine.dispose()
    assert read == {f"r{i}": Decimal(c) for i, c in enumerate(COSTS)}

    from alembic import command

    from gateway.ledger.migrate import alembic_config

    command.downgrade(alembic_config(url), "0006")
    with sqlite3.connect(path) as db:
        back = dict(db.execute("SELECT id, cost_usd FROM requests").fetchall())
        assert {k: Decimal(v) for k, v in back.items()} == read
        assert {type(v) for v in back.values()} == {str}


@pytest.fixture()
def old_pg() -> Iterator[str]:
    import uuid

    name = f"gw_test_{uuid.uuid4().hex[:10]}"
    _pg_exec(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_postgres_rollup_is_filled_from_existing_rows(old_pg: str) -> None:
    upgrade(old_pg, "0006")
    import asyncio

    import asyncpg

    dsn = old_pg.replace("postgresql+asyncpg://", "postgresql://")

    async def run(sql: str) -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    for i, c in enumerate(COSTS[:4]):
        asyncio.run(run(old_row(i, c)))
    upgrade(old_pg)
    kept = asyncio.run(run("SELECT * FROM usage_hourly ORDER BY 1, 2, 3, 4, 5"))
    assert kept == asyncio.run(run(rollup._pg_select("requests")))
    (total,) = asyncio.run(run("SELECT sum(requests), sum(cost_usd) FROM usage_hourly"))
    assert total == (4, Decimal("12.800016575000"))

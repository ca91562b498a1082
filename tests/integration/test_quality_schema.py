"""Migration 0008 on SQLite and PostgreSQL: it makes exactly the columns the models declare,
and goes down to 0006 and back up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from gateway.ledger.db import create_engine
from gateway.ledger.migrate import SCHEMA_HEAD, current_revision, upgrade
from gateway.ledger.tables import quality_pairs_table, requests_table


def columns(url: str) -> dict[str, dict[str, bool]]:
    """table → column → nullable, for the tables 0008 touches."""

    async def run() -> dict[str, dict[str, bool]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:

                def read(sync: Any) -> dict[str, dict[str, bool]]:
                    insp = inspect(sync)
                    names = set(insp.get_table_names())
                    return {
                        t: {c["name"]: bool(c["nullable"]) for c in insp.get_columns(t)}
                        for t in ("requests", "quality_pairs")
                        if t in names
                    }

                return await conn.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        u = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        upgrade(u)
        yield u
    else:
        yield str(request.getfixturevalue("fresh_pg_url"))


def test_migration_0008_matches_the_models_and_goes_down_and_up(url: str) -> None:
    from alembic import command

    from gateway.ledger.migrate import alembic_config

    assert SCHEMA_HEAD == "0008" and asyncio.run(current_revision(url)) == "0008"
    got = columns(url)
    want = {c.name: bool(c.nullable) for c in quality_pairs_table.columns}
    assert got["quality_pairs"] == want
    assert got["requests"]["shadow"] is True and got["requests"]["shadow_of"] is True
    assert set(got["requests"]) == {c.name for c in requests_table.columns}

    command.downgrade(alembic_config(url), "0006")
    down = columns(url)
    assert "quality_pairs" not in down and "shadow" not in down["requests"]
    upgrade(url)
    assert columns(url) == got

"""A seeded ledger (tests/finance_support.py) on SQLite and on PostgreSQL, made once per
module: the report tests only read it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.ledger.migrate import upgrade
from tests.conftest import PG_ADMIN_DSN, _pg_exec
from tests.finance_support import seed


def new_pg_database() -> tuple[str, str]:
    name = f"gw_test_{uuid.uuid4().hex[:10]}"
    _pg_exec(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    upgrade(url)
    return name, url


def drop_pg_database(name: str) -> None:
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("finance") / "ledger.db"
        url = f"sqlite+aiosqlite:///{path}"
        upgrade(url)
        asyncio.run(seed(url))
        yield url
        return
    name, url = new_pg_database()
    asyncio.run(seed(url))
    yield url
    drop_pg_database(name)

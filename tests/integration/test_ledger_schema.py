"""The background schema check (ledger/schema.py) against a real PostgreSQL database: not
migrated yet → `mismatch` (not ready, naming `gateway db upgrade`); migrated meanwhile → `ok`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

from gateway.ledger import schema
from gateway.ledger.migrate import SCHEMA_HEAD, upgrade
from tests.conftest import PG_ADMIN_DSN, _pg_exec


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(20):
        while not condition():
            await asyncio.sleep(0.05)


def test_a_database_migrated_after_start_turns_the_check_ok(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schema, "MISMATCH_RETRY_S", 0.1)
    name = f"gw_schema_{uuid.uuid4().hex[:10]}"
    _pg_exec(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{url}/{name}"

    async def run() -> None:
        check = schema.SchemaCheck(url)
        check.start()
        try:
            await until(lambda: check.state != "unverified")
            assert check.state == "mismatch" and check.found is None
            assert check.problem is not None and "gateway db upgrade" in check.problem
            await asyncio.to_thread(upgrade, url)
            await until(lambda: check.state == "ok")
            assert check.found == SCHEMA_HEAD and check.problem is None
        finally:
            await check.aclose()

    try:
        asyncio.run(run())
    finally:
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""Shared fixtures: the simulator and the gateway as real servers on loopback, databases.

The ledger tests run on the embedded SQLite file and on the PostgreSQL server these machines
run on 127.0.0.1:5432 (a fresh database per test session, dropped at the end).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from benchmarks.ledger_outage.proxy import TcpProxy
from gateway.app import create_app
from gateway.config import GatewayConfig, parse_config
from gateway.ledger.migrate import upgrade
from tests.support import ARTIFACTS_KEY, ServerThread, gateway_server

PG_ADMIN_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    kept = terminalreporter.config.stash.get(ARTIFACTS_KEY, [])
    if kept:
        terminalreporter.section("test artifacts")
        for path in kept:
            terminalreporter.write_line(path)


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


@pytest.fixture(scope="session")
def simulator() -> Iterator[ServerThread]:
    from gateway.simulator.app import create_app as create_simulator

    server = ServerThread(create_simulator("instant")).start()
    yield server
    server.stop()


@pytest.fixture()
def sim(simulator: ServerThread) -> Iterator[ServerThread]:
    """The session's simulator with its faults and counters reset around each test."""
    import httpx

    httpx.post(f"{simulator.url}/sim/reset")
    yield simulator
    httpx.post(f"{simulator.url}/sim/reset")


def _pg_exec(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def _pg_exec_on(url: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"gw_test_{uuid.uuid4().hex[:10]}"
    _pg_exec(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def fresh_pg_url() -> Iterator[str]:
    """A PostgreSQL database of the test's own (for tests that alter its schema)."""
    name = f"gw_test_{uuid.uuid4().hex[:10]}"
    _pg_exec(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def pg_proxy() -> Iterator[TcpProxy]:
    """A TCP proxy to the machine's PostgreSQL that a test can cut (never the server itself)."""
    from sqlalchemy.engine import make_url

    u = make_url(PG_ADMIN_DSN)
    proxy = TcpProxy(u.host or "127.0.0.1", u.port or 5432).start()
    yield proxy
    proxy.stop()


def via(proxy: TcpProxy, url: str) -> str:
    """`url` reached through `proxy`."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(False)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
        upgrade(url)
        return url
    url = str(request.getfixturevalue("pg_url"))
    # the session's database is shared between tests (and the rollup is kept from requests)
    _pg_exec_on(url, "TRUNCATE requests, usage_hourly")
    return url


@pytest.fixture()
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the machine's Redis; its keys are deleted after."""
    import redis

    prefix = f"gwtest:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=prefix + "*", count=500):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    return url


def sim_config(sim_url: str, db_url: str, **extra: Any) -> GatewayConfig:
    """A config with an OpenAI-kind and a vLLM-kind provider, both on the simulator."""
    raw: dict[str, Any] = {
        "database_url": db_url,
        # a journal of its own: never one a gateway of another test left behind
        "ledger": {"flush_interval_ms": 20, "journal_dir": tempfile.mkdtemp(prefix="gw-journal-")},
        "providers": [
            {
                "name": "openai",
                "kind": "openai",
                "api_base": f"{sim_url}/instant/v1",
                "api_key": "sk-test-secret-123",
                "timeout_s": 5,
            },
            {
                "name": "local-llama",
                "kind": "vllm",
                "api_base": f"{sim_url}/v1",
                "gpu": {"name": "H100", "count": 1, "hourly_usd": 2.49},
            },
        ],
        "models": [
            {"name": "gpt-4o-mini", "provider": "openai"},
            {
                "name": "llama-3.1-8b",
                "provider": "local-llama",
                "upstream_model": "meta-llama/Llama-3.1-8B-Instruct",
                "price": {"input_per_mtok": 0.05, "output_per_mtok": 0.08},
            },
            {"name": "text-embedding-3-small", "provider": "openai"},
        ],
    }
    raw.update(extra)
    return parse_config(raw, source="test", environ={})


GatewayFactory = Callable[..., ServerThread]


@pytest.fixture()
def gateway_factory() -> Iterator[GatewayFactory]:
    started: list[ServerThread] = []

    def make(config: GatewayConfig) -> ServerThread:
        server = gateway_server(create_app(config, CollectorRegistry()))
        started.append(server)
        return server

    yield make
    for s in started:
        s.stop()


@pytest.fixture()
def gateway(sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory) -> ServerThread:
    return gateway_factory(sim_config(sim.url, sqlite_url))

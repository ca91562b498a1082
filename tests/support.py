"""Test helpers: real servers on 127.0.0.1 (uvicorn in a thread) and ledger reads."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import uvicorn
from sqlalchemy import func, select

from gateway.config import GatewayConfig
from gateway.ledger.db import create_engine
from gateway.ledger.tables import dead_letters_table, requests_table

# files a test keeps for people to look at (screenshots): the session's summary lists them
ARTIFACTS_KEY = pytest.StashKey[list[str]]()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# What `gateway serve` gives clients (`client_keepalive_s`), for a gateway under test. With
# uvicorn's 5 s, a connection a test's pool left idle that long could be reused just as the
# gateway closed it: the request met a reset (httpx.ReadError, seen once in CI). Longer than
# clients' own pools (httpx's 5 s) is why the gateway's default is 75 s. Upstream stand-ins keep
# uvicorn's 5 s, as vLLM's server has.
GATEWAY_KEEPALIVE_S = GatewayConfig.model_fields["client_keepalive_s"].default
UPSTREAM_KEEPALIVE_S = 5


class ServerThread:
    """uvicorn serving an ASGI app on a free loopback port, in a thread with its own loop."""

    def __init__(
        self, app: Any, port: int | None = None, keep_alive_s: int = UPSTREAM_KEEPALIVE_S
    ) -> None:
        self.port = port or free_port()
        self.config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            loop="asyncio",
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
            timeout_keep_alive=keep_alive_s,
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def gateway_server(app: Any) -> ServerThread:
    """A gateway app served as `gateway serve` serves it (its client keep-alive), started."""
    return ServerThread(app, keep_alive_s=GATEWAY_KEEPALIVE_S).start()


@contextmanager
def serve(app: Any) -> Iterator[ServerThread]:
    server = ServerThread(app).start()
    try:
        yield server
    finally:
        server.stop()


def fetch_rows(url: str, **where: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        engine = create_engine(url)
        try:
            q = select(requests_table)
            for k, v in where.items():
                q = q.where(requests_table.c[k] == v)
            async with engine.connect() as conn:
                return [dict(r._mapping) for r in (await conn.execute(q)).all()]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def ledger_row(i: int | str, **values: Any) -> dict[str, Any]:
    """A ledger row as `metering.ledger_row` makes them, id `r{i}`, with `values` on top."""
    row = {
        "id": f"r{i}",
        "created_at": datetime.now(UTC),
        "endpoint": "chat",
        "requested_model": "m",
        "provider": "p",
        "upstream_model": "m",
        "stream": False,
        "status_code": 200,
        "error_type": None,
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "cached_prompt_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "input_cost_usd": Decimal("0.000000150"),
        "output_cost_usd": Decimal("0.0000012"),
        "cost_usd": Decimal("0.000001350"),
        "usage_estimated": False,
        "ttft_ms": None,
        "latency_ms": 1.5,
        "upstream_request_id": None,
        "route_reason": None,
        "attempts": 1,
        "api_key_id": None,
        "team": None,
        "shadow": False,
        "shadow_of": None,
    }
    row.update(values)
    return row


def count_rows(url: str) -> int:
    async def run() -> int:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                q = select(func.count()).select_from(requests_table)
                return int((await conn.execute(q)).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def fetch_dead_letters(url: str) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                result = await conn.execute(select(dead_letters_table))
                return [dict(r._mapping) for r in result.all()]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def wait_rows(url: str, n: int, timeout: float = 10.0, **where: Any) -> list[dict[str, Any]]:
    """The writer flushes every ~100 ms: poll until `n` rows matching `where` are in."""
    deadline = time.monotonic() + timeout
    while True:
        rows = fetch_rows(url, **where)
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)

"""No row can wedge the ledger: on PostgreSQL (which, unlike SQLite, checks VARCHAR lengths)
over-long values are clipped when the row is built, a row the database still refuses is
dead-lettered alone, and a writer that cannot write turns /health/ready not-ready.

Before the fix, the first test's three rows failed their batch forever (retried every 5 s):
none of the 1,000 rows after them was written and /health/ready said ready.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from benchmarks.ledger_outage.proxy import TcpProxy
from gateway.config import GatewayConfig, parse_config
from tests.conftest import GatewayFactory, _pg_exec_on, sim_config, via
from tests.integration.test_chat import MSG
from tests.support import ServerThread, fetch_dead_letters, gateway_server, wait_rows

LONG_MODEL = "m" * 250
LONG_ID = "chatcmpl-" + "i" * 291  # 300 characters
LONG_TYPE = "t" * 200


async def odd_upstream(scope: Scope, receive: Receive, send: Send) -> None:
    """An OpenAI-shaped upstream whose answer id is 300 characters (model `long-id`) or whose
    error type is 200 characters (model `long-type`)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    model = orjson.loads(body)["model"]
    out: dict[str, Any]
    if model == "long-type":
        status, out = 400, {"error": {"message": "refused", "type": LONG_TYPE}}
    else:
        message = {"role": "assistant", "content": "hi"}
        status, out = (
            200,
            {
                "id": LONG_ID,
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            },
        )
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(out)})


@pytest.fixture()
def odd() -> Iterator[ServerThread]:
    server = ServerThread(odd_upstream).start()
    yield server
    server.stop()


def config_with_odd(
    sim: ServerThread, odd: ServerThread, db_url: str, **extra: Any
) -> GatewayConfig:
    raw: dict[str, Any] = sim_config(sim.url, db_url, **extra).model_dump(mode="json")
    raw["providers"].append(
        {"name": "odd", "kind": "openai", "api_base": f"{odd.url}/v1", "api_key": "k"}
    )
    price = {"input_per_mtok": 1, "output_per_mtok": 1}
    raw["models"] += [
        {"name": "long-id", "provider": "odd", "price": price},
        {"name": "long-type", "provider": "odd", "price": price},
    ]
    return parse_config(raw, source="test", environ={})


async def _chat_many(base: str, n: int, model: str = "gpt-4o-mini") -> list[str]:
    """`n` chat requests, 20 at a time; their request ids."""
    sem = asyncio.Semaphore(20)
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:

        async def one() -> str:
            async with sem:
                r = await c.post("/v1/chat/completions", json={"model": model, "messages": MSG})
                assert r.status_code == 200, r.text
                return r.headers["x-request-id"]

        return list(await asyncio.gather(*(one() for _ in range(n))))


def test_over_long_values_cost_nothing_and_block_nothing(
    sim: ServerThread, odd: ServerThread, pg_url: str, gateway_factory: GatewayFactory
) -> None:
    _pg_exec_on(pg_url, "TRUNCATE requests")
    gw = gateway_factory(config_with_odd(sim, odd, pg_url))
    sent = {}
    with httpx.Client(base_url=gw.url) as c:
        for model, status in ((LONG_MODEL, 404), ("long-id", 200), ("long-type", 400)):
            r = c.post("/v1/chat/completions", json={"model": model, "messages": MSG})
            assert r.status_code == status
            sent[model] = r.headers["x-request-id"]
    after = asyncio.run(_chat_many(gw.url, 1000))
    rows = wait_rows(pg_url, 1003, timeout=15)
    assert len(rows) == 1003  # the 1,000 after them, and the three themselves
    by_id = {r["id"]: r for r in rows}
    assert set(after) <= set(by_id)
    model_row = by_id[sent[LONG_MODEL]]
    assert model_row["clipped"] == "requested_model" and model_row["status_code"] == 404
    assert len(model_row["requested_model"]) == 200
    assert model_row["requested_model"].endswith("…")
    id_row = by_id[sent["long-id"]]
    assert id_row["clipped"] == "upstream_request_id"
    assert id_row["upstream_request_id"].startswith("chatcmpl-iii")
    # errors.py now keeps an upstream error type only when it is an identifier of at most 64
    # characters (else the status's type), so this one fits before the ledger sees it; the
    # ledger clips it should anything else let one through (tests/unit/test_ledger_shape.py)
    type_row = by_id[sent["long-type"]]
    assert type_row["status_code"] == 400 and len(type_row["error_type"]) <= 100
    assert all(by_id[i]["clipped"] is None for i in after)
    ready = httpx.get(f"{gw.url}/health/ready").json()
    assert ready["status"] == "ready" and ready["ledger"]["clipped"] >= 2


def test_a_row_the_database_refuses_is_dead_lettered_alone(
    sim: ServerThread, fresh_pg_url: str, gateway_factory: GatewayFactory
) -> None:
    """A refusal the row builder cannot foresee (here a CHECK constraint a DBA added) costs
    the refused row only: it is found by bisection and kept in ledger_dead_letters."""
    _pg_exec_on(
        fresh_pg_url,
        "ALTER TABLE requests ADD CONSTRAINT no_shouting "
        "CHECK (requested_model IS NULL OR requested_model <> upper(requested_model))",
    )
    gw = gateway_factory(sim_config(sim.url, fresh_pg_url, ledger={"batch_size": 1000}))
    before = asyncio.run(_chat_many(gw.url, 500))
    r = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "GPT-5", "messages": MSG})
    assert r.status_code == 404
    bad = r.headers["x-request-id"]
    after = asyncio.run(_chat_many(gw.url, 500))
    rows = wait_rows(fresh_pg_url, 1000, timeout=15)
    assert {row["id"] for row in rows} == set(before) | set(after)
    dead = fetch_dead_letters(fresh_pg_url)
    assert [d["row_id"] for d in dead] == [bad]
    assert "CheckViolation" in dead[0]["error"] and "23514" in dead[0]["error"]
    assert orjson.loads(dead[0]["row"])["requested_model"] == "GPT-5"
    health = httpx.get(f"{gw.url}/health/ready").json()
    assert health["ledger"]["dead_lettered"] == 1 and health["status"] == "ready"
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert "gateway_ledger_dead_lettered_rows_total 1.0" in metrics


def _poll_ready(url: str, want: str, timeout: float) -> tuple[float, dict[str, Any]]:
    t0 = time.monotonic()
    while True:
        body = httpx.get(f"{url}/health/ready", timeout=5).json()
        if body["status"] == want or time.monotonic() - t0 > timeout:
            return time.monotonic() - t0, body
        time.sleep(0.1)


def test_a_wedged_writer_turns_not_ready_within_10_s_and_loses_nothing(
    sim: ServerThread, pg_url: str, pg_proxy: TcpProxy, gateway_factory: GatewayFactory
) -> None:
    """The database is away and the journal is full: rows can only wait in memory. Within
    10 s the gateway says so; when the database is back, every row is written."""
    _pg_exec_on(pg_url, "TRUNCATE requests")
    ledger = {
        "flush_interval_ms": 20,
        "journal_max_mb": 0.002,  # ~2 KB: a header and a row or two
        "journal_after_ms": 200,
        "insert_timeout_s": 0.5,
    }
    gw = gateway_factory(sim_config(sim.url, via(pg_proxy, pg_url), ledger=ledger))
    asyncio.run(_chat_many(gw.url, 10))
    wait_rows(pg_url, 10)
    pg_proxy.cut()
    cut_at = time.monotonic()
    ids = asyncio.run(_chat_many(gw.url, 50))  # answered at once: nothing waits for the ledger
    waited, body = _poll_ready(gw.url, "unavailable", timeout=15)
    took = time.monotonic() - cut_at
    assert body["status"] == "unavailable", body
    assert took < 10, f"not-ready after {took:.1f} s"
    ledger_health = body["ledger"]
    assert ledger_health["unsafe_rows"] > 0 and ledger_health["oldest_row_age_s"] > 0
    assert any("journal" in p or "stalled" in p for p in ledger_health["problems"])
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert "gateway_ledger_stalled 1.0" in metrics
    pg_proxy.restore()
    _, body = _poll_ready(gw.url, "ready", timeout=15)
    assert body["status"] == "ready", body
    rows = wait_rows(pg_url, 60, timeout=15)
    assert set(ids) <= {r["id"] for r in rows} and len(rows) == 60
    assert body["ledger"]["dropped"] == 0
    print(f"\nnot-ready {took:.2f} s after the database was cut")


def _largest_string(obj: object, stop: tuple[type, ...]) -> int:
    """The longest str or bytes reachable from `obj`, not looking inside `stop` types (the
    configuration every request shares)."""
    import gc

    seen: set[int] = set()
    todo, longest = [obj], 0
    while todo:
        o = todo.pop()
        if id(o) in seen or isinstance(o, (*stop, type)):
            continue
        seen.add(id(o))
        if isinstance(o, str | bytes | bytearray):
            longest = max(longest, len(o))
            continue
        todo += gc.get_referents(o)
    return longest


def test_queued_rows_hold_no_request_body(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    """What waits for the ledger is a request's facts, not its 64 KB prompt."""
    from gateway.app import create_app
    from gateway.core import Target
    from gateway.state import AppState

    config = sim_config(sim.url, sqlite_url, ledger={"flush_interval_ms": 60_000})
    app = create_app(config)
    server = gateway_server(app)
    try:
        big = [{"role": "user", "content": "x" * 65_536}]
        with httpx.Client(base_url=server.url) as c:
            for model in ("gpt-4o-mini", "llama-3.1-8b", "no-such-model"):
                c.post("/v1/chat/completions", json={"model": model, "messages": big})
        state = app.app.state  # type: ignore[attr-defined]
        assert isinstance(state, AppState)
        queued = list(state.writer._items)
        assert len(queued) == 3
        assert _largest_string(queued, stop=(Target,)) < 2_000
    finally:
        server.stop()

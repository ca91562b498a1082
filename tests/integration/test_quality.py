"""Quality evidence through the real gateway and simulator: shadow calls after the answer,
linked and priced in the ledger (SQLite and PostgreSQL), sampled at the configured rate, off
the primary's path when the reference is slow, stopped by the daily cap and the concurrency
limit, and the evidence read back by `/admin/quality`."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.config import GatewayConfig
from gateway.ledger.db import create_engine
from gateway.ledger.tables import quality_pairs_table
from tests.conftest import GatewayFactory, sim_config
from tests.integration.test_chat import client
from tests.support import ServerThread, fetch_rows, wait_rows

SYSTEM = "Classify the support ticket as billing, technical or other. Answer with the label."


def quality_config(sim: str, db: str, **shadow: Any) -> GatewayConfig:
    return sim_config(
        sim,
        db,
        routes=[
            {
                "name": "auto",
                "policy": "ordered",
                "candidates": ["llama-3.1-8b", "gpt-4o-mini"],
                "shadow": {"sample_rate": 1.0, "reference": "gpt-4o-mini", **shadow},
            }
        ],
        tasks=[{"name": "tickets", "compare": "label"}],
    )


def ask(gw: ServerThread, i: int = 0, *, stream: bool = False, task: str | None = "tickets") -> str:
    """One request on the route; its request id."""
    headers = {"x-gateway-task": task} if task else {}
    messages: Any = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"My invoice {i} is wrong"},
    ]
    c = client(gw)
    if stream:
        with c.chat.completions.with_streaming_response.create(
            model="auto", messages=messages, stream=True, extra_headers=headers
        ) as r:
            for _ in r.iter_lines():
                pass
            return r.headers["x-request-id"]
    raw = c.chat.completions.with_raw_response.create(
        model="auto", messages=messages, extra_headers=headers
    )
    return raw.headers["x-request-id"]


def pairs(url: str, **where: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        engine = create_engine(url)
        q = select(quality_pairs_table)
        for k, v in where.items():
            q = q.where(quality_pairs_table.c[k] == v)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(q)).all()
                return [dict(r._mapping) for r in rows]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def wait_pairs(url: str, n: int, timeout: float = 15.0, **where: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        got = pairs(url, **where)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def metric(gw: ServerThread, name: str, **labels: str) -> float:
    text = httpx.get(f"{gw.url}/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def received(sim: ServerThread, upstream: str) -> int:
    ups = httpx.get(f"{sim.url}/sim/stats").json()["upstreams"]
    return int(ups.get(upstream, {}).get("requests", {}).get("chat", 0))


@pytest.mark.parametrize("stream", [False, True])
def test_shadow_rows_are_linked_priced_and_compared(
    sim: ServerThread, db_url: str, gateway_factory: GatewayFactory, stream: bool
) -> None:
    gw = gateway_factory(quality_config(sim.url, db_url))
    rid = ask(gw, stream=stream)
    shadow = wait_rows(db_url, 1, shadow_of=rid)
    assert len(shadow) == 1, "no shadow row"
    s = shadow[0]
    primary = fetch_rows(db_url, id=rid)[0]
    assert primary["shadow"] is False and primary["shadow_of"] is None
    assert primary["upstream_model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert s["shadow"] is True and s["requested_model"] == "gpt-4o-mini"
    assert s["provider"] == "openai" and s["stream"] is False and s["status_code"] == 200
    assert s["team"] == "evidence" and s["api_key_id"] is None
    assert s["cost_usd"] > 0 and s["prompt_tokens"] > 0
    [pair] = wait_pairs(db_url, 1, request_id=rid)
    assert pair["request_id"] == rid and pair["shadow_request_id"] == s["id"] == pair["id"]
    assert (pair["task"], pair["model"], pair["reference"]) == ("tickets", "llama-3.1-8b", "gpt-4o-mini")
    assert pair["comparator"] == "label" and pair["passed"] in (True, False)
    assert pair["reference_cost_usd"] == s["cost_usd"]
    assert pair["model_cost_usd"] == primary["cost_usd"]
    assert pair["model_sample"] and pair["reference_sample"]

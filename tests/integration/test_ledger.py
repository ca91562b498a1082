"""Every request leaves one priced row, on SQLite and on PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import httpx

from gateway.pricing.table import load_litellm_table
from tests.conftest import GatewayFactory, sim_config
from tests.integration.test_chat import MSG, client
from tests.support import ServerThread, wait_rows


def _litellm_cost(model: str, prompt: int, completion: int, cached: int = 0) -> Decimal:
    e = load_litellm_table()[model]
    return (
        Decimal(prompt - cached) * Decimal(str(e["input_cost_per_token"]))
        + Decimal(cached) * Decimal(str(e["cache_read_input_token_cost"]))
        + Decimal(completion) * Decimal(str(e["output_cost_per_token"]))
    )


def test_rows_match_upstream_usage_and_price_table(
    sim: ServerThread, db_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(sim_config(sim.url, db_url))
    c = client(gw)
    raw = c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSG)
    resp = raw.parse()
    rid = raw.headers["x-request-id"]
    row = wait_rows(db_url, 1, id=rid)[0]
    u = resp.usage
    assert u is not None
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        u.prompt_tokens,
        u.completion_tokens,
    )
    assert row["cost_usd"] == _litellm_cost("gpt-4o-mini", u.prompt_tokens, u.completion_tokens)
    assert row["input_cost_usd"] + row["output_cost_usd"] == row["cost_usd"]
    assert isinstance(row["cost_usd"], Decimal)
    assert row["requested_model"] == "gpt-4o-mini" and row["provider"] == "openai"
    assert row["upstream_model"] == "gpt-4o-mini" and row["stream"] is False
    assert row["status_code"] == 200 and row["error_type"] is None
    assert row["usage_estimated"] is False and row["ttft_ms"] is None
    assert row["latency_ms"] > 0 and row["upstream_request_id"] == resp.id
    assert row["route_reason"].startswith("pinned: gpt-4o-mini")
    assert row["created_at"] is not None and row["api_key_id"] is None and row["team"] is None


def test_streamed_row_has_ttft_and_config_price(
    sim: ServerThread, db_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(sim_config(sim.url, db_url))
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={
            "model": "llama-3.1-8b",
            "messages": MSG,
            "stream": True,
            "max_tokens": 50,
            "ignore_eos": True,
            "stream_options": {"include_usage": True},
        },
    ) as r:
        rid = r.headers["x-request-id"]
        body = r.read().decode()
    import json

    usage = [
        json.loads(line[6:])["usage"]
        for line in body.splitlines()
        if line.startswith("data: {") and '"usage":{' in line.replace(" ", "")
    ][-1]
    row = wait_rows(db_url, 1, id=rid)[0]
    assert row["stream"] is True and row["ttft_ms"] is not None
    assert 0 < row["ttft_ms"] <= row["latency_ms"]
    assert row["completion_tokens"] == usage["completion_tokens"] == 50
    assert row["upstream_model"] == "meta-llama/Llama-3.1-8B-Instruct"
    expected = (
        Decimal(usage["prompt_tokens"]) * Decimal("0.05") + Decimal(50) * Decimal("0.08")
    ) / 10**6
    assert row["cost_usd"] == expected


def test_one_row_per_request_including_refusals(
    sim: ServerThread, db_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(sim_config(sim.url, db_url))
    c = client(gw)
    for _ in range(5):
        c.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    for _ in range(3):
        list(c.chat.completions.create(model="llama-3.1-8b", messages=MSG, stream=True))
    httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "nope", "messages": MSG})
    httpx.post(f"{gw.url}/v1/chat/completions", content=b"{")
    c.embeddings.create(model="text-embedding-3-small", input="hello")
    rows = wait_rows(db_url, 11)
    assert len(rows) == 11
    assert sorted(r["status_code"] for r in rows) == [200] * 9 + [400, 404]
    assert len({r["id"] for r in rows}) == 11

"""Claude's prompt caching in the ledger, on SQLite and PostgreSQL: cache writes and reads are
recorded as the provider reported them and priced at the cache-write and cache-read rates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import httpx

from gateway.pricing.table import load_litellm_table
from tests.conftest import GatewayFactory
from tests.integration.test_anthropic_chat import MODEL, PRICE, UPSTREAM, claude_config
from tests.integration.test_chat import client
from tests.support import ServerThread, wait_rows

LONG = "Our product handbook, section by section. " * 120  # ≈ 1,300 tokens: cacheable
RATE = {k: Decimal(str(v)) / 10**6 for k, v in PRICE.items()}


def _split(sim: ServerThread, system: Any) -> anthropic.types.Usage:
    """Ask a fresh simulated upstream (a replica with a cold cache) how it splits this prompt."""
    c = anthropic.Anthropic(base_url=f"{sim.url}/instant@cold", api_key="k", max_retries=0)
    return c.messages.create(
        model=UPSTREAM,
        max_tokens=256,
        system=system,
        messages=[{"role": "user", "content": "Summarise."}],
    ).usage


def _cost(inp: int, write: int, read: int, out: int) -> Decimal:
    return (
        inp * RATE["input_per_mtok"]
        + write * RATE["cache_write_per_mtok"]
        + read * RATE["cache_read_per_mtok"]
        + out * RATE["output_per_mtok"]
    )


def test_openai_client_cache_write_then_read(
    sim: ServerThread, db_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(claude_config(sim.url, db_url))
    expected = _split(sim, [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}])
    write, inp, out = (
        expected.cache_creation_input_tokens or 0,
        expected.input_tokens,
        expected.output_tokens,
    )
    assert write > 1024
    msgs: list[Any] = [
        {
            "role": "system",
            "content": [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}],
        },
        {"role": "user", "content": "Summarise."},
    ]
    ids = []
    for stream in (False, True):  # the second request, streamed, reads what the first wrote
        if stream:
            with httpx.stream(
                "POST",
                f"{gw.url}/v1/chat/completions",
                json={"model": MODEL, "messages": msgs, "stream": True},
            ) as r:
                ids.append(r.headers["x-request-id"])
                r.read()
        else:
            raw = client(gw).chat.completions.with_raw_response.create(model=MODEL, messages=msgs)
            resp = raw.parse()
            assert resp.usage is not None and resp.usage.prompt_tokens == inp + write
            assert resp.usage.prompt_tokens_details is not None
            assert resp.usage.prompt_tokens_details.cached_tokens == 0
            ids.append(raw.headers["x-request-id"])
    first, second = (wait_rows(db_url, 1, id=i)[0] for i in ids)
    assert (
        first["prompt_tokens"],
        first["cached_prompt_tokens"],
        first["cache_write_tokens"],
        first["completion_tokens"],
    ) == (inp + write, 0, write, out)
    assert first["cost_usd"] == _cost(inp, write, 0, out)
    assert first["input_cost_usd"] + first["output_cost_usd"] == first["cost_usd"]
    assert (
        second["prompt_tokens"],
        second["cached_prompt_tokens"],
        second["cache_write_tokens"],
        second["stream"],
    ) == (inp + write, write, 0, True)
    assert second["cost_usd"] == _cost(inp, 0, write, out) < first["cost_usd"]
    assert first["endpoint"] == "chat" and first["provider"] == "anthropic"
    assert first["upstream_model"] == UPSTREAM and first["usage_estimated"] is False
    assert first["upstream_request_id"].startswith("msg_")


def test_messages_endpoint_rows_native_auto_cache_and_bridged(
    sim: ServerThread, db_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(claude_config(sim.url, db_url))
    c = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)
    user: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Summarise."}]
    # a plain system string: the model's auto_cache_system_prompt marks it
    expected = _split(sim, [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}])
    write = expected.cache_creation_input_tokens or 0
    raw = c.messages.with_raw_response.create(
        model="claude-auto-cache", max_tokens=256, system=LONG, messages=user
    )
    m = raw.parse()
    assert (
        m.usage.cache_creation_input_tokens == write
        and m.usage.input_tokens == expected.input_tokens
    )
    with c.messages.stream(
        model="claude-auto-cache", max_tokens=256, system=LONG, messages=user
    ) as s:
        streamed = s.get_final_message()
    assert streamed.usage.cache_read_input_tokens == write
    bridged = c.messages.with_raw_response.create(model="gpt-4o-mini", max_tokens=50, messages=user)
    b = bridged.parse()
    rows = wait_rows(db_url, 3, endpoint="messages")
    by_id = {r["id"]: r for r in rows}
    native = by_id[raw.headers["x-request-id"]]
    assert native["cache_write_tokens"] == write and native["cached_prompt_tokens"] == 0
    assert native["prompt_tokens"] == expected.input_tokens + write
    assert native["cost_usd"] == _cost(expected.input_tokens, write, 0, m.usage.output_tokens)
    assert native["upstream_request_id"] == m.id and native["stream"] is False
    cached = next(r for r in rows if r["stream"])
    assert cached["cached_prompt_tokens"] == write and cached["cache_write_tokens"] == 0
    assert cached["cost_usd"] == _cost(
        expected.input_tokens, 0, write, streamed.usage.output_tokens
    )
    assert cached["ttft_ms"] is not None
    row = by_id[bridged.headers["x-request-id"]]
    price = load_litellm_table()["gpt-4o-mini"]
    assert row["provider"] == "openai" and row["prompt_tokens"] == b.usage.input_tokens
    assert row["completion_tokens"] == b.usage.output_tokens
    assert row["cost_usd"] == (
        b.usage.input_tokens * Decimal(str(price["input_cost_per_token"]))
        + b.usage.output_tokens * Decimal(str(price["output_cost_per_token"]))
    )

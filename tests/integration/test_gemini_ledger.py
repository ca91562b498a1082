"""Gemini requests leave priced ledger rows — cached and reasoning tokens included — on SQLite
and on PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from gateway.simulator.gemini_plans import CACHED_CONTENT_TOKENS, THOUGHT_TOKENS
from tests.conftest import GatewayFactory
from tests.integration.test_chat import MSG, client
from tests.integration.test_gemini import KEY, MODEL, PRICE, gemini_config
from tests.support import ServerThread, wait_rows

# Google's OpenAI-compatibility extension (https://ai.google.dev/gemini-api/docs/openai):
# the openai SDK sends `extra_body` as top-level JSON, hence the nesting.
CACHED = {"extra_body": {"google": {"cached_content": "cachedContents/shared-prompt"}}}


def expected_cost(prompt: int, cached: int, completion: int) -> Decimal:
    rate = {k: Decimal(str(v)) / 10**6 for k, v in PRICE.items()}
    return (
        (prompt - cached) * rate["input_per_mtok"]
        + cached * rate["cache_read_per_mtok"]
        + completion * rate["output_per_mtok"]
    )


def _check_row(row: dict[str, Any], usage: Any) -> None:
    assert row["provider"] == "gemini" and row["upstream_model"] == "gemini-1.5-flash"
    assert row["requested_model"] == MODEL and row["status_code"] == 200
    assert row["prompt_tokens"] == usage.prompt_tokens
    assert row["completion_tokens"] == usage.completion_tokens
    assert row["cached_prompt_tokens"] == CACHED_CONTENT_TOKENS
    assert row["reasoning_tokens"] == THOUGHT_TOKENS and row["cache_write_tokens"] == 0
    assert row["usage_estimated"] is False
    assert row["cost_usd"] == expected_cost(
        usage.prompt_tokens, CACHED_CONTENT_TOKENS, usage.completion_tokens
    )
    assert row["input_cost_usd"] + row["output_cost_usd"] == row["cost_usd"]
    assert all(KEY not in str(v) for v in row.values())


def test_cached_and_reasoning_tokens_are_priced(
    sim: ServerThread, db_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(gemini_config(sim.url, db_url))
    raw = client(gw).chat.completions.with_raw_response.create(
        model=MODEL, messages=MSG, reasoning_effort="low", extra_body=CACHED
    )
    resp = raw.parse()
    assert resp.usage is not None
    details = resp.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens == CACHED_CONTENT_TOKENS
    row = wait_rows(db_url, 1, id=raw.headers["x-request-id"])[0]
    _check_row(row, resp.usage)
    assert row["upstream_request_id"] == resp.id and row["stream"] is False


def test_streamed_row_is_priced_from_the_last_usage_metadata(
    sim: ServerThread, db_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(gemini_config(sim.url, db_url))
    whole = client(gw).chat.completions.create(
        model=MODEL, messages=MSG, reasoning_effort="low", extra_body=CACHED
    )
    # the client does not ask for usage: the gateway still reads Gemini's and prices it
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={"model": MODEL, "messages": MSG, "stream": True, "reasoning_effort": "low", **CACHED},
    ) as r:
        rid = r.headers["x-request-id"]
        body = r.read().decode()
    assert '"usage"' not in body
    row = wait_rows(db_url, 1, id=rid)[0]
    _check_row(row, whole.usage)
    assert row["stream"] is True and row["ttft_ms"] is not None
    assert row["upstream_request_id"] and row["upstream_request_id"] in body


def test_error_row(sim: ServerThread, db_url: str, gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(gemini_config(sim.url, db_url))
    httpx.post(f"{sim.url}/sim/faults", json={"upstream": "instant", "status": 429, "count": 1})
    r = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": MODEL, "messages": MSG})
    assert r.status_code == 429
    row = wait_rows(db_url, 1, id=r.headers["x-request-id"])[0]
    assert (row["status_code"], row["error_type"], row["provider"]) == (
        429,
        "rate_limit_error",
        "gemini",
    )
    assert row["cost_usd"] == 0 and all(KEY not in str(v) for v in row.values())

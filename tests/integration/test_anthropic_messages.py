"""`POST /v1/messages`: the anthropic SDK pointed at the gateway, served natively by an
anthropic-kind model and translated for OpenAI-kind and vLLM-kind ones, streaming included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from gateway.config import parse_config
from tests.conftest import GatewayFactory
from tests.integration.test_anthropic_chat import (
    MODEL,
    UPSTREAM,
    Gateway,
    claude_config,
    claude_gateway,
)
from tests.integration.test_chat import client
from tests.support import ServerThread, wait_rows

USER: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Tell me about caching."}]
WEATHER: anthropic.types.ToolParam = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
ASK: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture(scope="module")
def shared(simulator: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with claude_gateway(simulator.url, tmp_path_factory.mktemp("messages")) as g:
        yield g


@pytest.fixture()
def ac(shared: Gateway, sim: ServerThread) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=shared.server.url, api_key="unused", max_retries=0)


def blocks(content: list[Any]) -> list[dict[str, Any]]:
    return [b.model_dump(exclude={"parsed_output", "id"}) for b in content]


def test_native_answer_is_anthropics_own(
    ac: anthropic.Anthropic, sim: ServerThread, shared: Gateway
) -> None:
    direct = anthropic.Anthropic(base_url=sim.url, api_key="k", max_retries=0).messages.create(
        model=UPSTREAM, max_tokens=64, messages=USER
    )
    raw = ac.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=USER)
    m = raw.parse()
    assert raw.headers["x-gateway-provider"] == "anthropic"
    assert raw.headers["x-gateway-model"] == MODEL
    assert m.model == UPSTREAM and blocks(m.content) == blocks(direct.content)
    assert m.usage.input_tokens == direct.usage.input_tokens
    row = wait_rows(shared.ledger, 1, id=raw.headers["x-request-id"])[0]
    assert row["endpoint"] == "messages" and row["upstream_request_id"] == m.id
    assert row["route_reason"].startswith(f"pinned: {MODEL}")


@pytest.mark.parametrize("model", [MODEL, "gpt-4o-mini", "llama-3.1-8b"])
def test_stream_rebuilds_the_answer(ac: anthropic.Anthropic, shared: Gateway, model: str) -> None:
    whole = ac.messages.create(model=model, max_tokens=64, messages=USER)
    with ac.messages.stream(model=model, max_tokens=64, messages=USER) as s:
        kinds = [ev.type for ev in s]
        final = s.get_final_message()
        rid = s.response.headers["x-request-id"]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert blocks(final.content) == blocks(whole.content) and final.content
    assert final.stop_reason == whole.stop_reason == "end_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens
    row = wait_rows(shared.ledger, 1, id=rid)[0]
    assert row["stream"] is True and row["completion_tokens"] == whole.usage.output_tokens
    assert row["ttft_ms"] is not None and row["usage_estimated"] is False


@pytest.mark.parametrize("model", ["gpt-4o-mini", "llama-3.1-8b"])
def test_bridged_answer_matches_the_chat_answer(
    ac: anthropic.Anthropic, shared: Gateway, model: str
) -> None:
    chat = client(shared.server).chat.completions.create(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "Tell me about caching."}]
    )
    m = ac.messages.create(model=model, max_tokens=64, messages=USER)
    block = m.content[0]
    assert isinstance(block, anthropic.types.TextBlock) and chat.usage is not None
    assert block.text == chat.choices[0].message.content
    assert m.usage.input_tokens == chat.usage.prompt_tokens
    assert m.usage.output_tokens == chat.usage.completion_tokens
    short = ac.messages.create(
        model=model,
        max_tokens=3,
        messages=USER,
        system="Be brief.",
        stop_sequences=["zzz"],
        metadata={"user_id": "u-1"},
        # this SDK version no longer types sampling parameters
        extra_body={"temperature": 0.5, "top_p": 0.9},
    )
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 3


@pytest.mark.parametrize("model", [MODEL, "gpt-4o-mini"])
def test_tool_use_round_trip(ac: anthropic.Anthropic, model: str) -> None:
    first = ac.messages.create(model=model, max_tokens=64, messages=ASK, tools=[WEATHER])
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    with ac.messages.stream(model=model, max_tokens=64, messages=ASK, tools=[WEATHER]) as s:
        streamed = s.get_final_message()
    assert blocks(streamed.content) == blocks(first.content)  # input JSON reassembled exactly
    forced = ac.messages.create(
        model=model,
        max_tokens=64,
        messages=USER,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert [b.type for b in forced.content] == ["tool_use"]
    final = ac.messages.create(
        model=model,
        max_tokens=64,
        tools=[WEATHER],
        messages=[
            *ASK,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "18°C"},
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
        ],
    )
    assert final.stop_reason == "end_turn" and final.content[0].type == "text"


def test_images_reach_a_bridged_model(ac: anthropic.Anthropic) -> None:
    image: anthropic.types.ImageBlockParam = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    m = ac.messages.create(
        model="gpt-4o-mini",
        max_tokens=8,
        messages=[{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}],
    )
    assert m.usage.input_tokens > 85  # the simulator counts an image as 85 tokens


def test_anthropic_beta_header_reaches_the_native_upstream(
    shared: Gateway, sim: ServerThread
) -> None:
    r = httpx.post(
        f"{shared.server.url}/v1/messages",
        headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        json={"model": MODEL, "max_tokens": 5, "messages": USER},
    )
    assert r.status_code == 200 and r.json()["type"] == "message"


@pytest.mark.parametrize("provider", ["anthropic", "local-llama"])
def test_client_disconnect_is_recorded_as_499(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory, provider: str
) -> None:
    raw = claude_config(sim.url, sqlite_url).model_dump()
    for p in raw["providers"]:  # a slow upstream (~6.5 ms a token) so that the stream is long
        p["api_base"] = p["api_base"].replace("/instant", "/llama-3.1-8b-h100")
        if p["kind"] == "vllm":
            p["api_base"] = f"{sim.url}/llama-3.1-8b-h100/v1"
    gw = gateway_factory(parse_config(raw, source="test", environ={}))
    model = MODEL if provider == "anthropic" else "llama-3.1-8b"
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/messages",
        json={"model": model, "max_tokens": 2000, "messages": USER, "stream": True},
    ) as r:
        assert next(r.iter_raw()).startswith(b"event: message_start")
    row = wait_rows(sqlite_url, 1, endpoint="messages")[0]
    assert row["status_code"] == 499 and row["error_type"] == "client_disconnected"
    assert row["provider"] == provider


def test_a_gemini_model_answers_through_its_own_adapter(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    from tests.integration.test_gemini import gemini_config

    gw = gateway_factory(gemini_config(sim.url, sqlite_url))
    ac = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)
    whole = ac.messages.create(model="gemini-flash", max_tokens=64, messages=ASK, tools=[WEATHER])
    with ac.messages.stream(
        model="gemini-flash", max_tokens=64, messages=ASK, tools=[WEATHER]
    ) as s:
        streamed = s.get_final_message()
    assert whole.stop_reason == streamed.stop_reason == "tool_use"
    assert blocks(streamed.content) == blocks(whole.content)
    rows = wait_rows(sqlite_url, 2, endpoint="messages")
    assert {r["provider"] for r in rows} == {"gemini"} and all(r["cost_usd"] > 0 for r in rows)

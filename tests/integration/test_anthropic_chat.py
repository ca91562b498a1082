"""An anthropic-kind model behind the gateway: the openai SDK as the client, the simulator's
`/v1/messages` as the upstream (whose wire the anthropic SDK checks in
test_anthropic_simulator)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.config import GatewayConfig, parse_config
from gateway.ledger.migrate import upgrade
from tests.conftest import sim_config
from tests.integration.test_chat import MSG, PROMPT, client
from tests.support import ServerThread, gateway_server

KEY = "sk-ant-test-secret-456"
MODEL = "claude-haiku"
UPSTREAM = "claude-3-5-haiku-20241022"
PRICE = {
    "input_per_mtok": 0.80,
    "output_per_mtok": 4.00,
    "cache_read_per_mtok": 0.08,
    "cache_write_per_mtok": 1.00,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
WEATHER_Q = [{"role": "user", "content": "What is the weather in Paris?"}]


def claude_config(sim_url: str, db_url: str, **provider: Any) -> GatewayConfig:
    """sim_config's providers plus an anthropic-kind one on the simulator's `instant` upstream,
    with `claude-haiku` and `claude-auto-cache` (auto_cache_system_prompt) on it."""
    raw = sim_config(sim_url, db_url).model_dump()
    raw["providers"] = [
        *raw["providers"],
        {
            "name": "anthropic",
            "kind": "anthropic",
            "api_base": f"{sim_url}/instant",
            "api_key": KEY,
            "timeout_s": 5,
            **provider,
        },
    ]
    raw["models"] = [
        *raw["models"],
        {
            "name": MODEL,
            "provider": "anthropic",
            "upstream_model": UPSTREAM,
            "price": PRICE,
            "default_max_tokens": 256,
        },
        {
            "name": "claude-auto-cache",
            "provider": "anthropic",
            "upstream_model": UPSTREAM,
            "price": PRICE,
            "auto_cache_system_prompt": True,
        },
    ]
    return parse_config(raw, source="test", environ={})


@dataclass
class Gateway:
    server: ServerThread
    ledger: str  # the SQLite URL of its ledger


@contextmanager
def claude_gateway(sim_url: str, directory: Path) -> Iterator[Gateway]:
    """One gateway for a whole test module (starting one per test would dominate the run);
    tests find their own rows by the response's x-request-id."""
    ledger = f"sqlite+aiosqlite:///{directory / 'ledger.db'}"
    upgrade(ledger)
    server = gateway_server(create_app(claude_config(sim_url, ledger), CollectorRegistry()))
    try:
        yield Gateway(server, ledger)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shared(simulator: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with claude_gateway(simulator.url, tmp_path_factory.mktemp("claude")) as g:
        yield g


@pytest.fixture()
def gw(shared: Gateway, sim: ServerThread) -> ServerThread:
    """The module's gateway; `sim` resets the simulator's faults and caches around each test."""
    return shared.server


def chat(server: ServerThread, **kw: Any) -> Any:
    return client(server).chat.completions.create(**{"model": MODEL, "messages": MSG, **kw})


def stream(server: ServerThread, **kw: Any) -> list[Any]:
    return list(chat(server, stream=True, **kw))


def test_answer_matches_a_direct_anthropic_call(gw: ServerThread, sim: ServerThread) -> None:
    direct = anthropic.Anthropic(base_url=sim.url, api_key="k", max_retries=0).messages.create(
        model=UPSTREAM, max_tokens=256, messages=[{"role": "user", "content": PROMPT}]
    )
    r = chat(gw)
    block = direct.content[0]
    assert isinstance(block, anthropic.types.TextBlock)
    assert r.choices[0].message.content == block.text
    assert r.choices[0].finish_reason == "stop" and r.model == UPSTREAM
    assert r.id.startswith("msg_")
    assert r.usage.prompt_tokens == direct.usage.input_tokens
    assert r.usage.completion_tokens == direct.usage.output_tokens


def test_stream_joins_to_the_answer_with_one_finish_and_no_usage(gw: ServerThread) -> None:
    whole = chat(gw)
    chunks = stream(gw)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert all(c.usage is None for c in chunks)


def test_usage_chunk_only_when_asked(gw: ServerThread) -> None:
    whole = chat(gw)
    chunks = stream(gw, stream_options={"include_usage": True})
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert sum(c.usage is not None for c in chunks) == 1


def _streamed_calls(chunks: list[Any]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or ()) if c.choices else ():
            if tc.id:
                assert tc.index not in calls  # the id and name arrive once, first
                calls[tc.index] = {"id": tc.id, "name": tc.function.name, "arguments": ""}
            calls[tc.index]["arguments"] += tc.function.arguments or ""
    return calls


def test_tool_call_round_trip_with_streamed_arguments(gw: ServerThread) -> None:
    first = chat(gw, messages=WEATHER_Q, tools=[WEATHER])
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
        "city": "Paris"
    }
    assert first.choices[0].message.content  # Claude says something before an auto tool call
    chunks = stream(gw, messages=WEATHER_Q, tools=[WEATHER])
    calls = _streamed_calls(chunks)
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather"
    assert calls[0]["arguments"] == call.function.arguments  # reassembled exactly
    assert [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ] == ["tool_calls"]
    # the result goes back as an OpenAI tool message; the simulator checks the pairing
    final = chat(
        gw,
        tools=[WEATHER],
        messages=[
            *WEATHER_Q,
            {
                "role": "assistant",
                "content": first.choices[0].message.content,
                "tool_calls": [call.model_dump()],
            },
            {"role": "tool", "tool_call_id": call.id, "content": "18°C and sunny"},
        ],
    )
    assert final.choices[0].finish_reason == "stop" and final.choices[0].message.content


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_forced_tool_choice(gw: ServerThread, choice: Any) -> None:
    r = chat(gw, tools=[WEATHER], tool_choice=choice)
    assert r.choices[0].finish_reason == "tool_calls" and r.choices[0].message.content is None
    none = chat(gw, messages=WEATHER_Q, tools=[WEATHER], tool_choice="none")
    assert none.choices[0].finish_reason == "stop" and not none.choices[0].message.tool_calls


def test_parameters_translate(gw: ServerThread) -> None:
    short = chat(
        gw, max_tokens=3, temperature=1.5, top_p=0.5, user="u-1", stop=["never-said"]
    )  # temperature 1.5 is clamped to Anthropic's 1.0
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 3
    assert chat(gw, max_completion_tokens=2).usage.completion_tokens == 2
    words = chat(gw).choices[0].message.content.split()
    cut = chat(gw, stop=[f" {words[2]}"])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == " ".join(words[:2])
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    seen = chat(
        gw,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What?"}, image]},
        ],
    )
    assert seen.usage.prompt_tokens > 85  # the image counts (85 tokens in the simulator)


def test_untranslatable_requests_are_400(gw: ServerThread) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        chat(gw, n=2)
    assert isinstance(e.value.body, dict) and e.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError):
        chat(
            gw,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}
                    ],
                }
            ],
        )

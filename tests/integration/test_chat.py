"""The gateway as a real server, the official openai SDK as its client, the simulator upstream."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai.types.chat import (
    ChatCompletionMessageParam,
    ChatCompletionMessageToolCall,
    ChatCompletionToolParam,
)

from tests.support import ServerThread, wait_rows

PROMPT = "Say something about gateways."
MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]


def client(server: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-client", max_retries=0)


def test_non_streaming_matches_the_upstream(gateway: ServerThread, sim: ServerThread) -> None:
    direct = client(sim).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MSG
    )
    resp = raw.parse()
    assert resp.choices[0].message.content == direct.choices[0].message.content
    assert resp.usage is not None and direct.usage is not None
    assert resp.usage.prompt_tokens == direct.usage.prompt_tokens
    assert raw.headers["x-request-id"]
    assert raw.headers["x-gateway-provider"] == "openai"


@pytest.mark.parametrize("model", ["gpt-4o-mini", "llama-3.1-8b"])
def test_streaming_deltas_join_to_the_full_answer(gateway: ServerThread, model: str) -> None:
    c = client(gateway)
    full = c.chat.completions.create(model=model, messages=MSG)
    chunks = list(c.chat.completions.create(model=model, messages=MSG, stream=True))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == full.choices[0].message.content
    finishes = [
        ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason
    ]
    assert len(finishes) == 1
    # the gateway asked the upstream for usage; this client did not, so it must not see it
    assert all(ch.usage is None for ch in chunks)


def test_stream_usage_chunk_when_asked(gateway: ServerThread) -> None:
    c = client(gateway)
    full = c.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    chunks = list(
        c.chat.completions.create(
            model="gpt-4o-mini",
            messages=MSG,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and full.usage is not None
    assert last.usage.completion_tokens == full.usage.completion_tokens
    assert sum(1 for ch in chunks if ch.usage is not None) == 1


def test_parameters_pass_through(gateway: ServerThread) -> None:
    tools: list[ChatCompletionToolParam] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    r = client(gateway).chat.completions.create(
        model="gpt-4o-mini",
        messages=MSG,
        tools=tools,
        tool_choice="required",
        max_tokens=5,
        temperature=0.2,
        top_p=0.9,
        seed=1,
        user="u1",
        n=1,
        stop=["\n\n"],
    )
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.choices[0].message.tool_calls
    call = r.choices[0].message.tool_calls[0]
    assert isinstance(call, ChatCompletionMessageToolCall)  # a function call, not a custom tool
    assert call.function.name == "get_weather"
    j = client(gateway).chat.completions.create(
        model="gpt-4o-mini", messages=MSG, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(j.choices[0].message.content or ""), dict)
    short = client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=3)
    assert short.usage is not None and short.usage.completion_tokens == 3
    assert short.choices[0].finish_reason == "length"


def test_completions_embeddings_and_models(gateway: ServerThread) -> None:
    c = client(gateway)
    comp = c.completions.create(model="llama-3.1-8b", prompt="Once upon", max_tokens=4)
    assert comp.choices[0].text and comp.usage is not None
    streamed = list(
        c.completions.create(model="llama-3.1-8b", prompt="Once upon", max_tokens=4, stream=True)
    )
    assert "".join(ch.choices[0].text for ch in streamed if ch.choices) == comp.choices[0].text
    emb = c.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(emb.data) == 2 and emb.usage.prompt_tokens > 0
    ids = [m.id for m in c.models.list()]
    assert ids == ["gpt-4o-mini", "llama-3.1-8b", "text-embedding-3-small"]


def test_health_ready_and_metrics(gateway: ServerThread, sqlite_url: str) -> None:
    client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    list(client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True))
    assert httpx.get(f"{gateway.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{gateway.url}/health/ready").json()["database"] == "ok"
    wait_rows(sqlite_url, 2)  # metrics follow the ledger
    text = httpx.get(f"{gateway.url}/metrics").text
    assert (
        'gateway_requests_total{model="gpt-4o-mini",provider="openai",status_class="2xx"} 2.0'
        in text
    )
    assert (
        'gateway_time_to_first_token_seconds_count{model="gpt-4o-mini",provider="openai"} 1.0'
        in text
    )
    assert 'gateway_tokens_total{kind="prompt",model="gpt-4o-mini",provider="openai"}' in text
    assert "gateway_cost_usd_total" in text and "gateway_request_duration_seconds_bucket" in text

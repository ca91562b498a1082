"""A gemini-kind model behind the gateway: the openai SDK as the client, the simulator's Gemini
endpoints as the upstream (whose wire the google-genai SDK checks in test_gemini_simulator)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from google import genai
from google.genai import types

from gateway.config import GatewayConfig, parse_config
from tests.conftest import GatewayFactory, sim_config
from tests.integration.test_chat import MSG, PROMPT, client
from tests.support import ServerThread, serve, wait_rows

KEY = "AIza-test-secret-456"
MODEL = "gemini-flash"
PRICE = {"input_per_mtok": 0.075, "output_per_mtok": 0.30, "cache_read_per_mtok": 0.01875}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def gemini_config(
    sim_url: str, db_url: str, api_base: str | None = None, **provider: Any
) -> GatewayConfig:
    """sim_config's providers plus a gemini-kind one on the simulator's `instant` upstream."""
    raw = sim_config(sim_url, db_url).model_dump()
    raw["providers"] = [
        *raw["providers"],
        {
            "name": "gemini",
            "kind": "gemini",
            "api_base": api_base or f"{sim_url}/instant",
            "api_key": KEY,
            "timeout_s": 5,
            **provider,
        },
    ]
    raw["models"] = [
        *raw["models"],
        {"name": MODEL, "provider": "gemini", "upstream_model": "gemini-1.5-flash", "price": PRICE},
    ]
    return parse_config(raw, source="test", environ={})


@pytest.fixture()
def gw(sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory) -> ServerThread:
    return gateway_factory(gemini_config(sim.url, sqlite_url))


def chat(server: ServerThread, **kw: Any) -> Any:
    return client(server).chat.completions.create(model=MODEL, **{"messages": MSG, **kw})


def stream(server: ServerThread, **kw: Any) -> list[Any]:
    return list(chat(server, stream=True, **kw))


def test_answer_matches_a_direct_gemini_call(gw: ServerThread, sim: ServerThread) -> None:
    direct = genai.Client(
        api_key="k",
        http_options=types.HttpOptions(base_url=f"{sim.url}/instant", api_version="v1beta"),
    )
    try:
        d = direct.models.generate_content(model="gemini-1.5-flash", contents=PROMPT)
    finally:
        direct.close()
    raw = client(gw).chat.completions.with_raw_response.create(model=MODEL, messages=MSG)
    r = raw.parse()
    assert r.choices[0].message.content == d.text
    assert r.choices[0].finish_reason == "stop" and r.object == "chat.completion"
    assert r.usage is not None and d.usage_metadata is not None
    assert r.usage.prompt_tokens == d.usage_metadata.prompt_token_count
    assert r.usage.completion_tokens == d.usage_metadata.candidates_token_count
    assert raw.headers["x-gateway-provider"] == "gemini" and raw.headers["x-gateway-model"] == MODEL


def test_stream_joins_to_the_whole_answer_without_usage(gw: ServerThread) -> None:
    full = chat(gw)
    chunks = stream(gw)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks) == full.choices[0].message.content
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["stop"]
    assert all(c.usage is None for c in chunks)


def test_usage_chunk_only_when_asked(gw: ServerThread) -> None:
    full = chat(gw, reasoning_effort="low")
    chunks = stream(gw, reasoning_effort="low", stream_options={"include_usage": True})
    last = chunks[-1]
    assert last.choices == [] and sum(1 for c in chunks if c.usage is not None) == 1
    assert last.usage.model_dump() == full.usage.model_dump()


def test_reasoning_tokens_count_as_completion(gw: ServerThread) -> None:
    plain, thinking = chat(gw), chat(gw, reasoning_effort="low")
    assert plain.usage.completion_tokens_details.reasoning_tokens == 0
    details = thinking.usage.completion_tokens_details
    assert details.reasoning_tokens == 96  # the simulator's THOUGHT_TOKENS, under the 1,024 budget
    assert thinking.usage.completion_tokens == plain.usage.completion_tokens + 96
    assert thinking.choices[0].message.content == plain.choices[0].message.content


def test_tool_call_round_trip(gw: ServerThread) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = chat(gw, messages=messages, tools=[WEATHER])
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
        "city": "Paris"
    }
    streamed = stream(gw, messages=messages, tools=[WEATHER])
    deltas = [tc for c in streamed for tc in c.choices[0].delta.tool_calls or []]
    assert [tc.index for tc in deltas] == [0] and deltas[0].function.name == "get_weather"
    assert "".join(tc.function.arguments or "" for tc in deltas) == call.function.arguments
    assert [c.choices[0].finish_reason for c in streamed if c.choices[0].finish_reason] == [
        "tool_calls"
    ]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    second = chat(gw, messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content


@pytest.mark.parametrize(
    "choice, calls",
    [
        ("required", True),
        ({"type": "function", "function": {"name": "get_weather"}}, True),
        ("none", False),
    ],
)
def test_tool_choice(gw: ServerThread, choice: Any, calls: bool) -> None:
    r = chat(
        gw, messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER], tool_choice=choice
    )
    assert bool(r.choices[0].message.tool_calls) is calls


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "json_object"},
        {
            "type": "json_schema",
            "json_schema": {
                "name": "reply",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"reply": {"type": "string"}},
                    "required": ["reply"],
                    "additionalProperties": False,
                },
            },
        },
    ],
)
def test_json_mode(gw: ServerThread, fmt: dict[str, Any]) -> None:
    r = chat(gw, response_format=fmt)
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_several_choices(gw: ServerThread) -> None:
    r = chat(gw, n=2, max_tokens=3)
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.finish_reason == "length" for c in r.choices)
    assert r.usage.completion_tokens == 6


def test_safety_blocks_become_content_filter(gw: ServerThread) -> None:
    blocked = [{"role": "user", "content": "BLOCKME now"}]
    r = chat(gw, messages=blocked)
    assert r.choices[0].finish_reason == "content_filter" and r.choices[0].message.content == ""
    chunks = stream(gw, messages=blocked)
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == [
        "content_filter"
    ]
    cut = [{"role": "user", "content": "BLOCKREPLY now"}]
    r = chat(gw, messages=cut)
    assert r.choices[0].finish_reason == "content_filter" and r.choices[0].message.content
    chunks = stream(gw, messages=cut)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == r.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "content_filter"


@pytest.mark.parametrize(
    "status, exc, type_, code",
    [
        (400, openai.BadRequestError, "invalid_request_error", "invalid_argument"),
        (403, openai.PermissionDeniedError, "permission_error", "permission_denied"),
        (404, openai.NotFoundError, "not_found_error", "not_found"),
        (429, openai.RateLimitError, "rate_limit_error", "resource_exhausted"),
        (500, openai.InternalServerError, "api_error", "internal"),
        (503, openai.InternalServerError, "service_unavailable_error", "unavailable"),
    ],
)
def test_upstream_errors_map_with_their_status(
    gw: ServerThread,
    sim: ServerThread,
    sqlite_url: str,
    status: int,
    exc: type[openai.APIStatusError],
    type_: str,
    code: str,
) -> None:
    fault = {
        "upstream": "instant",
        "status": status,
        "count": 1,
        "retry_after": 7,
        "message": f"simulated, key {KEY}",
    }
    for streamed in (False, True):  # a stream fails the same way before its first byte
        httpx.post(f"{sim.url}/sim/faults", json=fault)
        with pytest.raises(exc) as e:
            stream(gw) if streamed else chat(gw)
        assert e.value.status_code == status
        err = e.value.response.json()["error"]
        assert (err["type"], err["code"]) == (type_, code) and KEY not in e.value.response.text
        if status == 429:  # retryable, and the delay reaches the client
            assert e.value.response.headers["retry-after"] == "7"
    rows = wait_rows(sqlite_url, 2, status_code=status)
    assert [r["error_type"] for r in rows] == [type_, type_]
    assert all(r["provider"] == "gemini" and KEY not in str(v) for r in rows for v in r.values())


def test_stream_dropped_midway_ends_with_an_error_event(
    gw: ServerThread, sim: ServerThread, sqlite_url: str
) -> None:
    httpx.post(
        f"{sim.url}/sim/faults",
        json={"upstream": "instant", "kind": "drop", "drop_after_chunks": 3, "count": 1},
    )
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={"model": MODEL, "messages": MSG, "stream": True},
    ) as r:
        assert r.status_code == 200
        body = r.read().decode()
    assert '"upstream_connection_error"' in body and body.endswith("data: [DONE]\n\n")
    row = wait_rows(sqlite_url, 1, stream=True)[0]
    assert row["status_code"] == 502 and row["provider"] == "gemini"


def test_error_event_midway_keeps_the_text_so_far(
    gw: ServerThread, sim: ServerThread, sqlite_url: str
) -> None:
    httpx.post(
        f"{sim.url}/sim/faults",
        json={
            "upstream": "instant",
            "kind": "stream_error",
            "status": 503,
            "drop_after_chunks": 2,
            "count": 1,
        },
    )
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={"model": MODEL, "messages": MSG, "stream": True},
    ) as r:
        body = r.read().decode()
    events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]
    deltas = [e["choices"][0]["delta"] for e in events[:-1]]
    assert deltas[0]["role"] == "assistant" and len(deltas) == 3  # role, then two tokens
    assert all(d.get("content") for d in deltas[1:])
    assert events[-1]["error"]["type"] == "service_unavailable_error"
    assert body.endswith("data: [DONE]\n\n")
    row = wait_rows(sqlite_url, 1, stream=True)[0]
    assert (row["status_code"], row["error_type"]) == (502, "service_unavailable_error")


def test_key_travels_in_the_header_only(
    sqlite_url: str, gateway_factory: GatewayFactory, sim: ServerThread
) -> None:
    seen: list[dict[str, Any]] = []
    answer = (
        types.GenerateContentResponse(
            response_id="rec-1",
            candidates=[
                types.Candidate(
                    content=types.Content(role="model", parts=[types.Part(text="ok")]),
                    finish_reason=types.FinishReason.STOP,
                )
            ],
        )
        .model_dump_json(by_alias=True, exclude_none=True)
        .encode()
    )

    async def recorder(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(
            {
                "path": scope["path"],
                "query": scope["query_string"],
                "headers": dict(scope["headers"]),
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    with serve(recorder) as upstream:
        gw = gateway_factory(gemini_config(sim.url, sqlite_url, api_base=upstream.url))
        assert chat(gw).choices[0].message.content == "ok"
    assert seen[0]["path"] == "/v1beta/models/gemini-1.5-flash:generateContent"
    assert seen[0]["query"] == b"" and seen[0]["headers"][b"x-goog-api-key"] == KEY.encode()
    assert b"authorization" not in seen[0]["headers"]
    row = wait_rows(sqlite_url, 1)[0]
    assert row["upstream_request_id"] == "rec-1"
    assert all(KEY not in str(v) for v in row.values())


def test_missing_key_is_the_upstreams_403(
    sim: ServerThread, sqlite_url: str, gateway_factory: GatewayFactory
) -> None:
    gw = gateway_factory(gemini_config(sim.url, sqlite_url, api_key=None))
    with pytest.raises(openai.PermissionDeniedError) as e:
        chat(gw)
    assert e.value.response.json()["error"]["code"] == "permission_denied"

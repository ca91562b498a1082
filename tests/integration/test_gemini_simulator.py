"""The simulator's Gemini endpoints driven by the official google-genai SDK: it parses every body
and SSE event into its own types (extra="forbid"), so passing here means the wire is Gemini's."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from google import genai
from google.genai import errors, types

from gateway.simulator.gemini_plans import CACHED_CONTENT_TOKENS, THOUGHT_TOKENS
from tests.support import ServerThread

MODEL = "gemini-1.5-flash"
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather for a city",
            parameters=types.Schema(
                type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}
            ),
        )
    ]
)


@pytest.fixture()
def gclient(sim: ServerThread) -> Iterator[genai.Client]:
    client = genai.Client(
        api_key="sim-key",
        http_options=types.HttpOptions(base_url=f"{sim.url}/instant", api_version="v1beta"),
    )
    yield client
    client.close()


def test_generate_and_stream_agree(gclient: genai.Client) -> None:
    whole = gclient.models.generate_content(model=MODEL, contents="Tell me about gateways.")
    assert whole.text and whole.response_id and whole.model_version == MODEL
    u = whole.usage_metadata
    assert u is not None and u.prompt_token_count and u.candidates_token_count
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count
    assert whole.candidates and whole.candidates[0].finish_reason == types.FinishReason.STOP
    events = list(
        gclient.models.generate_content_stream(model=MODEL, contents="Tell me about gateways.")
    )
    assert "".join(e.text or "" for e in events) == whole.text
    finishes = [c.finish_reason for e in events for c in e.candidates or [] if c.finish_reason]
    assert finishes == [types.FinishReason.STOP]
    assert events[-1].usage_metadata == u  # the last event carries the final counts


def test_max_tokens_and_candidates(gclient: genai.Client) -> None:
    r = gclient.models.generate_content(
        model=MODEL,
        contents="Hi",
        config=types.GenerateContentConfig(max_output_tokens=3, candidate_count=2),
    )
    assert r.candidates and len(r.candidates) == 2
    assert all(c.finish_reason == types.FinishReason.MAX_TOKENS for c in r.candidates)
    assert r.usage_metadata is not None and r.usage_metadata.candidates_token_count == 6


def test_thinking_and_explicit_cache(gclient: genai.Client) -> None:
    r = gclient.models.generate_content(
        model=MODEL,
        contents="Hi",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_budget=1000, include_thoughts=True),
            cached_content="cachedContents/demo",
        ),
    )
    u = r.usage_metadata
    assert u is not None and u.thoughts_token_count == THOUGHT_TOKENS
    assert u.cached_content_token_count == CACHED_CONTENT_TOKENS
    assert u.prompt_token_count is not None and u.prompt_token_count > CACHED_CONTENT_TOKENS
    assert r.candidates and r.candidates[0].content is not None
    parts = r.candidates[0].content.parts
    assert parts is not None and parts[0].thought is True and r.text  # text skips thoughts


def test_function_call_when_mode_any(gclient: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[WEATHER],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY
            )
        ),
    )
    r = gclient.models.generate_content(model=MODEL, contents="Hi", config=config)
    assert r.function_calls and r.function_calls[0].name == "get_weather"
    assert r.function_calls[0].args == {"city": "Paris"}
    events = list(gclient.models.generate_content_stream(model=MODEL, contents="Hi", config=config))
    calls = [fc for e in events for fc in e.function_calls or []]
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris"})]


def test_safety_blocking(gclient: genai.Client) -> None:
    r = gclient.models.generate_content(model=MODEL, contents="BLOCKME please")
    assert not r.candidates and r.prompt_feedback is not None
    assert r.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    r = gclient.models.generate_content(model=MODEL, contents="BLOCKREPLY please")
    assert r.candidates and r.candidates[0].finish_reason == types.FinishReason.SAFETY
    events = list(gclient.models.generate_content_stream(model=MODEL, contents="BLOCKME"))
    assert len(events) == 1 and events[0].prompt_feedback is not None


@pytest.mark.parametrize(
    "status, google_status, kind",
    [
        (400, "INVALID_ARGUMENT", errors.ClientError),
        (403, "PERMISSION_DENIED", errors.ClientError),
        (404, "NOT_FOUND", errors.ClientError),
        (429, "RESOURCE_EXHAUSTED", errors.ClientError),
        (500, "INTERNAL", errors.ServerError),
        (503, "UNAVAILABLE", errors.ServerError),
    ],
)
def test_faults_answer_in_googles_error_shape(
    gclient: genai.Client,
    sim: ServerThread,
    status: int,
    google_status: str,
    kind: type[errors.APIError],
) -> None:
    httpx.post(
        f"{sim.url}/sim/faults",
        json={"upstream": "instant", "status": status, "count": 1, "retry_after": 4},
    )
    with pytest.raises(kind) as e:
        gclient.models.generate_content(model=MODEL, contents="Hi")
    assert (e.value.code, e.value.status) == (status, google_status)
    assert e.value.details["error"]["details"][0]["retryDelay"] == "4s"


def test_missing_key_bad_json_and_unknown_method(sim: ServerThread) -> None:
    url = f"{sim.url}/v1beta/models/{MODEL}"  # the root serves the default profile too
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    r = httpx.post(f"{url}:generateContent", json=body)
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    key = {"x-goog-api-key": "k"}
    assert httpx.post(f"{url}:generateContent", json=body, headers=key).status_code == 200
    r = httpx.post(f"{url}:generateContent", json={"contents": []}, headers=key)
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    r = httpx.post(f"{url}:streamGenerateContent", json=body, headers=key)  # no alt=sse
    assert r.status_code == 400
    assert httpx.post(f"{url}:countTokens", json=body, headers=key).status_code == 404


def test_implicit_cache_on_the_gemini_profile(sim: ServerThread) -> None:
    client = genai.Client(
        api_key="k",
        http_options=types.HttpOptions(base_url=f"{sim.url}/gemini-flash", api_version="v1beta"),
    )
    config = types.GenerateContentConfig(
        system_instruction="You are terse. " * 400, max_output_tokens=1
    )
    try:
        first = client.models.generate_content(model=MODEL, contents="One", config=config)
        second = client.models.generate_content(model=MODEL, contents="Two", config=config)
    finally:
        client.close()
    assert first.usage_metadata is not None and second.usage_metadata is not None
    assert first.usage_metadata.cached_content_token_count is None
    cached = second.usage_metadata.cached_content_token_count
    assert cached is not None and cached >= 1024 and cached % 128 == 0

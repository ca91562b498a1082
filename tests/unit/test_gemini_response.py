"""Gemini answers and errors → OpenAI shapes, on bodies built from google-genai's own types and
checked with openai-python's types."""

from __future__ import annotations

import orjson
import pytest
from google.genai import types
from openai.types.chat import ChatCompletion

from gateway.config import ProviderConfig
from gateway.core import ClientRequest, Price, Target, Usage
from gateway.errors import UpstreamProtocolError
from gateway.providers.gemini import GeminiAdapter

KEY = "AIza-unit-secret"
TARGET = Target(
    "flash",
    "gemini-1.5-flash",
    ProviderConfig(name="gemini", kind="gemini", api_key=KEY),
    Price.per_mtok(0.075, 0.3, 0.01875),
)
REQ = ClientRequest("chat", {}, "flash")
USAGE = types.GenerateContentResponseUsageMetadata(
    prompt_token_count=1200,
    cached_content_token_count=1024,
    candidates_token_count=30,
    thoughts_token_count=50,
    total_token_count=1280,
)


def wire(resp: types.GenerateContentResponse) -> bytes:
    """What the REST API sends: camelCase, no nulls."""
    return resp.model_dump_json(by_alias=True, exclude_none=True).encode()


def _parse(resp: types.GenerateContentResponse) -> tuple[ChatCompletion, Usage | None, str | None]:
    r = GeminiAdapter().parse_response(wire(resp), REQ, TARGET)
    return ChatCompletion.model_validate(r.data), r.usage, r.upstream_request_id


def _candidate(*parts: types.Part, finish: str = "STOP", index: int = 0) -> types.Candidate:
    return types.Candidate(
        content=types.Content(role="model", parts=list(parts)),
        finish_reason=types.FinishReason(finish),
        index=index,
    )


def test_text_answer_with_cached_and_thought_tokens() -> None:
    resp = types.GenerateContentResponse(
        response_id="resp-1",
        model_version="gemini-1.5-flash-002",
        usage_metadata=USAGE,
        candidates=[
            _candidate(
                types.Part(text="thinking...", thought=True),
                types.Part(text="Hello "),
                types.Part(text="world"),
            )
        ],
    )
    c, usage, rid = _parse(resp)
    assert c.choices[0].message.content == "Hello world"  # the thought summary is not shown
    assert c.choices[0].finish_reason == "stop" and c.model == "gemini-1.5-flash-002"
    assert rid == c.id == "resp-1"
    # completion = candidates + thoughts; the prompt already includes the cached tokens
    assert usage == Usage(
        prompt_tokens=1200, completion_tokens=80, cached_prompt_tokens=1024, reasoning_tokens=50
    )
    assert c.usage is not None and c.usage.total_tokens == 1280
    assert c.usage.prompt_tokens_details.cached_tokens == 1024  # type: ignore[union-attr]
    assert c.usage.completion_tokens_details.reasoning_tokens == 50  # type: ignore[union-attr]


def test_function_calls_become_tool_calls() -> None:
    resp = types.GenerateContentResponse(
        response_id="r2",
        usage_metadata=USAGE,
        candidates=[
            _candidate(
                types.Part(
                    function_call=types.FunctionCall(name="get_weather", args={"city": "Paris"})
                ),
                types.Part(
                    function_call=types.FunctionCall(
                        name="get_weather", args={"city": "Rome"}, id="given-id"
                    ),
                    thought_signature=b"sig",
                ),
            )
        ],
    )
    c, _, _ = _parse(resp)
    msg = c.choices[0].message
    assert c.choices[0].finish_reason == "tool_calls" and msg.content is None
    calls = msg.tool_calls or []
    assert [call.id for call in calls] == ["call_r2_0_0", "given-id"]
    assert [orjson.loads(call.function.arguments) for call in calls] == [  # type: ignore[union-attr]
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    # Gemini 3 needs the signature back with the call: it rides as Google's compat layer has it
    assert calls[1].model_extra == {"extra_content": {"google": {"thought_signature": "c2ln"}}}


@pytest.mark.parametrize(
    "gemini, openai",
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
    ],
)
def test_finish_reasons(gemini: str, openai: str) -> None:
    c, _, _ = _parse(
        types.GenerateContentResponse(
            candidates=[_candidate(types.Part(text="partial"), finish=gemini)]
        )
    )
    assert c.choices[0].finish_reason == openai


def test_blocked_prompt_is_an_empty_filtered_answer() -> None:
    resp = types.GenerateContentResponse(
        response_id="r3",
        prompt_feedback=types.GenerateContentResponsePromptFeedback(
            block_reason=types.BlockedReason.SAFETY
        ),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=9, total_token_count=9
        ),
    )
    c, usage, _ = _parse(resp)
    assert c.choices[0].finish_reason == "content_filter"
    assert c.choices[0].message.content == ""
    assert usage == Usage(prompt_tokens=9)


def test_several_candidates_keep_their_index() -> None:
    resp = types.GenerateContentResponse(
        candidates=[
            _candidate(types.Part(text="a"), index=0),
            _candidate(types.Part(text="b"), index=1),
        ]
    )
    c, usage, _ = _parse(resp)
    assert [(ch.index, ch.message.content) for ch in c.choices] == [(0, "a"), (1, "b")]
    assert usage is None  # nothing reported: the ledger estimates


def test_not_json_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        GeminiAdapter().parse_response(b"<html>", REQ, TARGET)


def _google_error(code: int, status: str, message: str, retry: str | None = None) -> bytes:
    error: dict[str, object] = {"code": code, "message": message, "status": status}
    if retry:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry}
        ]
    return orjson.dumps({"error": error})


@pytest.mark.parametrize(
    "status, google, type_, retryable",
    [
        (400, "INVALID_ARGUMENT", "invalid_request_error", False),
        (403, "PERMISSION_DENIED", "permission_error", False),
        (404, "NOT_FOUND", "not_found_error", False),
        (429, "RESOURCE_EXHAUSTED", "rate_limit_error", True),
        (500, "INTERNAL", "api_error", True),
        (503, "UNAVAILABLE", "service_unavailable_error", True),
    ],
)
def test_errors_keep_status_and_map_type(
    status: int, google: str, type_: str, retryable: bool
) -> None:
    body = _google_error(status, google, f"problem with key {KEY}")
    e = GeminiAdapter().parse_error(status, body, {}, TARGET)
    assert (e.status_code, e.type, e.code, e.retryable) == (
        status,
        type_,
        google.lower(),
        retryable,
    )
    assert e.error_type == type_
    assert KEY not in e.message and KEY not in e.body().decode()
    assert e.message == "gemini: problem with key ***"


def test_429_retry_info_becomes_retry_after() -> None:
    body = _google_error(429, "RESOURCE_EXHAUSTED", "quota", retry="36.2s")
    assert GeminiAdapter().parse_error(429, body, {}, TARGET).headers == {"retry-after": "37"}
    header = GeminiAdapter().parse_error(429, body, {"retry-after": "5"}, TARGET)
    assert header.headers == {"retry-after": "5"}  # the header, when sent, wins


def test_unreadable_error_bodies() -> None:
    e = GeminiAdapter().parse_error(502, b"<html>Bad gateway</html>", {}, TARGET)
    assert e.status_code == 502 and "HTTP 502" in e.message
    listed = orjson.dumps([orjson.loads(_google_error(404, "NOT_FOUND", "no such model"))])
    assert GeminiAdapter().parse_error(404, listed, {}, TARGET).message.endswith("no such model")

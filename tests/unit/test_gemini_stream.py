"""The Gemini stream translator on SSE events built from google-genai's own types, its output
parsed with openai-python's ChatCompletionChunk."""

from __future__ import annotations

import orjson
import pytest
from google.genai import types
from openai.types.chat import ChatCompletionChunk

from gateway.core import Usage
from gateway.errors import UpstreamProtocolError
from gateway.providers.gemini_stream import GeminiStream
from gateway.sse import SSEDecoder
from tests.unit.streams import to_openai

KEY = "AIza-unit-secret"


def event(
    candidates: list[types.Candidate] | None = None,
    *,
    rid: str = "r1",
    usage: types.GenerateContentResponseUsageMetadata | None = None,
    blocked: bool = False,
) -> bytes:
    resp = types.GenerateContentResponse(
        candidates=candidates,
        response_id=rid,
        model_version="gemini-1.5-flash",
        usage_metadata=usage,
        prompt_feedback=types.GenerateContentResponsePromptFeedback(
            block_reason=types.BlockedReason.SAFETY
        )
        if blocked
        else None,
    )
    # CRLF event ends, as the simulator sends them; the decoder takes CR, LF and CRLF alike
    return b"data: " + resp.model_dump_json(by_alias=True, exclude_none=True).encode() + b"\r\n\r\n"


def text(t: str, finish: str | None = None, index: int = 0) -> types.Candidate:
    return types.Candidate(
        content=types.Content(role="model", parts=[types.Part(text=t)]),
        finish_reason=types.FinishReason(finish) if finish else None,
        index=index,
    )


def meta(
    prompt: int, out: int | None = None, thoughts: int | None = None, cached: int | None = None
) -> types.GenerateContentResponseUsageMetadata:
    return types.GenerateContentResponseUsageMetadata(
        prompt_token_count=prompt,
        candidates_token_count=out,
        thoughts_token_count=thoughts,
        cached_content_token_count=cached,
    )


def run(raw: bytes, include_usage: bool = False) -> tuple[GeminiStream, list[bytes]]:
    tr = GeminiStream(model="gemini-1.5-flash", created=1, provider="gemini", api_key=KEY)
    reads = [raw[i : i + 7] for i in range(0, len(raw), 7)]  # events straddle reads
    return tr, to_openai(tr, reads, include_usage)


def chunks(out: list[bytes]) -> list[ChatCompletionChunk]:
    assert out[-1] == b"data: [DONE]\n\n"
    return [ChatCompletionChunk.model_validate_json(b[6:]) for b in out[:-1]]


STREAM = (
    event([text("Hel")], usage=meta(12, 1))
    + event([text("lo")], usage=meta(12, 2))
    + event([text("", "STOP")], usage=meta(12, 2, thoughts=40, cached=8))
)


def test_text_stream_role_first_deltas_one_finish() -> None:
    tr, out = run(STREAM)
    cs = chunks(out)
    assert cs[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in cs) == "Hello"
    assert [c.choices[0].finish_reason for c in cs if c.choices[0].finish_reason] == ["stop"]
    assert all(c.usage is None and c.id == "r1" for c in cs)
    # the last usageMetadata wins; thoughts count as completion and reasoning tokens
    assert tr.state.usage == Usage(
        prompt_tokens=12, completion_tokens=42, cached_prompt_tokens=8, reasoning_tokens=40
    )
    assert tr.state.upstream_request_id == "r1" and tr.state.finish_reason == "stop"


def test_usage_chunk_only_when_asked() -> None:
    _, out = run(STREAM, include_usage=True)
    cs = chunks(out)
    last = cs[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (12, 42)
    assert last.usage.completion_tokens_details.reasoning_tokens == 40  # type: ignore[union-attr]
    assert sum(1 for c in cs if c.usage is not None) == 1


def test_tool_calls_get_stable_indexes() -> None:
    def call(city: str) -> types.Part:
        return types.Part(function_call=types.FunctionCall(name="get_weather", args={"city": city}))

    raw = event(
        [types.Candidate(content=types.Content(role="model", parts=[call("Paris")]), index=0)],
        rid="r9",
    ) + event(
        [
            types.Candidate(
                content=types.Content(role="model", parts=[call("Rome")]),
                finish_reason=types.FinishReason.STOP,
                index=0,
            )
        ],
        rid="r9",
    )
    cs = chunks(run(raw)[1])
    calls = [tc for c in cs for tc in (c.choices[0].delta.tool_calls or [])]
    assert [(tc.index, tc.id, tc.function.name) for tc in calls] == [  # type: ignore[union-attr]
        (0, "call_r9_0_0", "get_weather"),
        (1, "call_r9_0_1", "get_weather"),
    ]
    assert [orjson.loads(tc.function.arguments or "") for tc in calls] == [  # type: ignore[union-attr]
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert cs[-1].choices[0].finish_reason == "tool_calls"


def test_blocked_prompt_and_safety_stop_are_content_filter() -> None:
    cs = chunks(run(event(blocked=True, usage=meta(9)))[1])
    assert [c.choices[0].finish_reason for c in cs] == [None, "content_filter"]
    assert cs[0].choices[0].delta.content == ""
    cs = chunks(run(event([text("so")]) + event([text(" far", "SAFETY")]))[1])
    assert "".join(c.choices[0].delta.content or "" for c in cs) == "so far"
    assert cs[-1].choices[0].finish_reason == "content_filter"


def test_two_candidates_interleaved() -> None:
    raw = event([text("a", index=0), text("x", index=1)]) + event(
        [text("b", "STOP", index=0), text("y", "MAX_TOKENS", index=1)]
    )
    cs = chunks(run(raw)[1])
    by_index: dict[int, str] = {}
    finishes: dict[int, list[str]] = {}
    for c in cs:
        ch = c.choices[0]
        by_index[ch.index] = by_index.get(ch.index, "") + (ch.delta.content or "")
        if ch.finish_reason:
            finishes.setdefault(ch.index, []).append(ch.finish_reason)
    assert by_index == {0: "ab", 1: "xy"} and finishes == {0: ["stop"], 1: ["length"]}


def test_error_event_midway_ends_the_stream() -> None:
    err = orjson.dumps(
        {"error": {"code": 503, "status": "UNAVAILABLE", "message": f"overloaded ({KEY})"}}
    )
    tr, out = run(event([text("Hi")]) + b"data: " + err + b"\n\n" + event([text("lost")]))
    body = b"".join(out).decode()
    assert body.endswith("data: [DONE]\n\n") and "lost" not in body and KEY not in body
    assert tr.state.error is not None and tr.state.error["type"] == "service_unavailable_error"
    assert tr.finish() == []


def test_event_that_is_not_json_is_a_protocol_error() -> None:
    tr = GeminiStream(model="m", created=1, provider="gemini", api_key=None)
    with pytest.raises(UpstreamProtocolError):
        for ev in SSEDecoder().feed(b"data: {broken\n\n"):
            tr.feed(ev)


def test_empty_stream_still_ends_with_done() -> None:
    tr, out = run(b"")
    assert out == [b"data: [DONE]\n\n"] and tr.state.usage is None

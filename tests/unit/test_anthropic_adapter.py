"""The Anthropic adapter's request and response translation, on payloads built from the
official SDKs' types (`anthropic.types.Message`, openai's `ChatCompletion` as the oracle)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.types import Message, TextBlock, ToolUseBlock, Usage
from anthropic.types.output_tokens_details import OutputTokensDetails
from anthropic.types.shared import ErrorResponse
from openai.types.chat import ChatCompletion

from gateway.config import ModelConfig, ProviderConfig
from gateway.core import ClientRequest, Price, Target
from gateway.errors import InvalidRequest, UpstreamHTTPError, UpstreamProtocolError
from gateway.providers.anthropic import AnthropicAdapter
from gateway.providers.anthropic_common import cache_system_prompt

KEY = "sk-ant-unit-secret"
PROVIDER = ProviderConfig(name="anthropic", kind="anthropic", api_key=KEY)
MODEL = ModelConfig(name="claude", provider="anthropic", default_max_tokens=1000)
TARGET = Target("claude", "claude-3-5-haiku-20241022", PROVIDER, Price.per_mtok(0.8, 4), MODEL)
ADAPTER = AnthropicAdapter()
USER = {"role": "user", "content": "Hi"}


def _build(target: Target = TARGET, stream: bool = False, **body: Any) -> dict[str, Any]:
    body.setdefault("messages", [USER])
    req = ClientRequest("chat", {"model": "claude", **body}, "claude", stream=stream)
    up = ADAPTER.build_request(req, target)
    return dict(orjson.loads(up.body))


def _target(**model: Any) -> Target:
    return Target(
        "claude",
        "claude-3-5-haiku-20241022",
        PROVIDER,
        Price.per_mtok(0.8, 4),
        ModelConfig(name="claude", provider="anthropic", **model),
    )


def test_url_headers_model_and_defaults() -> None:
    req = ClientRequest(
        "chat",
        {"model": "claude", "messages": [USER], "seed": 3, "response_format": {"type": "text"}},
        "claude",
    )
    up = ADAPTER.build_request(req, TARGET)
    assert up.url == "https://api.anthropic.com/v1/messages" and up.method == "POST"
    assert up.headers == {
        "content-type": "application/json",
        "x-api-key": KEY,
        "anthropic-version": "2023-06-01",
    }
    body = orjson.loads(up.body)
    # OpenAI-only fields are not sent: the Messages API refuses unknown fields
    assert body == {
        "model": "claude-3-5-haiku-20241022",
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }
    assert req.body["model"] == "claude"  # the client's dict is untouched


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({}, 1000),
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 70, "max_tokens": 50}, 70),
    ],
)
def test_max_tokens_is_always_set(fields: dict[str, Any], expected: int) -> None:
    assert _build(**fields)["max_tokens"] == expected


def test_system_and_developer_messages_become_system_and_turns_merge() -> None:
    body = _build(
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": "d"},
            {"role": "user", "content": "e"},
        ]
    )
    assert body["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Use metric units."},
    ]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert [b["text"] for b in body["messages"][0]["content"]] == ["a", "b"]
    assert [b["text"] for b in body["messages"][1]["content"]] == ["c", "d"]


def test_sampling_stop_user_and_stream() -> None:
    body = _build(stream=True, temperature=0.3, top_p=0.9, stop="END", user="user-42")
    assert body["temperature"] == 0.3 and body["top_p"] == 0.9 and body["stream"] is True
    assert body["stop_sequences"] == ["END"] and body["metadata"] == {"user_id": "user-42"}
    assert _build(stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    # OpenAI's range is 0–2, Anthropic's 0–1
    assert _build(temperature=1.7)["temperature"] == 1.0


WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.mark.parametrize(
    "choice, parallel, expected",
    [
        (None, None, None),
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)
def test_tools_and_tool_choice(choice: Any, parallel: Any, expected: Any) -> None:
    extra: dict[str, Any] = {"tools": [WEATHER]}
    if choice is not None:
        extra["tool_choice"] = choice
    if parallel is not None:
        extra["parallel_tool_calls"] = parallel
    body = _build(**extra)
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": WEATHER["function"]["parameters"],
        }
    ]
    assert body.get("tool_choice") == expected


def test_tool_calls_and_tool_results_become_blocks() -> None:
    body = _build(
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "21C"}],
            },
            {"role": "user", "content": "Thanks"},
        ],
    )
    msgs = body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
    ]
    # tool results first, then the user's text, in one user turn
    assert msgs[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
        {
            "type": "tool_result",
            "tool_use_id": "call_2",
            "content": [{"type": "text", "text": "21C"}],
        },
        {"type": "text", "text": "Thanks"},
    ]


def test_images_and_cache_control_pass_through() -> None:
    mark = {"type": "ephemeral"}
    body = _build(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe", "cache_control": mark},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg"},
                        "cache_control": mark,
                    },
                ],
            }
        ]
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Describe", "cache_control": mark},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {
            "type": "image",
            "source": {"type": "url", "url": "https://example.com/cat.jpg"},
            "cache_control": mark,
        },
    ]


def test_auto_cache_system_prompt_marks_the_last_system_block() -> None:
    msgs = [{"role": "system", "content": "A long static prompt."}, USER]
    assert "cache_control" not in _build(messages=msgs)["system"][0]
    cached = _build(_target(auto_cache_system_prompt=True), messages=msgs)
    assert cached["system"] == [
        {"type": "text", "text": "A long static prompt.", "cache_control": {"type": "ephemeral"}}
    ]
    own = [
        {"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "y"},
    ]
    assert cache_system_prompt(own) == own  # the caller's own breakpoint is kept as it is


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"n": 2}, "n"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}
                        ],
                    }
                ]
            },
            "messages",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}],
                    }
                ]
            },
            "messages",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "[1]"},
                            }
                        ],
                    }
                ]
            },
            "messages",
        ),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages"),
    ],
)
def test_untranslatable_requests_are_400(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        _build(**extra)
    assert e.value.status_code == 400 and e.value.param == param


def _message(content: list[Any], stop: str, usage: Usage) -> bytes:
    return (
        Message(
            id="msg_01",
            type="message",
            role="assistant",
            model="claude-3-5-haiku-20241022",
            content=content,
            stop_reason=stop,
            stop_sequence=None,
            usage=usage,
        )
        .model_dump_json()
        .encode()
    )


def _parse(raw: bytes) -> tuple[ChatCompletion, Any]:
    req = ClientRequest("chat", {"model": "claude", "messages": [USER]}, "claude")
    result = ADAPTER.parse_response(raw, req, TARGET)
    assert result.upstream_request_id == "msg_01"
    return ChatCompletion.model_validate(result.data), result.usage


def test_parse_text_response_with_cache_usage() -> None:
    usage = Usage(
        input_tokens=20,
        output_tokens=7,
        cache_read_input_tokens=1500,
        cache_creation_input_tokens=300,
        output_tokens_details=OutputTokensDetails(thinking_tokens=2),
    )
    resp, u = _parse(
        _message(
            [TextBlock(type="text", text="Hello "), TextBlock(type="text", text="there")],
            "end_turn",
            usage,
        )
    )
    assert resp.choices[0].message.content == "Hello there"
    assert resp.choices[0].finish_reason == "stop" and resp.model == "claude-3-5-haiku-20241022"
    assert resp.usage is not None and resp.usage.prompt_tokens == 1820
    assert (
        resp.usage.prompt_tokens_details and resp.usage.prompt_tokens_details.cached_tokens == 1500
    )
    assert resp.usage.completion_tokens == 7 and resp.usage.total_tokens == 1827
    assert (u.prompt_tokens, u.cached_prompt_tokens, u.cache_write_tokens, u.reasoning_tokens) == (
        1820,
        1500,
        300,
        2,
    )


def test_parse_tool_use_response() -> None:
    content = [
        TextBlock(type="text", text="Checking."),
        ToolUseBlock(
            type="tool_use", id="toolu_1", name="get_weather", input={"city": "Paris", "days": 2}
        ),
    ]
    resp, _ = _parse(_message(content, "tool_use", Usage(input_tokens=5, output_tokens=9)))
    msg = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls" and msg.content == "Checking."
    assert msg.tool_calls and msg.tool_calls[0].id == "toolu_1"
    fn = msg.tool_calls[0].function  # type: ignore[union-attr]
    assert fn.name == "get_weather" and orjson.loads(fn.arguments) == {"city": "Paris", "days": 2}


@pytest.mark.parametrize(
    "stop, finish",
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reason_mapping(stop: str, finish: str) -> None:
    resp, _ = _parse(
        _message([TextBlock(type="text", text="x")], stop, Usage(input_tokens=1, output_tokens=1))
    )
    assert resp.choices[0].finish_reason == finish


def test_unreadable_answers_are_protocol_errors() -> None:
    req = ClientRequest("chat", {"model": "claude", "messages": [USER]}, "claude")
    for raw in (b"<html>", b'{"type": "completion"}'):
        with pytest.raises(UpstreamProtocolError):
            ADAPTER.parse_response(raw, req, TARGET)


@pytest.mark.parametrize(
    "status, kind",
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_errors_keep_status_type_and_retry_after(status: int, kind: str) -> None:
    raw = {"type": "error", "request_id": "req_1", "error": {"type": kind, "message": f"bad {KEY}"}}
    if status != 413:  # the docs list request_too_large; the SDK's ErrorObject union does not
        ErrorResponse.model_validate(raw)
    err = ADAPTER.parse_error(status, orjson.dumps(raw), {"retry-after": "9"}, TARGET)
    assert isinstance(err, UpstreamHTTPError)
    assert err.status_code == status and err.type == kind and err.error_type == kind
    assert err.retryable is (status in (429, 500, 529))
    assert err.headers == {"retry-after": "9"}
    assert err.message.startswith("anthropic: ") and KEY not in err.message
    assert KEY not in err.body().decode()


def test_error_without_a_body_still_has_the_status() -> None:
    err = ADAPTER.parse_error(502, b"upstream connect error", {}, TARGET)
    assert err.status_code == 502 and "HTTP 502" in err.message

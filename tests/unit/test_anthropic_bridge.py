"""`/v1/messages` for non-Anthropic models: Messages ↔ OpenAI chat translation and the request
checks and error envelope of protocol/anthropic.py. OpenAI-side payloads are built from the
openai SDK's types; every Anthropic-side output is validated by the anthropic SDK's."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.completion_usage import CompletionUsage, PromptTokensDetails
from pydantic import TypeAdapter

from gateway.codecs.anthropic import MessagesCodec
from gateway.codecs.anthropic_bridge import to_chat_body, to_message
from gateway.codecs.anthropic_stream import MessagesStreamRenderer
from gateway.core import ClientRequest, StreamState
from gateway.errors import InvalidRequest, ModelNotFound, UpstreamHTTPError, UpstreamTimeout
from gateway.protocol.anthropic import error_body, error_type
from gateway.providers.anthropic import AnthropicAdapter
from gateway.providers.openai import OpenAIChunks, usage_from_openai
from gateway.sse import SSEDecoder
from tests.unit.test_anthropic_adapter import _target

EVENTS: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
USAGE = CompletionUsage(
    prompt_tokens=120,
    completion_tokens=9,
    total_tokens=129,
    prompt_tokens_details=PromptTokensDetails(cached_tokens=100),
)


def test_request_translation() -> None:
    body = {
        "model": "llama",
        "max_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.8,
        "top_k": 5,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-7"},
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "tools": [
            {
                "name": "get_weather",
                "description": "w",
                "input_schema": {"type": "object", "properties": {}},
            }
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "18C"}],
                    },
                    {"type": "text", "text": "And"},
                    {"type": "text", "text": " now?"},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                ],
            },
        ],
    }
    out = to_chat_body(body, stream=True)
    assert out["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And"},
                {"type": "text", "text": " now?"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            ],
        },
    ]
    assert out["max_tokens"] == 50 and out["temperature"] == 0.2 and out["top_p"] == 0.8
    assert "top_k" not in out and out["stop"] == ["END"] and out["user"] == "u-7"
    assert out["stream"] is True and out["tool_choice"] == "required"
    assert out["parallel_tool_calls"] is False
    assert out["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {}}


def test_system_turns_inside_messages_join_the_leading_system_message() -> None:
    body: dict[str, Any] = {
        "model": "llama",
        "max_tokens": 5,
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "Reminder: be kind."},
            {"role": "assistant", "content": "hello"},
            {"role": "system", "content": [{"type": "text", "text": "Still terse."}]},
            {"role": "user", "content": "bye"},
        ],
    }
    chat = to_chat_body(body, stream=False)
    assert chat["messages"] == [
        {"role": "system", "content": "You are terse.\n\nReminder: be kind.\n\nStill terse."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"},
    ]
    no_top = {**body, "system": None, "messages": body["messages"][:2]}
    assert to_chat_body(no_top, stream=False)["messages"][0] == {
        "role": "system",
        "content": "Reminder: be kind.",
    }
    # the codec accepts the role (it was `messages.1.role: Input should be 'user' or …`)
    req = MessagesCodec().parse(orjson.dumps(body), [])
    assert req.native_body == body and req.body["messages"][0]["role"] == "system"


@pytest.mark.parametrize(
    "choice, expected",
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "any"}, "required"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice_translation(choice: dict[str, Any], expected: Any) -> None:
    body = {
        "model": "m",
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"name": "f", "input_schema": {}}],
        "tool_choice": choice,
    }
    assert to_chat_body(body, stream=False)["tool_choice"] == expected


def test_base64_images_become_data_urls_and_documents_are_refused() -> None:
    img = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"},
    }
    out = to_chat_body(
        {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [img]}]},
        stream=False,
    )
    assert out["messages"][0]["content"][0]["image_url"]["url"] == "data:image/jpeg;base64,AAAA"
    with pytest.raises(InvalidRequest):
        to_chat_body(
            {
                "model": "m",
                "max_tokens": 1,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "document", "source": {"type": "text", "data": "x"}}],
                    }
                ],
            },
            stream=False,
        )


@pytest.mark.parametrize(
    "finish, stop",
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_response_translation(finish: str, stop: str) -> None:
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {
            "id": "call_2",
            "type": "function",
            "function": {"name": "get_weather", "arguments": "not json"},
        },
    ]
    chat = ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish,
                    "message": {"role": "assistant", "content": "Sure.", "tool_calls": calls},
                }
            ],
            "usage": USAGE.model_dump(),
        }
    )
    msg = Message.model_validate(
        to_message(orjson.loads(chat.model_dump_json()), usage_from_openai(USAGE.model_dump()))
    )
    assert msg.stop_reason == stop and msg.model == "gpt-4o-mini" and msg.id == "chatcmpl-1"
    assert msg.content[0].type == "text" and msg.content[0].text == "Sure."
    assert msg.content[1].input == {"city": "Paris"}  # type: ignore[union-attr]
    assert msg.content[2].input == {"arguments": "not json"}  # type: ignore[union-attr]
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (
        20,
        100,
        9,
    )


def _chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, usage: bool = False
) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    c = ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-9",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": choices,
            "usage": USAGE.model_dump() if usage else None,
        }
    )
    return b"data: " + c.model_dump_json(exclude_none=True).encode() + b"\n\n"


def _translate(raw: bytes) -> tuple[list[tuple[str | None, dict[str, Any]]], StreamState]:
    """An OpenAI upstream's events → typed chunks → the Messages events a client gets."""
    tr = OpenAIChunks()
    renderer = MessagesStreamRenderer("gpt-4o-mini")
    chunks = [c for ev in SSEDecoder().feed(raw) for c in tr.feed(ev)] + tr.finish()
    out = renderer.render(chunks)
    events = [(ev.event, orjson.loads(ev.data)) for ev in SSEDecoder().feed(out)]
    for name, data in events:
        assert name == data["type"]
        if name == "error":
            ErrorResponse.model_validate(data)
        else:
            EVENTS.validate_python(data)
    return events, tr.state


def parse(raw: bytes, beta: str | None = None) -> ClientRequest:
    headers = [(b"anthropic-beta", beta.encode())] if beta else []
    return MessagesCodec().parse(raw, headers)


def _accumulate(events: list[tuple[str | None, dict[str, Any]]]) -> Any:
    snapshot, bufs = None, {}  # type: ignore[var-annotated]
    for _, data in events:
        snapshot = accumulate_event(
            event=EVENTS.validate_python(data), current_snapshot=snapshot, json_bufs=bufs
        )
    return snapshot


def test_stream_translation_text_and_tools() -> None:
    raw = b"".join(
        [
            _chunk({"role": "assistant", "content": ""}),
            _chunk({"content": "Let me "}),
            _chunk({"content": "check."}),
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                }
            ),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": "{}"},
                        }
                    ]
                }
            ),
            _chunk({}, finish="tool_calls"),
            _chunk(usage=True),
            b"data: [DONE]\n\n",
        ]
    )
    events, tr = _translate(raw)
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert [d["index"] for n, d in events if n == "content_block_start"] == [0, 1, 2]
    msg = _accumulate(events)
    assert msg.content[0].text == "Let me check."
    assert (msg.content[1].id, msg.content[1].name, msg.content[1].input) == (
        "call_a",
        "get_weather",
        {"city": "Paris"},
    )
    assert msg.content[2].input == {} and msg.stop_reason == "tool_use"
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (
        20,
        100,
        9,
    )
    assert tr.done and tr.error is None and tr.usage is not None


def test_stream_errors_and_truncation() -> None:
    events, tr = _translate(
        _chunk({"content": "hi"})
        + b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n'
    )
    assert events[-1][0] == "error" and tr.error == {"type": "server_error", "message": "boom"}
    assert events[-1][1]["error"] == {"type": "api_error", "message": "boom"}
    for raw in (_chunk({"content": "cut"}), _chunk({"content": "cut"}) + b"data: [DONE]\n\n"):
        events, tr = _translate(raw)  # ended with no finish_reason: incomplete
        assert events[-1][0] == "error" and tr.error is not None
    events, tr = _translate(_chunk({"content": "ok"}, finish="stop"))  # no [DONE]: fine
    assert events[-1][0] == "message_stop" and tr.error is None


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"{", "not valid JSON"),
        (b"[]", "JSON object"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}',
            "max_tokens: Field required",
        ),
        (
            b'{"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}',
            "max_tokens",
        ),
        (b'{"model": "m", "max_tokens": 5, "messages": []}', "messages"),
        (
            b'{"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}',
            "messages.0.role",
        ),
        (
            b'{"model": "m", "max_tokens": 5, "temperature": 1.5, '
            b'"messages": [{"role": "user", "content": "x"}]}',
            "temperature",
        ),
    ],
)
def test_request_checks(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        parse(raw)
    assert message in e.value.message


def test_request_keeps_unknown_fields_and_reads_stream() -> None:
    req = parse(
        b'{"model": "m", "max_tokens": 5, "stream": true, '
        b'"thinking": {"type": "disabled"}, '
        b'"messages": [{"role": "user", "content": "x"}]}',
        beta="b1",
    )
    assert req.stream and req.model == "m" and req.native_headers == {"anthropic-beta": "b1"}
    assert req.native_body is not None and req.native_body["thinking"] == {"type": "disabled"}
    assert req.endpoint == "messages" and req.operation == "chat" and req.wire == "anthropic"
    assert req.body["messages"] == [{"role": "user", "content": "x"}]  # the neutral chat body


def test_error_envelope() -> None:
    for err, kind in [
        (ModelNotFound("x", ["a"]), "not_found_error"),
        (InvalidRequest("bad"), "invalid_request_error"),
        (UpstreamTimeout("slow"), "timeout_error"),
        (
            UpstreamHTTPError(529, "busy", provider="p", type_="overloaded_error"),
            "overloaded_error",
        ),
        (UpstreamHTTPError(503, "down", provider="p", type_="server_error"), "api_error"),
        (UpstreamHTTPError(429, "slow down", provider="p", type_="requests"), "rate_limit_error"),
    ]:
        assert error_type(err) == kind
        body = ErrorResponse.model_validate_json(error_body(err))
        assert body.error.type == kind and body.error.message == err.message


def test_native_body_gets_the_upstream_model_and_auto_cache_only_with_a_system() -> None:
    target = _target(auto_cache_system_prompt=True)
    plain = parse(
        b'{"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}',
        beta="b",
    )
    up = AnthropicAdapter().build_request(plain, target)
    body = orjson.loads(up.body)
    assert body["model"] == "claude-3-5-haiku-20241022" and "system" not in body
    assert up.headers["anthropic-beta"] == "b" and up.url.endswith("/v1/messages")
    with_system = parse(
        b'{"model": "claude", "max_tokens": 5, "system": "S", '
        b'"messages": [{"role": "user", "content": "x"}]}'
    )
    up = AnthropicAdapter().build_request(with_system, target)
    assert orjson.loads(up.body)["system"] == [
        {"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}
    ]
    assert with_system.native_body is not None
    assert with_system.native_body["system"] == "S"  # the client's body is not mutated

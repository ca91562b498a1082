"""The simulator's Anthropic plans and wire format (pure), checked against the anthropic SDK's
own types: every body and event it renders must validate, and the SDK's stream accumulator
must rebuild the non-streamed message from the events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse
from pydantic import TypeAdapter

from gateway.simulator.anthropic_plans import (
    CACHE_MIN_TOKENS,
    MessagesError,
    MessagesPlan,
    plan_messages,
    resolve_cache,
)
from gateway.simulator.anthropic_wire import MessagesFrames, error_body, message
from gateway.simulator.profiles import PROFILES
from gateway.simulator.upstream import Upstream
from gateway.sse import SSEDecoder

PROFILE = PROFILES["instant"]
EVENTS: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}
HELLO = [{"role": "user", "content": "Hello there"}]


def _plan(**body: Any) -> MessagesPlan:
    return plan_messages(
        {"model": "claude-x", "max_tokens": 100, "messages": HELLO, **body}, PROFILE
    )


def _stream(plan: MessagesPlan) -> list[tuple[str | None, dict[str, Any]]]:
    frames = MessagesFrames(plan, "msg_test")
    raw = frames.head() + b"".join(frames.frame(i) for i in range(frames.steps)) + frames.tail()
    return [(ev.event, orjson.loads(ev.data)) for ev in SSEDecoder().feed(raw)]


def _accumulate(events: list[tuple[str | None, dict[str, Any]]]) -> Any:
    snapshot = None
    bufs: dict[int, bytes] = {}
    for name, data in events:
        assert name == data["type"]
        if name == "ping":
            continue
        snapshot = accumulate_event(
            event=EVENTS.validate_python(data), current_snapshot=snapshot, json_bufs=bufs
        )
    return snapshot


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"tools": [WEATHER], "messages": [{"role": "user", "content": "Weather in Paris?"}]},
        {"tools": [WEATHER], "tool_choice": {"type": "any"}},
        {"max_tokens": 3},
        {
            "tools": [WEATHER],
            "tool_choice": {"type": "tool", "name": "get_weather"},
            "max_tokens": 4,
        },
    ],
)
def test_message_and_stream_validate_and_agree(body: dict[str, Any]) -> None:
    plan = _plan(**body)
    whole = Message.model_validate_json(message(plan, "msg_test"))
    events = _stream(plan)
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert (
        names.count("content_block_start") == names.count("content_block_stop") == len(plan.blocks)
    )
    streamed = _accumulate(events)
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in whole.content]
    assert streamed.stop_reason == whole.stop_reason
    assert streamed.usage.output_tokens == whole.usage.output_tokens == plan.output_tokens
    assert whole.usage.input_tokens == plan.generation.prompt_tokens


def test_tool_choice_shapes_the_answer() -> None:
    auto = _plan(tools=[WEATHER], messages=[{"role": "user", "content": "weather in Paris?"}])
    assert [b.tool_name for b in auto.blocks] == [None, "get_weather"]  # Claude talks first
    assert auto.stop_reason == "tool_use"
    forced = _plan(tools=[WEATHER], tool_choice={"type": "any"})
    assert [b.tool_name for b in forced.blocks] == ["get_weather"]
    assert orjson.loads("".join(forced.blocks[0].pieces)) == {"location": "Paris"}
    none = _plan(
        tools=[WEATHER],
        tool_choice={"type": "none"},
        messages=[{"role": "user", "content": "weather?"}],
    )
    assert all(b.tool_name is None for b in none.blocks) and none.stop_reason == "end_turn"


def test_max_tokens_and_stop_sequences() -> None:
    cut = _plan(max_tokens=3)
    assert cut.stop_reason == "max_tokens" and cut.output_tokens == 3
    text = "".join(_plan().blocks[0].pieces)
    word = text.split()[2]
    stopped = _plan(stop_sequences=["zzz", f" {word}"])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == f" {word}"
    assert text.startswith("".join(stopped.blocks[0].pieces))
    assert f" {word}" not in "".join(stopped.blocks[0].pieces)


@pytest.mark.parametrize(
    "body, message",
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"n": 2}, "n: Extra inputs are not permitted"),
        ({"temperature": 1.5}, "temperature"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "toolu_x", "content": "1"}
                        ],
                    }
                ]
            },
            "each tool_result block must have a corresponding tool_use block",
        ),
        ({"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "nope"}}, "tool_choice.name"),
    ],
)
def test_refusals_name_the_field(body: dict[str, Any], message: str) -> None:
    full = {"model": "claude-x", "max_tokens": 10, "messages": HELLO, **body}
    if body.get("max_tokens", 1) is None:
        del full["max_tokens"]
    with pytest.raises(MessagesError) as e:
        plan_messages(full, PROFILE)
    assert message in e.value.message and e.value.status == 400


def test_tool_round_trip_validates() -> None:
    plan = _plan(
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}],
            },
        ],
    )
    assert plan.stop_reason == "end_turn"  # a tool result gets a text answer


BIG = "lorem ipsum " * 400  # ≈ 1,200 tokens


def _at(up: Upstream, now: float) -> Any:
    """The upstream's cache as `resolve_cache` asks it, at a given time."""
    return lambda key, ttl: up.cache_hit(key, ttl, now)


def test_prompt_cache_writes_then_reads() -> None:
    body = {"system": [{"type": "text", "text": BIG, "cache_control": {"type": "ephemeral"}}]}
    plan = _plan(**body)
    up = Upstream("t", PROFILE)
    first = resolve_cache(plan, _at(up, 0.0))
    assert first.cache_read == 0 and first.cache_write_5m >= CACHE_MIN_TOKENS
    assert first.input_tokens + first.cache_write_5m == plan.generation.prompt_tokens
    second = resolve_cache(plan, _at(up, 299.0))
    assert second.cache_read == first.cache_write_5m and second.cache_write_5m == 0
    assert second.generation.cached_tokens == second.cache_read
    assert resolve_cache(plan, _at(up, 299.0 + 299.0)).cache_read > 0  # a read refreshes it
    expired = resolve_cache(plan, _at(up, 598.0 + 301.0))
    assert expired.cache_read == 0 and expired.cache_write_5m == first.cache_write_5m
    up.reset()  # /sim/reset forgets the cache
    assert resolve_cache(plan, _at(up, 900.0)).cache_read == 0
    usage = orjson.loads(message(second, "msg_c"))["usage"]
    assert usage["cache_read_input_tokens"] == second.cache_read
    assert usage["input_tokens"] == plan.generation.prompt_tokens - second.cache_read


def test_one_hour_ttl_and_two_breakpoints() -> None:
    sys1 = {"type": "text", "text": BIG, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    up = Upstream("t", PROFILE)
    resolve_cache(_plan(system=[sys1]), _at(up, 0.0))
    longer = _plan(
        system=[sys1],
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": BIG, "cache_control": {"type": "ephemeral"}}],
            }
        ],
    )
    out = resolve_cache(longer, _at(up, 1000.0))  # past 5 min, within the hour
    assert out.cache_read >= CACHE_MIN_TOKENS and out.cache_write_1h == 0
    assert out.cache_write_5m > 0  # the part after the first breakpoint is new


def test_short_prefixes_are_not_cached() -> None:
    plan = _plan(system=[{"type": "text", "text": "short", "cache_control": {"type": "ephemeral"}}])
    up = Upstream("t", PROFILE)
    for _ in range(2):
        out = resolve_cache(plan, _at(up, 0.0))
        assert (out.cache_read, out.cache_write_5m) == (0, 0)


@pytest.mark.parametrize(
    "status, kind",
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_bodies_validate(status: int, kind: str) -> None:
    err = ErrorResponse.model_validate_json(error_body(status, "boom", "req_1"))
    assert err.error.type == kind and err.error.message == "boom" and err.request_id == "req_1"


def test_mid_stream_error_event_validates() -> None:
    raw = MessagesFrames(_plan(), "msg_e").error_event(529, "Overloaded")
    (ev,) = SSEDecoder().feed(raw)
    assert ev.event == "error"
    assert ErrorResponse.model_validate_json(ev.data).error.type == "overloaded_error"

"""The Anthropic stream translator on event streams built from the anthropic SDK's own event
types; every chunk it writes must parse as openai's `ChatCompletionChunk`."""

from __future__ import annotations

from typing import Any

import orjson
from anthropic.types import (
    InputJSONDelta,
    Message,
    MessageDeltaUsage,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    TextBlock,
    TextDelta,
    ToolUseBlock,
    Usage,
)
from anthropic.types.raw_message_delta_event import Delta
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel

from gateway.core import ClientRequest
from gateway.providers.anthropic import AnthropicAdapter
from gateway.providers.base import StreamTranslator
from tests.unit.streams import to_openai
from tests.unit.test_anthropic_adapter import TARGET


def sse(ev: BaseModel | dict[str, Any]) -> bytes:
    """One event as Anthropic frames it: its type on the `event:` line, its JSON as data."""
    data = ev.model_dump_json().encode() if isinstance(ev, BaseModel) else orjson.dumps(ev)
    kind: str = orjson.loads(data)["type"]
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def start(input_tokens: int = 10, read: int = 0, write: int = 0) -> bytes:
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=1,
        cache_read_input_tokens=read,
        cache_creation_input_tokens=write,
    )
    msg = Message(
        id="msg_01",
        type="message",
        role="assistant",
        content=[],
        model="claude-3-5-haiku-20241022",
        stop_reason=None,
        stop_sequence=None,
        usage=usage,
    )
    return sse(RawMessageStartEvent(type="message_start", message=msg))


def text_block(index: int, *pieces: str) -> list[bytes]:
    return [
        sse(
            RawContentBlockStartEvent(
                type="content_block_start",
                index=index,
                content_block=TextBlock(type="text", text=""),
            )
        ),
        sse({"type": "ping"}),
        *(
            sse(
                RawContentBlockDeltaEvent(
                    type="content_block_delta",
                    index=index,
                    delta=TextDelta(type="text_delta", text=p),
                )
            )
            for p in pieces
        ),
        sse(RawContentBlockStopEvent(type="content_block_stop", index=index)),
    ]


def tool_block(index: int, tool_id: str, name: str, *pieces: str) -> list[bytes]:
    block = ToolUseBlock(type="tool_use", id=tool_id, name=name, input={})
    return [
        sse(
            RawContentBlockStartEvent(type="content_block_start", index=index, content_block=block)
        ),
        *(
            sse(
                RawContentBlockDeltaEvent(
                    type="content_block_delta",
                    index=index,
                    delta=InputJSONDelta(type="input_json_delta", partial_json=p),
                )
            )
            for p in ("", *pieces)
        ),
        sse(RawContentBlockStopEvent(type="content_block_stop", index=index)),
    ]


def end(stop: str, output_tokens: int) -> list[bytes]:
    return [
        sse(
            RawMessageDeltaEvent(
                type="message_delta",
                delta=Delta(stop_reason=stop, stop_sequence=None),
                usage=MessageDeltaUsage(output_tokens=output_tokens),
            )
        ),
        sse(RawMessageStopEvent(type="message_stop")),
    ]


def run(
    events: list[bytes], include_usage: bool = False, split: bool = False
) -> tuple[list[bytes], StreamTranslator]:
    req = ClientRequest(
        "chat",
        {"model": "claude", "messages": []},
        "claude",
        stream=True,
        include_usage=include_usage,
    )
    tr = ADAPTER.stream_translator(req, TARGET)
    raw = b"".join(events)
    # events straddle network reads: feed byte by byte when asked
    pieces = [raw[i : i + 1] for i in range(len(raw))] if split else [raw]
    return to_openai(tr, pieces, include_usage), tr


def chunks(out: list[bytes]) -> list[ChatCompletionChunk]:
    assert out[-1] == b"data: [DONE]\n\n"
    return [ChatCompletionChunk.model_validate_json(b[6:]) for b in out[:-1]]


ADAPTER = AnthropicAdapter()
TEXT = [start(12, read=1000, write=24), *text_block(0, "Hello", ", ", "world"), *end("end_turn", 5)]


def test_text_stream_role_deltas_finish_and_state() -> None:
    out, tr = run(TEXT)
    cs = chunks(out)
    assert cs[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in cs) == "Hello, world"
    finishes = [c.choices[0].finish_reason for c in cs if c.choices[0].finish_reason]
    assert finishes == ["stop"] and cs[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None and c.id == "msg_01" for c in cs)
    assert "usage" not in orjson.loads(out[0][6:])  # not asked: the field is absent
    st = tr.state
    assert st.done and st.error is None and st.finish_reason == "stop"
    assert st.upstream_request_id == "msg_01" and st.chunks == 3  # the content deltas
    assert st.usage is not None
    assert (
        st.usage.prompt_tokens,
        st.usage.cached_prompt_tokens,
        st.usage.cache_write_tokens,
        st.usage.completion_tokens,
    ) == (1036, 1000, 24, 5)


def test_usage_chunk_only_when_asked() -> None:
    out, _ = run(TEXT, include_usage=True)
    cs = chunks(out)
    assert cs[-1].choices == [] and cs[-1].usage is not None
    assert cs[-1].usage.prompt_tokens == 1036 and cs[-1].usage.completion_tokens == 5
    assert cs[-1].usage.prompt_tokens_details is not None
    assert cs[-1].usage.prompt_tokens_details.cached_tokens == 1000
    assert all(c.usage is None for c in cs[:-1]) and sum(c.usage is not None for c in cs) == 1


def test_events_split_across_reads_give_the_same_chunks() -> None:
    whole, _ = run(TEXT)
    split, _ = run(TEXT, split=True)
    strip = [orjson.loads(b[6:]) if b.startswith(b"data: {") else b for b in whole]
    strip2 = [orjson.loads(b[6:]) if b.startswith(b"data: {") else b for b in split]
    for a, b in zip(strip, strip2, strict=True):
        if isinstance(a, dict) and isinstance(b, dict):
            a.pop("created"), b.pop("created")
        assert a == b


def test_tool_calls_keep_stable_indexes_and_exact_arguments() -> None:
    events = [
        start(),
        *text_block(0, "Let me check."),
        *tool_block(1, "toolu_A", "get_weather", '{"ci', 'ty": "Pa', 'ris"}'),
        *tool_block(2, "toolu_B", "get_time", '{"tz":', ' "CET"}'),
        *end("tool_use", 30),
    ]
    cs = chunks(run(events)[0])
    calls: dict[int, dict[str, str]] = {}
    for c in cs:
        for tc in c.choices[0].delta.tool_calls or ():
            if tc.id is not None:  # id and name come first, before any argument fragment
                assert tc.index not in calls and tc.function and tc.function.name
                calls[tc.index] = {"id": tc.id, "name": tc.function.name, "args": ""}
                assert tc.type == "function"
            assert tc.function is not None
            calls[tc.index]["args"] += tc.function.arguments or ""
    assert calls == {
        0: {"id": "toolu_A", "name": "get_weather", "args": '{"city": "Paris"}'},
        1: {"id": "toolu_B", "name": "get_time", "args": '{"tz": "CET"}'},
    }
    assert "".join(c.choices[0].delta.content or "" for c in cs) == "Let me check."
    assert [c.choices[0].finish_reason for c in cs if c.choices[0].finish_reason] == ["tool_calls"]


def test_max_tokens_is_length() -> None:
    out, tr = run([start(), *text_block(0, "cut"), *end("max_tokens", 1)])
    assert chunks(out)[-1].choices[0].finish_reason == "length"
    assert tr.state.finish_reason == "length"


def test_error_event_becomes_an_openai_error_then_done() -> None:
    events = [
        start(),
        *text_block(0, "partial"),
        sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        *end("end_turn", 3),
    ]  # nothing after the error is forwarded
    out, tr = run(events)
    assert out[-1] == b"data: [DONE]\n\n"
    err = orjson.loads(out[-2][6:])["error"]
    assert err == {
        "message": "anthropic: Overloaded",
        "type": "overloaded_error",
        "param": None,
        "code": None,
    }
    assert tr.state.error == {"type": err["type"], "message": err["message"]}
    assert tr.state.finish_reason is None
    assert sum(1 for b in out if b == b"data: [DONE]\n\n") == 1


def test_stream_cut_before_message_stop_is_an_error() -> None:
    out, tr = run([start(20), *text_block(0, "half")])
    assert tr.state.error is not None and tr.state.error["type"] == "upstream_protocol_error"
    assert out[-1] == b"data: [DONE]\n\n" and b'"error"' in out[-2]
    assert tr.state.usage is not None and tr.state.usage.prompt_tokens == 20  # known so far


def test_unparseable_event_is_a_protocol_error() -> None:
    out, tr = run([start(), b"event: content_block_delta\ndata: {not json\n\n"])
    assert tr.state.error is not None and tr.state.error["type"] == "upstream_protocol_error"
    assert out[-1] == b"data: [DONE]\n\n"

"""Property tests: each provider's stream translator feeding each client API's renderer, on
arbitrary valid event sequences cut into arbitrary reads. Nothing may raise; every event a
client gets parses as its SDK's type (openai `ChatCompletionChunk`, anthropic
`RawMessageStreamEvent`); the text a client reads is the text the upstream sent.

    OpenAI chunks  ─┐                 ┌→ ChatStreamRenderer      (OpenAI clients)
    Anthropic events├→ translator → chunks
    Gemini events  ─┘                 └→ MessagesStreamRenderer  (Anthropic clients)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk
from pydantic import TypeAdapter

from gateway.codecs.anthropic_stream import MessagesStreamRenderer
from gateway.codecs.openai import ChatStreamRenderer
from gateway.config import ModelConfig, ProviderConfig
from gateway.core import Price, Target
from gateway.providers.anthropic_stream import AnthropicStream
from gateway.providers.base import StreamTranslator
from gateway.providers.gemini_stream import GeminiStream
from gateway.providers.openai import OpenAIChunks
from gateway.sse import SSEDecoder
from tests.unit.wire_strategies import JSON_OBJECT, NAME, TEXT

EVENTS: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    derandomize=True,  # the same examples every run: CI is not a lottery
)
ANTHROPIC_TARGET = Target(
    "claude",
    "claude-x",
    ProviderConfig(name="anthropic", kind="anthropic", api_key="k"),
    Price.per_mtok(1, 2),
    ModelConfig(name="claude", provider="anthropic"),
)


def sse(data: Any, name: str | None = None) -> bytes:
    head = b"event: " + name.encode() + b"\n" if name else b""
    return head + b"data: " + (data if isinstance(data, bytes) else orjson.dumps(data)) + b"\n\n"


def fragments(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True) if a < b]


# --- what the upstreams send ----------------------------------------------------------------

TEXTS = st.lists(TEXT, max_size=5)
Call = tuple[str, dict[str, Any]]
Upstream = tuple[bytes, str, list[Call]]  # the upstream's bytes, its text, its tool calls
CALLS = st.lists(st.tuples(NAME, JSON_OBJECT, st.lists(st.integers(0, 50), max_size=3)), max_size=2)


@st.composite
def openai_stream(draw: st.DrawFn) -> Upstream:
    texts, calls = draw(TEXTS), draw(CALLS)
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def chunk(delta: dict[str, Any] | None, finish: str | None = None, **kw: Any) -> bytes:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        return sse({**head, "choices": choices, **kw})

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": t}) for t in texts]
    for i, (name, args, cuts) in enumerate(calls):
        first = {"index": i, "id": f"call_{i}", "type": "function"}
        out.append(chunk({"tool_calls": [{**first, "function": {"name": name, "arguments": ""}}]}))
        for piece in fragments(orjson.dumps(args).decode(), cuts):
            out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    out.append(chunk({}, draw(st.sampled_from(["stop", "length", "tool_calls"]))))
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    out += [chunk(None, usage=usage), b"data: [DONE]\n\n"]
    return b"".join(out), "".join(texts), [(name, args) for name, args, _ in calls]


@st.composite
def anthropic_stream(draw: st.DrawFn) -> Upstream:
    blocks = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("text"), TEXTS),
                st.tuples(st.just("tool_use"), st.tuples(NAME, JSON_OBJECT)),
                st.tuples(st.just("thinking"), TEXTS),
            ),
            max_size=4,
        )
    )
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    out = [sse({"type": "message_start", "message": message}, "message_start")]
    text, called = "", []
    for i, (kind, value) in enumerate(blocks):
        if draw(st.booleans()):
            out.append(sse({"type": "ping"}, "ping"))
        if kind == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": t} for t in value]
            text += "".join(value)
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": ""}
            deltas = [{"type": "thinking_delta", "thinking": t} for t in value]
            deltas.append({"type": "signature_delta", "signature": "sig"})
        else:
            name, args = value
            called.append((name, args))
            start = {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": {}}
            raw = orjson.dumps(args).decode()
            cuts = draw(st.lists(st.integers(0, 50), max_size=3))
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in fragments(raw, cuts)]
        out.append(
            sse(
                {"type": "content_block_start", "index": i, "content_block": start},
                "content_block_start",
            )
        )
        for d in deltas:
            out.append(
                sse({"type": "content_block_delta", "index": i, "delta": d}, "content_block_delta")
            )
        out.append(sse({"type": "content_block_stop", "index": i}, "content_block_stop"))
    stop = draw(st.sampled_from(["end_turn", "max_tokens", "tool_use", "stop_sequence"]))
    delta = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
    out.append(sse({**delta, "usage": {"output_tokens": 9}}, "message_delta"))
    out.append(sse({"type": "message_stop"}, "message_stop"))
    return b"".join(out), text, called


@st.composite
def gemini_stream(draw: st.DrawFn) -> Upstream:
    parts = draw(
        st.lists(
            st.one_of(
                TEXT.map(lambda t: {"text": t}),
                TEXT.map(lambda t: {"text": t, "thought": True}),
                st.tuples(NAME, JSON_OBJECT).map(
                    lambda c: {"functionCall": {"name": c[0], "args": c[1]}}
                ),
            ),
            min_size=1,  # a stream with no event at all is a truncated one, not a valid one
            max_size=6,
        )
    )
    events: list[dict[str, Any]] = []
    for i, part in enumerate(parts):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
        if i == len(parts) - 1:
            candidate["finishReason"] = draw(st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY"]))
        events.append({"candidates": [candidate], "responseId": "r1", "modelVersion": "g"})
    usage = {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10}
    if events:
        events[-1]["usageMetadata"] = usage
    text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
    calls = [
        (p["functionCall"]["name"], p["functionCall"]["args"]) for p in parts if "functionCall" in p
    ]
    return b"".join(sse(e) for e in events), text, calls


def gemini() -> StreamTranslator:
    return GeminiStream(model="g", created=1, provider="gemini", api_key="k")


UPSTREAMS: dict[
    str, tuple[Callable[[], st.SearchStrategy[Upstream]], Callable[[], StreamTranslator]]
] = {
    "openai": (openai_stream, OpenAIChunks),
    "anthropic": (anthropic_stream, lambda: AnthropicStream(ANTHROPIC_TARGET)),
    "gemini": (gemini_stream, gemini),
}

# --- through a translator to a renderer -----------------------------------------------------


def relay(
    tr: StreamTranslator, raw: bytes, cuts: list[int], render: Callable[[list[Any]], bytes]
) -> bytes:
    """What the pipeline does with the upstream's reads, cut at `cuts`, and the edge with
    the chunks: one render per read, then the decoder's tail and the translator's finish."""
    decoder, out = SSEDecoder(), b""
    points = sorted({c % (len(raw) + 1) for c in cuts})
    for a, b in zip([0, *points], [*points, len(raw)], strict=True):
        out += render([c for ev in decoder.feed(raw[a:b]) for c in tr.feed(ev)])
    return out + render([c for ev in decoder.flush() for c in tr.feed(ev)] + tr.finish())


def openai_answer(out: bytes) -> tuple[str, list[Call]]:
    """The text and tool calls an OpenAI client reads (checking every event's type)."""
    text, done = "", False
    calls: dict[int, list[str]] = {}
    for ev in SSEDecoder().feed(out):
        assert not done, "an event after [DONE]"
        if ev.data == b"[DONE]":
            done = True
            continue
        data = orjson.loads(ev.data)
        assert "error" not in data, data
        chunk = ChatCompletionChunk.model_validate(data)
        for c in chunk.choices:
            text += c.delta.content or ""
            for call in c.delta.tool_calls or []:
                fn = call.function
                if call.id is not None:
                    calls[call.index] = [fn.name if fn and fn.name else "", ""]
                calls[call.index][1] += fn.arguments or "" if fn else ""
    assert done
    return text, [(name, orjson.loads(args)) for name, args in calls.values()]


def anthropic_answer(out: bytes) -> tuple[str, list[Call]]:
    """The text and tool calls an Anthropic client reads (the SDK's own accumulation)."""
    snapshot, bufs = None, {}  # type: ignore[var-annotated]
    names = []
    for ev in SSEDecoder().feed(out):
        data = orjson.loads(ev.data)
        assert ev.event == data["type"] != "error", data
        names.append(ev.event)
        snapshot = accumulate_event(
            event=EVENTS.validate_python(data), current_snapshot=snapshot, json_bufs=bufs
        )
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert snapshot is not None
    text = "".join(b.text for b in snapshot.content if b.type == "text")
    return text, [(b.name, b.input) for b in snapshot.content if b.type == "tool_use"]


@SETTINGS
@given(
    upstream=st.sampled_from(sorted(UPSTREAMS)),
    data=st.data(),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
    include_usage=st.booleans(),
)
def test_any_upstream_stream_renders_for_openai_clients(
    upstream: str, data: st.DataObject, cuts: list[int], include_usage: bool
) -> None:
    strategy, translator = UPSTREAMS[upstream]
    raw, text, calls = data.draw(strategy())
    out = relay(translator(), raw, cuts, ChatStreamRenderer(include_usage).render)
    assert openai_answer(out) == (text, calls)


@SETTINGS
@given(
    upstream=st.sampled_from(sorted(UPSTREAMS)),
    data=st.data(),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
)
def test_any_upstream_stream_renders_for_anthropic_clients(
    upstream: str, data: st.DataObject, cuts: list[int]
) -> None:
    strategy, translator = UPSTREAMS[upstream]
    raw, text, calls = data.draw(strategy())
    out = relay(translator(), raw, cuts, MessagesStreamRenderer("m").render)
    assert anthropic_answer(out) == (text, calls)

"""Anthropic Messages SSE → typed chunks, one upstream event at a time.

Anthropic's event order (https://docs.anthropic.com/en/docs/build-with-claude/streaming):

    message_start → (content_block_start → content_block_delta* → content_block_stop)*
    → message_delta → message_stop, with `ping` anywhere and `error` possibly mid-stream.

`AnthropicStream` translates for clients of another wire format: `Start` (message_start),
text and thinking deltas, tool calls — the id and name first (content_block_start of a
tool_use block), then argument fragments (input_json_delta) — numbered from 0 by tool_use
block, `Finish` (message_delta's stop_reason), then `UsageReport` and `End` (message_stop).
`AnthropicPassthrough` serves Anthropic's own clients: every event is forwarded as received
and only the ones carrying the id, usage or an error are read. Usage always lands in
`state.usage`; an `error` event becomes a `StreamError` (its message scrubbed of our key).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from gateway.core import (
    Chunk,
    End,
    Finish,
    Raw,
    Reasoning,
    Start,
    StreamError,
    StreamState,
    Target,
    Text,
    ToolCall,
    UsageReport,
)
from gateway.providers.anthropic_common import FINISH_REASONS, scrub, usage_from_anthropic
from gateway.sse import Event


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _index(obj: dict[str, Any]) -> int:
    index = obj.get("index")
    return index if isinstance(index, int) else -1


class _AnthropicEvents:
    """What both readings share: usage accumulation and the error event."""

    def __init__(self, target: Target) -> None:
        self.state = StreamState()
        self._target = target
        self._usage: dict[str, Any] = {}  # Anthropic's usage fields, cumulative

    def _merge_usage(self, usage: Any) -> None:
        """message_start carries the prompt side; message_delta cumulative totals override."""
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})
            self.state.usage = usage_from_anthropic(self._usage)

    def _fail(self, kind: str, message: str) -> list[Chunk]:
        """An error after the headers went out: one in-band error, then nothing more."""
        message = f"{self._target.provider.name}: {scrub(message, self._target)}"
        self.state.error = {"type": kind, "message": message}
        self.state.done = True
        return [StreamError(kind, message)]

    def _error(self, obj: dict[str, Any]) -> list[Chunk]:
        err = _dict(obj.get("error"))
        kind = err.get("type") if isinstance(err.get("type"), str) else "api_error"
        return self._fail(str(kind), str(err.get("message") or "upstream error mid-stream"))

    def finish(self) -> list[Chunk]:
        """The upstream closed the stream: without message_stop the answer is incomplete."""
        if self.state.done:
            return []
        return self._fail(
            "upstream_protocol_error", "the upstream stream ended before message_stop"
        )


class AnthropicStream(_AnthropicEvents):
    """Translates one Anthropic stream into typed chunks."""

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._tools: dict[int, int] = {}  # content block index → tool call number
        self._finished = False

    def feed(self, event: Event) -> list[Chunk]:
        if self.state.done or not event.data:
            return []
        try:
            obj = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return self._fail(
                "upstream_protocol_error", "the upstream sent a stream event that is not JSON"
            )
        if not isinstance(obj, dict):
            return []
        kind = event.event or obj.get("type")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        return handler(self, obj) if handler is not None else []  # ping and future events

    def _message_start(self, obj: dict[str, Any]) -> list[Chunk]:
        msg = _dict(obj.get("message"))
        rid = msg.get("id") if isinstance(msg.get("id"), str) else ""
        self.state.upstream_request_id = rid or None
        model = msg.get("model") if isinstance(msg.get("model"), str) else None
        self._merge_usage(msg.get("usage"))
        return [Start(str(rid), model or self._target.upstream_model, int(time.time()))]

    def _block_start(self, obj: dict[str, Any]) -> list[Chunk]:
        block = _dict(obj.get("content_block"))
        if block.get("type") == "tool_use":
            call = self._tools[_index(obj)] = len(self._tools)
            self.state.chunks += 1
            return [ToolCall(call, "", str(block.get("id") or ""), str(block.get("name") or ""))]
        if block.get("type") == "text" and block.get("text"):
            self.state.chunks += 1
            return [Text(block["text"])]
        return []  # server-tool blocks have no client-side equivalent

    def _block_delta(self, obj: dict[str, Any]) -> list[Chunk]:
        delta = _dict(obj.get("delta"))
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            self.state.chunks += 1
            return [Text(delta["text"])]
        if kind == "thinking_delta" and delta.get("thinking"):
            self.state.chunks += 1
            return [Reasoning(delta["thinking"])]
        if kind == "input_json_delta" and delta.get("partial_json"):
            call = self._tools.get(_index(obj))
            if call is None:
                return []
            self.state.chunks += 1
            return [ToolCall(call, delta["partial_json"])]
        return []

    def _message_delta(self, obj: dict[str, Any]) -> list[Chunk]:
        self._merge_usage(obj.get("usage"))
        reason = _dict(obj.get("delta")).get("stop_reason")
        if reason is None or self._finished:
            return []
        self._finished = True
        finish = FINISH_REASONS.get(str(reason), "stop")
        self.state.finish_reason = finish
        return [Finish(finish)]

    def _message_stop(self, obj: dict[str, Any]) -> list[Chunk]:
        self.state.done = True
        out: list[Chunk] = [] if self._finished else [Finish("stop")]  # no message_delta
        if self.state.usage is not None:
            out.append(UsageReport(self.state.usage))
        out.append(End())
        return out


_HANDLERS: dict[str, Callable[[AnthropicStream, dict[str, Any]], list[Chunk]]] = {
    "message_start": AnthropicStream._message_start,
    "content_block_start": AnthropicStream._block_start,
    "content_block_delta": AnthropicStream._block_delta,
    "message_delta": AnthropicStream._message_delta,
    "message_stop": AnthropicStream._message_stop,
    "error": AnthropicStream._error,
    # content_block_stop and ping carry nothing another client needs
}

_READ = frozenset({"message_start", "message_delta", "message_stop", "error"})
_CONTENT_DELTAS = (b'"text_delta"', b'"input_json_delta"', b'"thinking_delta"')


class AnthropicPassthrough(_AnthropicEvents):
    """Anthropic → Anthropic: events forwarded as received; only those carrying the id,
    usage or an error are parsed (content deltas are counted by their event name)."""

    def feed(self, event: Event) -> list[Chunk]:
        if self.state.done:
            return []
        name = event.event
        if name == "content_block_delta":
            self.state.chunks += 1
            return [Raw(event.encode(), content=any(d in event.data for d in _CONTENT_DELTAS))]
        if name == "content_block_start" and b'"tool_use"' in event.data:
            return [Raw(event.encode(), content=True)]
        if name not in _READ:
            return [Raw(event.encode())]
        try:
            obj = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return [Raw(event.encode())]
        obj = _dict(obj)
        if name == "error":
            return self._error(obj)
        msg = _dict(obj.get("message")) if name == "message_start" else obj
        if name == "message_start" and isinstance(msg.get("id"), str):
            self.state.upstream_request_id = msg["id"]
        self._merge_usage(msg.get("usage"))
        if name == "message_stop":
            self.state.done = True
            return [Raw(event.encode()), End()]
        return [Raw(event.encode())]

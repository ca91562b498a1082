"""Anthropic Messages SSE → OpenAI `chat.completion.chunk` SSE, one upstream event at a time.

A small per-request state machine (pure: bytes in, bytes out). Anthropic's event order
(https://docs.anthropic.com/en/docs/build-with-claude/streaming):

    message_start → (content_block_start → content_block_delta* → content_block_stop)*
    → message_delta → message_stop, with `ping` anywhere and `error` possibly mid-stream.

What the client gets, in OpenAI's order (openai-python `ChatCompletionChunk`): a role chunk
(on message_start), content deltas (text_delta), tool-call deltas — the id and name first
(content_block_start of a tool_use block), then argument fragments (input_json_delta) — with
a stable `index` counting tool_use blocks from 0, a final chunk with `finish_reason`
(message_delta), the usage chunk with `choices: []` only when the client asked for it
(message_stop), then `data: [DONE]`. Usage always lands in `state.usage`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from gateway.providers.anthropic import (
    FINISH_REASONS,
    scrub,
    usage_from_anthropic,
)
from gateway.providers.base import StreamState, Target, usage_to_openai
from gateway.sse import Event

DONE_EVENT = b"data: [DONE]\n\n"


class AnthropicStream:
    """Translates one Anthropic stream; `state` is read by the pipeline when it ends."""

    def __init__(self, include_usage: bool, target: Target) -> None:
        self.state = StreamState()
        self._include_usage = include_usage
        self._target = target
        self._id = ""
        self._model = target.upstream_model
        self._created = int(time.time())
        self._usage: dict[str, Any] = {}  # Anthropic's usage fields, cumulative
        self._tools: dict[int, int] = {}  # content block index → OpenAI tool_calls index
        self._finished = False

    # --- the dispatch ------------------------------------------------------------------------

    def feed(self, event: Event) -> list[bytes]:
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

    def finish(self) -> list[bytes]:
        """The upstream closed the stream: without message_stop the answer is incomplete."""
        if self.state.done:
            return []
        return self._fail(
            "upstream_protocol_error", "the upstream stream ended before message_stop"
        )

    # --- event handlers ----------------------------------------------------------------------

    def _message_start(self, obj: dict[str, Any]) -> list[bytes]:
        msg = _dict(obj.get("message"))
        if isinstance(msg.get("id"), str):
            self._id = msg["id"]
            self.state.upstream_request_id = msg["id"]
        if isinstance(msg.get("model"), str):
            self._model = msg["model"]
        self._merge_usage(msg.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, obj: dict[str, Any]) -> list[bytes]:
        block = obj.get("content_block")
        if not isinstance(block, dict):
            return []
        if block.get("type") == "tool_use":
            index = self._tools[_index(obj)] = len(self._tools)
            call = {
                "index": index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        return []  # thinking and server-tool blocks have no OpenAI chat equivalent

    def _block_delta(self, obj: dict[str, Any]) -> list[bytes]:
        delta = obj.get("delta")
        if not isinstance(delta, dict):
            return []
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            index = self._tools.get(_index(obj))
            if index is None:
                return []
            call = {"index": index, "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _message_delta(self, obj: dict[str, Any]) -> list[bytes]:
        self._merge_usage(obj.get("usage"))
        reason = _dict(obj.get("delta")).get("stop_reason")
        if reason is None or self._finished:
            return []
        self._finished = True
        finish = FINISH_REASONS.get(str(reason), "stop")
        self.state.finish_reason = finish
        return [self._chunk({}, finish)]

    def _message_stop(self, obj: dict[str, Any]) -> list[bytes]:
        self.state.done = True
        out = [] if self._finished else [self._chunk({}, "stop")]  # no message_delta: still end
        if self._include_usage and self.state.usage is not None:
            body = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": usage_to_openai(self.state.usage),
            }
            out.append(b"data: " + orjson.dumps(body) + b"\n\n")
        out.append(DONE_EVENT)
        return out

    def _error(self, obj: dict[str, Any]) -> list[bytes]:
        err = _dict(obj.get("error"))
        kind = err.get("type") if isinstance(err.get("type"), str) else "api_error"
        return self._fail(str(kind), str(err.get("message") or "upstream error mid-stream"))

    # --- helpers -----------------------------------------------------------------------------

    def _merge_usage(self, usage: Any) -> None:
        """message_start carries the prompt side; message_delta cumulative totals override."""
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})
            self.state.usage = usage_from_anthropic(self._usage)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        if delta:
            self.state.chunks += 1
        body: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            body["usage"] = None  # OpenAI's shape when the client asked for the usage chunk
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def _fail(self, kind: str, message: str) -> list[bytes]:
        """An error after the headers went out: one OpenAI error event, then [DONE]."""
        provider = self._target.provider.name
        error = {
            "message": f"{provider}: {scrub(message, self._target)}",
            "type": kind,
            "param": None,
            "code": None,
        }
        self.state.error = error
        self.state.done = True
        return [b"data: " + orjson.dumps({"error": error}) + b"\n\n", DONE_EVENT]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _index(obj: dict[str, Any]) -> int:
    index = obj.get("index")
    return index if isinstance(index, int) else -1


_HANDLERS: dict[str, Callable[[AnthropicStream, dict[str, Any]], list[bytes]]] = {
    "message_start": AnthropicStream._message_start,
    "content_block_start": AnthropicStream._block_start,
    "content_block_delta": AnthropicStream._block_delta,
    "message_delta": AnthropicStream._message_delta,
    "message_stop": AnthropicStream._message_stop,
    "error": AnthropicStream._error,
    # content_block_stop and ping carry nothing an OpenAI client needs
}

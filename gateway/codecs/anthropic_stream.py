"""Typed chunks → Anthropic Messages stream events, for `/v1/messages` clients.

Native events (an Anthropic upstream) pass through byte for byte. Translated streams get
Anthropic's order (https://docs.anthropic.com/en/docs/build-with-claude/streaming):
`message_start`, then content blocks numbered from 0 in order — a text block, or a tool_use
block opened with its id and name and fed `input_json_delta` fragments — each closed by
`content_block_stop`, then `message_delta` (stop_reason and the final usage) and
`message_stop`. Only choice 0 is rendered: Messages answers have one. An error midway is an
`event: error`.
"""

from __future__ import annotations

from typing import Any

from gateway.codecs.anthropic_bridge import STOP_REASONS, anthropic_usage
from gateway.core import (
    Chunk,
    End,
    Finish,
    Raw,
    Start,
    StreamError,
    Text,
    ToolCall,
    Usage,
    UsageReport,
)
from gateway.errors import GatewayError
from gateway.protocol.anthropic import error_event, error_type, error_type_for, sse_event


class MessagesStreamRenderer:
    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._done = False
        self._usage: Usage | None = None
        self._open: int | None = None  # index of the open content block
        self._open_kind = ""
        self._blocks = 0
        self._tools: dict[int, int] = {}  # tool call number → content block index
        self._stop: str | None = None

    def render(self, chunks: list[Chunk]) -> bytes:
        out: list[bytes] = []
        for c in chunks:
            if self._done:
                break
            if isinstance(c, Raw):
                out.append(c.data)
                if c.data.startswith(b"event: message_stop"):
                    self._done = True
            elif isinstance(c, Start):
                out += self._start(c.id, c.model)
            elif getattr(c, "index", 0) != 0:
                continue  # a second choice (n > 1) has no place in a Message
            elif isinstance(c, Text):
                out += self._text(c.text)
            elif isinstance(c, ToolCall):
                out += self._tool(c)
            elif isinstance(c, Finish):
                self._stop = STOP_REASONS.get(c.reason, "end_turn")
                out += self._close()
            elif isinstance(c, UsageReport):
                self._usage = c.usage
            elif isinstance(c, End):
                out += self._end()
            elif isinstance(c, StreamError):
                self._done = True
                out.append(error_event(error_type_for(c.type, c.status), c.message))
        return b"".join(out)

    def fail(self, error: GatewayError) -> bytes:
        self._done = True
        return error_event(error_type(error), error.message)

    def _start(self, id_: str, model: str) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        message: dict[str, Any] = {
            "id": id_,
            "type": "message",
            "role": "assistant",
            "model": model or self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(None),
        }
        return [sse_event("message_start", {"type": "message_start", "message": message})]

    def _text(self, text: str) -> list[bytes]:
        out = self._start("", "")
        if self._open_kind != "text":
            out += self._open_block({"type": "text", "text": ""}, "text")
        delta = {"type": "text_delta", "text": text}
        return out + [self._delta(self._blocks - 1, delta)]

    def _tool(self, c: ToolCall) -> list[bytes]:
        out = self._start("", "")
        if c.call not in self._tools:
            block = {
                "type": "tool_use",
                "id": c.id or f"toolu_{c.call}",
                "name": c.name or "",
                "input": {},
            }
            out += self._open_block(block, "tool_use")
            self._tools[c.call] = self._blocks - 1
        if c.arguments:  # OpenAI streams one call's arguments after another
            delta = {"type": "input_json_delta", "partial_json": c.arguments}
            out.append(self._delta(self._tools[c.call], delta))
        return out

    def _open_block(self, block: dict[str, Any], kind: str) -> list[bytes]:
        out = self._close()
        self._open, self._open_kind = self._blocks, kind
        self._blocks += 1
        start = {"type": "content_block_start", "index": self._open, "content_block": block}
        return out + [sse_event("content_block_start", start)]

    @staticmethod
    def _delta(index: int, delta: dict[str, Any]) -> bytes:
        body = {"type": "content_block_delta", "index": index, "delta": delta}
        return sse_event("content_block_delta", body)

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        index, self._open, self._open_kind = self._open, None, ""
        return [sse_event("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _end(self) -> list[bytes]:
        """The answer is complete only if a finish reason came before the end."""
        self._done = True
        if self._stop is None:
            message = "the upstream stream ended before the answer was complete"
            return [error_event("api_error", message)]
        out = self._start("", "") + self._close()
        delta = {"stop_reason": self._stop, "stop_sequence": None}
        usage = anthropic_usage(self._usage)
        out.append(
            sse_event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        )
        out.append(sse_event("message_stop", {"type": "message_stop"}))
        return out

"""The OpenAI codec: `/v1/chat/completions`, `/v1/completions` and `/v1/embeddings`.

Requests are checked by `protocol/openai.py` and forwarded as the client's own dict; answers
an OpenAI-family upstream gave are sent as its bytes, translated ones encoded once. Streams:
native events pass through (the usage-only chunk dropped unless the client asked for it, as
OpenAI does), typed chunks become `chat.completion.chunk` events in OpenAI's documented order
(openai-python `ChatCompletionChunk`): a role chunk per choice first, content and tool-call
deltas (the id and name first, then argument fragments, `index` stable per choice), one chunk
with the finish_reason, the usage chunk (`choices: []`) when asked for, then `data: [DONE]`.
Errors use OpenAI's envelope; in a stream, one `data: {"error": …}` event then `[DONE]`.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from gateway.codecs.base import Conversation, Headers, StreamRenderer
from gateway.core import (
    Chunk,
    ClientRequest,
    End,
    Endpoint,
    Finish,
    Raw,
    Result,
    Start,
    StreamError,
    Text,
    ToolCall,
    UsageReport,
)
from gateway.errors import GatewayError
from gateway.protocol.limits import DEFAULT_LIMITS, BodyLimits
from gateway.protocol.openai import parse_request, usage_to_openai

DONE_EVENT = b"data: [DONE]\n\n"


class OpenAICodec:
    conversation: Conversation | None = None

    def __init__(self, endpoint: Endpoint, limits: BodyLimits = DEFAULT_LIMITS) -> None:
        self.endpoint = endpoint
        self.limits = limits

    def parse(self, raw: bytes, headers: Headers) -> ClientRequest:
        return parse_request(self.endpoint, raw, self.limits)

    def render(self, result: Result, request: ClientRequest) -> bytes:
        return result.body if result.body is not None else orjson.dumps(result.data)

    def headers(self, request: ClientRequest, native: bool) -> Headers:
        return []

    def stream_renderer(self, request: ClientRequest) -> StreamRenderer:
        return ChatStreamRenderer(request.include_usage)

    def error_body(self, error: GatewayError) -> bytes:
        return error.body()


def error_event(kind: str, message: str, code: str | None = None) -> bytes:
    error = {"message": message, "type": kind, "param": None, "code": code}
    return b"data: " + orjson.dumps({"error": error}) + b"\n\n" + DONE_EVENT


class ChatStreamRenderer:
    __slots__ = ("_created", "_id", "_include_usage", "_model", "_opened")

    def __init__(self, include_usage: bool) -> None:
        self._include_usage = include_usage
        self._id = ""
        self._model = ""
        self._created = 0
        self._opened: set[int] = set()  # choices whose role chunk went out

    def render(self, chunks: list[Chunk]) -> bytes:
        out: list[bytes] = []
        for c in chunks:
            if isinstance(c, Raw):
                if self._include_usage or not c.usage_only:
                    out.append(c.data)
            elif isinstance(c, Text):
                self._open(c.index, out)
                out.append(self._delta(c.index, {"content": c.text}))
            elif isinstance(c, ToolCall):
                self._open(c.index, out)
                out.append(self._delta(c.index, {"tool_calls": [_tool_call(c)]}))
            elif isinstance(c, Finish):
                self._open(c.index, out)
                out.append(self._chunk([_choice(c.index, {}, c.reason)]))
            elif isinstance(c, Start):
                self._id = c.id or f"chatcmpl-{uuid.uuid4().hex}"
                self._model, self._created = c.model, c.created
                self._open(0, out)
            elif isinstance(c, UsageReport):
                if self._include_usage:
                    out.append(self._chunk([], usage_to_openai(c.usage)))
            elif isinstance(c, End):
                out.append(DONE_EVENT)
            elif isinstance(c, StreamError):
                out.append(error_event(c.type, c.message, c.code))
            # Reasoning: OpenAI's chat chunks have no field for it; it is counted, not shown
        return b"".join(out)

    def fail(self, error: GatewayError) -> bytes:
        return error.sse_event()

    def _open(self, index: int, out: list[bytes]) -> None:
        if index not in self._opened:
            self._opened.add(index)
            out.append(self._delta(index, {"role": "assistant", "content": ""}))

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return self._chunk([_choice(index, delta, None)])

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if self._include_usage:
            body["usage"] = usage  # None on every chunk but the last, as OpenAI sends it
        return b"data: " + orjson.dumps(body) + b"\n\n"


def _choice(index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}


def _tool_call(c: ToolCall) -> dict[str, Any]:
    if c.id is None and c.name is None:
        return {"index": c.call, "function": {"arguments": c.arguments}}
    call: dict[str, Any] = {
        "index": c.call,
        "id": c.id,
        "type": "function",
        "function": {"name": c.name, "arguments": c.arguments},
    }
    if c.extra:
        call["extra_content"] = c.extra
    return call

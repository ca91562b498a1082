"""Typed chunks → the Responses event stream, for `/v1/responses` clients (pure state machine).

Order (https://platform.openai.com/docs/api-reference/responses-streaming; openai-python
`types/responses/response_stream_event.py`, and the SDK's `responses.stream` accumulator that
checks it): `response.created`, `response.in_progress`, then each output item in turn —
`response.output_item.added`, its content (a message: `content_part.added`,
`output_text.delta`…, `output_text.done`, `content_part.done`; a function call:
`function_call_arguments.delta`…, `.done`; a reasoning summary: `reasoning_summary_part.added`,
`reasoning_summary_text.delta`…, `.done`, `reasoning_summary_part.done`),
`response.output_item.done` — then `response.completed` or `response.incomplete` with the whole
Response, or `response.failed` when the upstream failed midway. Every event carries its
`sequence_number`, from 0. Responses streams end without `[DONE]`.

A native upstream's events (`Raw`) are forwarded as they are; only its terminal event is
parsed, for the stored Response.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.codecs.responses_output import (
    finish,
    function_call_item,
    item_id,
    message_item,
    output_text,
    reasoning_item,
    skeleton,
)
from gateway.codecs.responses_request import ResponsesRequest, completed
from gateway.core import (
    Chunk,
    End,
    Finish,
    Raw,
    Reasoning,
    Start,
    StreamError,
    Text,
    ToolCall,
    Usage,
    UsageReport,
)
from gateway.errors import GatewayError

Item = dict[str, Any]


def error_code(status: int) -> str:
    """A failure's `error.code` in the Response (openai-python `ResponseError.code`)."""
    return "rate_limit_exceeded" if status == 429 else "server_error"


def sse_data(raw: bytes) -> bytes:
    """The data of one encoded SSE event (the `data:` line of a Responses event)."""
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            return line[5:].strip()
    return b""


class ResponsesStreamRenderer:
    def __init__(self, req: ResponsesRequest) -> None:
        self._req = req
        self._seq = 0
        self._response: dict[str, Any] | None = None
        self._items: list[Item] = []
        self._open: Item | None = None
        self._text: list[str] = []  # the open message's or reasoning item's text so far
        self._calls: dict[int, Item] = {}  # tool call number → its item
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._done = False
        self._native_first: bytes | None = None  # a native stream's response.created
        self._native_last: bytes | None = None

    # --- the seam ---------------------------------------------------------------------------

    def render(self, chunks: list[Chunk]) -> bytes:
        out: list[bytes] = []
        for c in chunks:
            if self._done:
                break
            if isinstance(c, Raw):
                self._seq += 1
                self._native_first = self._native_first or c.data
                self._native_last = c.data
                out.append(c.data)
            elif isinstance(c, Text):
                if c.index == 0:
                    self._text_delta(c.text, out)
            elif isinstance(c, ToolCall):
                if c.index == 0:
                    self._tool(c, out)
            elif isinstance(c, Reasoning):
                if c.index == 0:
                    self._reasoning_delta(c.text, out)
            elif isinstance(c, Finish):
                if c.index == 0:
                    self._finish = c.reason
                    self._close(out)
            elif isinstance(c, UsageReport):
                self._usage = c.usage
            elif isinstance(c, Start):
                self._start(c.model, out)
            elif isinstance(c, End):
                self._end(out)
            elif isinstance(c, StreamError):
                self._failed(c.message, c.status, out)
        return b"".join(out)

    def fail(self, error: GatewayError) -> bytes:
        out: list[bytes] = []
        self._failed(error.message, error.status_code, out)
        return b"".join(out)

    # --- events -----------------------------------------------------------------------------

    def _event(self, kind: str, payload: dict[str, Any]) -> bytes:
        body = {"type": kind, **payload, "sequence_number": self._seq}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"

    def _at(self, item: Item) -> dict[str, Any]:
        return {"item_id": item["id"], "output_index": self._items.index(item)}

    def _start(self, model: str, out: list[bytes]) -> None:
        if self._response is not None:
            return
        self._response = skeleton(self._req, model)
        out.append(self._event("response.created", {"response": self._response}))
        out.append(self._event("response.in_progress", {"response": self._response}))

    def _add(self, item: Item, announced: Item, out: list[bytes]) -> None:
        self._start("", out)
        self._close(out)
        self._items.append(item)
        self._open, self._text = item, []
        out.append(
            self._event(
                "response.output_item.added",
                {"output_index": len(self._items) - 1, "item": announced},
            )
        )

    def _text_delta(self, text: str, out: list[bytes]) -> None:
        if self._open is None or self._open["type"] != "message":
            item = message_item(item_id(self._req, "msg", len(self._items)), "", "in_progress")
            self._add(item, {**item, "content": []}, out)
            part = {**self._at(item), "content_index": 0, "part": output_text("")}
            out.append(self._event("response.content_part.added", part))
        assert self._open is not None
        self._text.append(text)
        delta = {**self._at(self._open), "content_index": 0, "delta": text, "logprobs": []}
        out.append(self._event("response.output_text.delta", delta))

    def _reasoning_delta(self, text: str, out: list[bytes]) -> None:
        if self._open is None or self._open["type"] != "reasoning":
            item = reasoning_item(item_id(self._req, "rs", len(self._items)), "")
            item["status"] = "in_progress"
            self._add(item, item, out)
            part = {**self._at(item), "summary_index": 0, "part": reasoning_part("")}
            out.append(self._event("response.reasoning_summary_part.added", part))
        assert self._open is not None
        self._text.append(text)
        delta = {**self._at(self._open), "summary_index": 0, "delta": text}
        out.append(self._event("response.reasoning_summary_text.delta", delta))

    def _tool(self, c: ToolCall, out: list[bytes]) -> None:
        item = self._calls.get(c.call)
        if item is None:
            n = len(self._items)
            call_id = c.id or item_id(self._req, "call", n)
            item = function_call_item(
                self._req, item_id(self._req, "fc", n), call_id, c.name or "", "", "in_progress"
            )
            self._calls[c.call] = item
            self._add(item, dict(item), out)
        if not c.arguments:
            return
        item["arguments"] += c.arguments
        if item is self._open:
            delta = {**self._at(item), "delta": c.arguments}
            out.append(self._event("response.function_call_arguments.delta", delta))

    def _close(self, out: list[bytes]) -> None:
        """The open item's closing events (its status follows the finish reason)."""
        item, self._open = self._open, None
        if item is None:
            return
        at = self._at(item)
        text = "".join(self._text)
        status = "incomplete" if self._finish in ("length", "content_filter") else "completed"
        if item["type"] == "message":
            item["content"] = [output_text(text)]
            done = {**at, "content_index": 0, "text": text, "logprobs": []}
            out.append(self._event("response.output_text.done", done))
            part = {**at, "content_index": 0, "part": output_text(text)}
            out.append(self._event("response.content_part.done", part))
        elif item["type"] == "reasoning":
            item["summary"] = [reasoning_part(text)]
            status = "completed"
            done = {**at, "summary_index": 0, "text": text}
            out.append(self._event("response.reasoning_summary_text.done", done))
            part = {**at, "summary_index": 0, "part": reasoning_part(text)}
            out.append(self._event("response.reasoning_summary_part.done", part))
        else:
            done = {**at, "arguments": item["arguments"], "name": item["name"]}
            out.append(self._event("response.function_call_arguments.done", done))
        item["status"] = status
        index = at["output_index"]
        out.append(self._event("response.output_item.done", {"output_index": index, "item": item}))

    def _end(self, out: list[bytes]) -> None:
        self._done = True
        if self._native_last is not None:  # the upstream's own terminal event went out
            final = orjson.loads(sse_data(self._native_last)).get("response")
            if isinstance(final, dict):
                completed(self._req, final)
            return
        self._start("", out)
        self._close(out)
        response = self._response
        assert response is not None
        response["output"] = self._items
        finish(response, self._finish, self._usage)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        out.append(self._event(kind, {"response": response}))
        completed(self._req, response)

    def _failed(self, message: str, status: int, out: list[bytes]) -> None:
        self._done = True
        if self._native_last is not None:
            last = orjson.loads(sse_data(self._native_last))
            if isinstance(last, dict) and last.get("type") in ("response.failed", "error"):
                return  # the upstream said it itself
        if self._native_first is not None:
            first = orjson.loads(sse_data(self._native_first)).get("response") or {}
            self._response = first if isinstance(first, dict) else None
        self._start("", out)
        response = self._response
        assert response is not None
        response["status"] = "failed"
        response["output"] = self._items
        response["error"] = {"code": error_code(status), "message": message}
        out.append(self._event("response.failed", {"response": response}))


def reasoning_part(text: str) -> dict[str, Any]:
    return {"type": "summary_text", "text": text}

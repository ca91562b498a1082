"""An answer's text and tool calls, whichever wire it came in — pure.

The primary's answer arrives as a `Result` (in OpenAI chat's shape, or natively in Anthropic
Messages' or OpenAI Responses' shape) or as the chunks its stream was relayed in: typed chunks
from a translating adapter, or `Raw` SSE events in the client's own wire. The comparators see
only `Answer`. Only the first choice counts (`n` > 1 is compared on its first answer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.core import Chunk, Raw, Result, Text, ToolCall


@dataclass(frozen=True, slots=True)
class ToolUse:
    name: str
    arguments: str  # JSON text


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    tool_calls: tuple[ToolUse, ...] = ()

    def sample(self) -> str:
        """For review: the text, then each tool call as `name(arguments)`."""
        calls = "\n".join(f"{c.name}({c.arguments})" for c in self.tool_calls)
        return f"{self.text}\n{calls}" if self.text and calls else self.text or calls


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "output_text")
        )
    return ""


def _args(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _openai(data: dict[str, Any]) -> Answer:
    choices = data.get("choices") or [{}]
    message = choices[0].get("message") or {}
    calls = tuple(
        ToolUse(str(f.get("name", "")), _args(f.get("arguments", "")))
        for c in message.get("tool_calls") or []
        if isinstance(f := c.get("function"), dict)
    )
    return Answer(_text_of(message.get("content")), calls)


def _anthropic(data: dict[str, Any]) -> Answer:
    blocks = [b for b in data.get("content") or [] if isinstance(b, dict)]
    text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    calls = tuple(
        ToolUse(str(b.get("name", "")), _args(b.get("input", {})))
        for b in blocks
        if b.get("type") == "tool_use"
    )
    return Answer(text, calls)


def _responses(data: dict[str, Any]) -> Answer:
    items = [i for i in data.get("output") or [] if isinstance(i, dict)]
    text = "".join(_text_of(i.get("content")) for i in items if i.get("type") == "message")
    calls = tuple(
        ToolUse(str(i.get("name", "")), _args(i.get("arguments", "")))
        for i in items
        if i.get("type") == "function_call"
    )
    return Answer(text, calls)


_BY_WIRE = {"openai": _openai, "anthropic": _anthropic, "openai-responses": _responses}


def from_result(result: Result) -> Answer:
    return _BY_WIRE.get(result.wire, _openai)(result.data)


class _Collector:
    """The first choice's text and tool calls, gathered from stream chunks."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.names: dict[int, str] = {}
        self.args: dict[int, list[str]] = {}
        self.whole: Answer | None = None  # a stream that carried the whole answer at its end

    def tool(self, call: int, name: str | None, arguments: str) -> None:
        if name:
            self.names[call] = name
        self.args.setdefault(call, []).append(arguments)

    def raw(self, event: bytes) -> None:
        data = b"\n".join(
            line[5:].strip() for line in event.splitlines() if line.startswith(b"data:")
        )
        if not data or data == b"[DONE]":
            return
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if isinstance(obj, dict):
            self._event(obj)

    def _event(self, obj: dict[str, Any]) -> None:
        if "choices" in obj:  # an OpenAI chat.completion.chunk
            for choice in obj["choices"] or []:
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    self.text.append(delta["content"])
                for c in delta.get("tool_calls") or []:
                    f = c.get("function") or {}
                    self.tool(c.get("index", 0), f.get("name"), f.get("arguments") or "")
            return
        kind = obj.get("type")
        if kind == "content_block_start":  # Anthropic Messages
            block = obj.get("content_block") or {}
            if block.get("type") == "tool_use":
                self.tool(obj.get("index", 0), block.get("name"), "")
            elif block.get("type") == "text":
                self.text.append(str(block.get("text", "")))
        elif kind == "content_block_delta":
            delta = obj.get("delta") or {}
            if delta.get("type") == "text_delta":
                self.text.append(str(delta.get("text", "")))
            elif delta.get("type") == "input_json_delta":
                self.tool(obj.get("index", 0), None, str(delta.get("partial_json", "")))
        elif kind == "response.completed":  # OpenAI Responses: the whole response at the end
            self.whole = _responses(obj.get("response") or {})

    def answer(self) -> Answer:
        if self.whole is not None:
            return self.whole
        calls = tuple(
            ToolUse(self.names.get(i, ""), "".join(self.args.get(i, [])) or "{}")
            for i in sorted(self.args)
        )
        return Answer("".join(self.text), calls)


def from_chunks(chunks: Iterable[Chunk]) -> Answer:
    c = _Collector()
    for chunk in chunks:
        if isinstance(chunk, Text) and chunk.index == 0:
            c.text.append(chunk.text)
        elif isinstance(chunk, ToolCall) and chunk.index == 0:
            c.tool(chunk.call, chunk.name, chunk.arguments)
        elif isinstance(chunk, Raw):
            c.raw(chunk.data)
    return c.answer()

"""Anthropic Messages ↔ OpenAI chat, for `/v1/messages` requests served by a non-Anthropic model.

Pure translation, three parts: the request (`to_chat_body`: a Messages body → an OpenAI chat
body), the answer (`to_message`: an OpenAI `chat.completion` → a Messages `Message`) and the
stream (`ChatToMessagesStream`: OpenAI chunk events → Anthropic SSE events, a small state
machine). Anthropic side: https://docs.anthropic.com/en/api/messages and
https://docs.anthropic.com/en/docs/build-with-claude/streaming; OpenAI side: openai-python
`ChatCompletion` / `ChatCompletionChunk`. The reverse direction (OpenAI clients, Anthropic
upstreams) is `providers/anthropic.py`.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import InvalidRequest
from gateway.pricing.cost import Usage
from gateway.protocol.anthropic import error_event, sse_event
from gateway.providers.openai import usage_from_openai
from gateway.sse import DONE, Event

# OpenAI finish_reason → Anthropic stop_reason
STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def anthropic_usage(u: Usage | None) -> dict[str, int]:
    """Our Usage (OpenAI semantics) → Anthropic's, where input_tokens excludes the cache."""
    u = u or Usage()
    return {
        "input_tokens": max(0, u.prompt_tokens - u.cached_prompt_tokens - u.cache_write_tokens),
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_prompt_tokens,
        "output_tokens": u.completion_tokens,
    }


def _text(blocks: Any) -> str:
    if isinstance(blocks, str):
        return blocks
    return "".join(
        str(b.get("text") or "")
        for b in blocks or ()
        if isinstance(b, dict) and b.get("type") == "text"
    )


def _image(source: Any) -> dict[str, Any]:
    if isinstance(source, dict) and source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif isinstance(source, dict) and source.get("type") == "url":
        url = str(source.get("url"))
    else:
        raise InvalidRequest(
            "Only base64 and url image sources can be sent to this model.", param="messages"
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _user(content: Any) -> list[dict[str, Any]]:
    """A user turn → tool messages (its tool_result blocks, first) and one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type")
        if kind == "tool_result":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": block.get("tool_use_id"),
                    "content": _text(block.get("content")),
                }
            )
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append(_image(block.get("source")))
        else:
            raise InvalidRequest(
                f"Content blocks of type {kind!r} cannot be sent to this "
                "model (text, image and tool_result can).",
                param="messages",
            )
    if len(parts) == 1 and parts[0]["type"] == "text":
        out.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        out.append({"role": "user", "content": parts})
    return out


def _assistant(content: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    calls = [
        {
            "id": b.get("id"),
            "type": "function",
            "function": {
                "name": b.get("name"),
                "arguments": orjson.dumps(b.get("input") or {}).decode(),
            },
        }
        for b in content
        if b.get("type") == "tool_use"
    ]
    text = _text(content)  # thinking blocks have no OpenAI equivalent and are dropped
    msg: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        msg["tool_calls"] = calls
    return msg


def _tool_choice(choice: dict[str, Any]) -> Any:
    kind = choice.get("type")
    if kind == "any":
        return "required"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return "none" if kind == "none" else "auto"


def to_chat_body(body: dict[str, Any], stream: bool) -> dict[str, Any]:
    """A validated Messages body → an OpenAI chat body (model still the client's name).

    cache_control marks are dropped: OpenAI-family servers cache prefixes by themselves."""
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _text(body["system"])})
    for m in body["messages"]:
        if m["role"] == "user":
            messages += _user(m["content"])
        else:
            messages.append(_assistant(m["content"]))
    out: dict[str, Any] = {
        "model": body["model"],
        "messages": messages,
        "max_tokens": body["max_tokens"],
    }
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str):
        out["user"] = user
    if stream:
        out["stream"] = True
    if body.get("tools"):
        out["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.get("name"),
                    "description": t.get("description", ""),
                    "parameters": t.get("input_schema") or {"type": "object", "properties": {}},
                },
            }
            for t in body["tools"]
        ]
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            out["tool_choice"] = _tool_choice(choice)
            if choice.get("disable_parallel_tool_use") is True:
                out["parallel_tool_calls"] = False
    return out


def _input(arguments: Any) -> dict[str, Any]:
    """tool_use.input is an object; arguments a model wrote that are not one are kept whole."""
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"arguments": arguments}


def to_message(chat: dict[str, Any], usage: Usage | None) -> dict[str, Any]:
    """An OpenAI `chat.completion` (first choice) → a Messages `Message`."""
    choices = chat.get("choices") or [{}]
    msg = choices[0].get("message") or {}
    content: list[dict[str, Any]] = []
    if msg.get("content"):
        content.append({"type": "text", "text": msg["content"]})
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": fn.get("name"),
                "input": _input(fn.get("arguments")),
            }
        )
    return {
        "id": chat.get("id"),
        "type": "message",
        "role": "assistant",
        "model": chat.get("model"),
        "content": content,
        "stop_reason": STOP_REASONS.get(str(choices[0].get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }


class ChatToMessagesStream:
    """OpenAI chunk events → Anthropic events, numbering content blocks from 0 in order."""

    def __init__(self, model: str) -> None:
        self.usage: Usage | None = None
        self.error: dict[str, Any] | None = None
        self.done = False
        self._model = model
        self._started = False
        self._open: int | None = None  # index of the open content block
        self._open_kind = ""
        self._blocks = 0
        self._tools: dict[int, int] = {}  # OpenAI tool_calls index → content block index
        self._stop: str | None = None

    def feed(self, event: Event) -> list[bytes]:
        if self.done:
            return []
        if event.data == DONE:  # complete only if a finish_reason came before it
            return self.finish()
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return self.fail("api_error", "the upstream sent a stream event that is not JSON")
        if not isinstance(chunk, dict):
            return []
        if isinstance(chunk.get("error"), dict):
            err = chunk["error"]
            return self.fail(str(err.get("type") or "api_error"), str(err.get("message")))
        out = [] if self._started else self._start(chunk)
        usage = usage_from_openai(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out += self._choice(choice)
        return out

    def finish(self) -> list[bytes]:
        """The upstream stream ended: fine after a finish_reason, an error otherwise."""
        if self.done:
            return []
        if self._stop is not None:
            return self._end()
        return self.fail("api_error", "the upstream stream ended before the answer was complete")

    def fail(self, kind: str, message: str) -> list[bytes]:
        self.error = {"type": kind, "message": message}
        self.done = True
        return [error_event(kind, message)]

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        self._started = True
        message: dict[str, Any] = {
            "id": chunk.get("id") or "",
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model") or self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(None),
        }
        return [sse_event("message_start", {"type": "message_start", "message": message})]

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        delta = choice.get("delta") or {}
        out: list[bytes] = []
        if delta.get("content"):
            if self._open_kind != "text":
                out += self._open_block({"type": "text", "text": ""}, "text")
            out.append(
                self._delta(self._blocks - 1, {"type": "text_delta", "text": delta["content"]})
            )
        for call in delta.get("tool_calls") or ():
            out += self._tool_delta(call)
        if choice.get("finish_reason"):
            self._stop = STOP_REASONS.get(choice["finish_reason"], "end_turn")
            out += self._close()
        return out

    def _tool_delta(self, call: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        index = call.get("index", 0)
        fn = call.get("function") or {}
        if index not in self._tools:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{index}",
                "name": fn.get("name") or "",
                "input": {},
            }
            out += self._open_block(block, "tool_use")
            self._tools[index] = self._blocks - 1
        if fn.get("arguments"):  # OpenAI streams one call's arguments after another
            out.append(
                self._delta(
                    self._tools[index],
                    {"type": "input_json_delta", "partial_json": fn["arguments"]},
                )
            )
        return out

    def _open_block(self, block: dict[str, Any], kind: str) -> list[bytes]:
        out = self._close()
        self._open, self._open_kind = self._blocks, kind
        self._blocks += 1
        return out + [
            sse_event(
                "content_block_start",
                {"type": "content_block_start", "index": self._open, "content_block": block},
            )
        ]

    @staticmethod
    def _delta(index: int, delta: dict[str, Any]) -> bytes:
        return sse_event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        index, self._open, self._open_kind = self._open, None, ""
        return [sse_event("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _end(self) -> list[bytes]:
        self.done = True
        out = self._close() if self._started else self._start({})
        delta = {"stop_reason": self._stop or "end_turn", "stop_sequence": None}
        out.append(
            sse_event(
                "message_delta",
                {"type": "message_delta", "delta": delta, "usage": anthropic_usage(self.usage)},
            )
        )
        out.append(sse_event("message_stop", {"type": "message_stop"}))
        return out

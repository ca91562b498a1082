"""Anthropic Messages ↔ OpenAI chat, for `/v1/messages` requests served by a non-Anthropic model.

Pure translation, two parts here: the request (`to_chat_body`: a Messages body → the neutral,
OpenAI-shaped chat body) and the answer (`to_message`: an OpenAI `chat.completion` → a
Messages `Message`); the stream is `anthropic_stream.py`. Anthropic side:
https://docs.anthropic.com/en/api/messages; OpenAI side: openai-python `ChatCompletion`. The
reverse direction (OpenAI clients, Anthropic upstreams) is `providers/anthropic_request.py`.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.core import Usage
from gateway.errors import InvalidRequest, echo

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
                f"Content blocks of type {echo(kind)} cannot be sent to this "
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

    cache_control marks are dropped: OpenAI-family servers cache prefixes by themselves.
    `system` turns inside `messages` (Claude Code sends one) join the top-level `system` in
    the one leading system message: every other family's translation hoists system text to
    the head anyway (Anthropic's `system`, Gemini's `systemInstruction`), and some open-model
    chat templates refuse a system turn that is not first."""
    turns: list[dict[str, Any]] = []
    system = [_text(body["system"])] if body.get("system") else []
    for m in body["messages"]:
        if m["role"] == "user":
            turns += _user(m["content"])
        elif m["role"] == "system":
            system.append(_text(m["content"]))
        else:
            turns.append(_assistant(m["content"]))
    if not turns:
        raise InvalidRequest(
            "messages: at least one user or assistant turn is required", param="messages"
        )
    system = [s for s in system if s]
    messages = [{"role": "system", "content": "\n\n".join(system)}] if system else []
    messages += turns
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

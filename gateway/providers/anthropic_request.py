"""OpenAI chat → Anthropic Messages, and a Messages `Message` → an OpenAI `chat.completion`.

Pure translation for OpenAI-shaped requests served by an Anthropic model
(https://docs.anthropic.com/en/api/messages): system and developer messages become `system`,
consecutive turns of one role are merged, `max_tokens` is always sent, tools, tool choice,
images and `cache_control` are translated; OpenAI-only fields are not sent.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway.core import ClientRequest, Target, Usage
from gateway.errors import InvalidRequest, echo
from gateway.protocol.openai import usage_to_openai
from gateway.providers.anthropic_common import FINISH_REASONS, cache_system_prompt


def _text_of(content: Any, where: str) -> list[dict[str, Any]]:
    """System/developer content (a string or text parts) → text blocks."""
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        blocks = [_part(p, where) for p in content]
        if all(b["type"] == "text" for b in blocks):
            return blocks
    raise InvalidRequest(f"`{where}` must be text for an Anthropic model.", param="messages")


def _image(spec: Any, where: str) -> dict[str, Any]:
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str):
        raise InvalidRequest(f"`{where}.image_url.url` must be a string.", param="messages")
    if url.startswith("data:"):
        # data:[<media type>];base64,<data> (RFC 2397); Anthropic takes base64 only
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type:
            raise InvalidRequest(
                f"`{where}.image_url.url`: only base64 data URLs with a media "
                "type can be sent to an Anthropic model.",
                param="messages",
            )
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest(
        f"`{where}.image_url.url` must be a data: or http(s) URL.", param="messages"
    )


def _part(part: Any, where: str) -> dict[str, Any]:
    """One OpenAI content part → one Anthropic content block; cache_control passes through."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        block: dict[str, Any] = {"type": "text", "text": part["text"]}
    elif kind == "image_url":
        block = _image(part.get("image_url"), where)
    else:
        raise InvalidRequest(
            f"`{where}`: content part type {echo(kind)} cannot be sent to an "
            "Anthropic model (text and image_url can).",
            param="messages",
        )
    if isinstance(part, dict) and "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _content(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [_part(p, f"{where}[{j}]") for j, p in enumerate(content)]
    raise InvalidRequest(f"`{where}` must be a string or a list of parts.", param="messages")


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise InvalidRequest(f"`{where}` must be a function call with a name.", param="messages")
    try:
        args = orjson.loads(fn.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        raise InvalidRequest(
            f"`{where}.function.arguments` must be a JSON object: Anthropic "
            "tool_use input is an object.",
            param="messages",
        )
    return {"type": "tool_use", "id": str(call.get("id") or ""), "name": fn["name"], "input": args}


def _turn(m: dict[str, Any], where: str) -> tuple[str, list[dict[str, Any]]]:
    """One non-system OpenAI message → (Anthropic role, content blocks)."""
    role = m.get("role")
    if role == "tool":
        result: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": str(m.get("tool_call_id") or ""),
        }
        content = m.get("content")
        result["content"] = (
            content if isinstance(content, str) else _content(content, f"{where}.content")
        )
        return "user", [result]
    if role == "assistant":
        blocks = _content(m.get("content"), f"{where}.content")
        calls = m.get("tool_calls") or []
        blocks += [_tool_use(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(calls)]
        return "assistant", blocks
    if role == "user":
        return "user", _content(m.get("content"), f"{where}.content")
    raise InvalidRequest(
        f"`{where}.role` {echo(role)} is not supported by Anthropic models.", param="messages"
    )


def translate_messages(
    messages: list[Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI messages → (system blocks, Anthropic messages).

    System and developer messages go to `system` wherever they appear; consecutive turns of
    one role (e.g. several `tool` results, or a tool result then a user message) are merged,
    because the Messages API alternates user and assistant turns.
    """
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise InvalidRequest(f"`{where}` must be an object.", param="messages")
        if m.get("role") in ("system", "developer"):
            system += _text_of(m.get("content"), f"{where}.content")
            continue
        role, blocks = _turn(m, where)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _tools(tools: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) and t.get("type") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise InvalidRequest(
                f"`tools[{i}]` must be a function tool with a name.", param="tools"
            )
        tool: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            tool["description"] = fn["description"]
        tool["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
        if "cache_control" in t:
            tool["cache_control"] = t["cache_control"]
        out.append(tool)
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    """auto → auto, none → none, required → any, a named function → tool."""
    if choice is None and parallel is not False:
        return None
    if choice is None or choice == "auto":
        tc: dict[str, Any] = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        tc = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        tc = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise InvalidRequest(f"`tool_choice` {echo(choice)} is not supported.", param="tool_choice")
    if parallel is False:
        tc["disable_parallel_tool_use"] = True
    return tc


def _sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if temperature is not None:
        # OpenAI accepts 0–2, Anthropic 0–1: above 1 means "as random as allowed" there
        out["temperature"] = min(float(temperature), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    if body.get("top_k") is not None:  # not OpenAI's, but a known Anthropic field: keep it
        out["top_k"] = body["top_k"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}


def build_messages_body(request: ClientRequest, target: Target) -> dict[str, Any]:
    """The Messages request for an OpenAI chat request. OpenAI-only fields (n, seed,
    logprobs, response_format, stream_options…) are not sent: the Messages API rejects
    unknown fields."""
    body = request.body
    if (body.get("n") or 1) > 1:
        raise InvalidRequest("Anthropic models return one choice: `n` must be 1.", param="n")
    system, turns = translate_messages(body["messages"])
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    cfg = target.config
    out: dict[str, Any] = {
        "model": target.upstream_model,
        "max_tokens": max_tokens or (cfg.default_max_tokens if cfg else 4096),
        "messages": turns,
    }
    if system:
        out["system"] = (
            cache_system_prompt(system) if cfg and cfg.auto_cache_system_prompt else system
        )
    if request.stream:
        out["stream"] = True
    _sampling(body, out)
    if body.get("tools"):
        out["tools"] = _tools(body["tools"])
        tc = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if tc is not None:
            out["tool_choice"] = tc
    return out


def chat_completion(data: dict[str, Any], usage: Usage | None, model: str) -> dict[str, Any]:
    """A Messages `Message` → an OpenAI `chat.completion` body."""
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in data.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            text.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    joined = "".join(text)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": joined if joined or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "id": data.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model") or model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(str(data.get("stop_reason")), "stop"),
            }
        ],
        "usage": usage_to_openai(usage or Usage()),
    }

"""The Anthropic Messages family: OpenAI chat requests in, OpenAI chat answers out (pure).

This module owns the request translation (OpenAI chat → `POST /v1/messages`), the response
translation (a Messages `Message` → an OpenAI `chat.completion`), usage normalisation and the
mapping of Anthropic's error bodies. The streaming translator is `anthropic_stream.py`;
sending is `transport.py`'s job.

Spec: https://docs.anthropic.com/en/api/messages (request and `Message`),
https://docs.anthropic.com/en/api/errors (error shapes, 529 overloaded_error),
https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching (cache_control, usage).
Usage is normalised to OpenAI's semantics (pricing/cost.py): Anthropic reports `input_tokens`
*excluding* cached tokens, so prompt_tokens = input + cache_read + cache_creation.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway.errors import InvalidRequest, UpstreamHTTPError, UpstreamProtocolError
from gateway.pricing.cost import Usage
from gateway.providers.base import (
    ClientRequest,
    Endpoint,
    Result,
    StreamTranslator,
    Target,
    UpstreamRequest,
    usage_to_openai,
)

MESSAGES_PATH = "/v1/messages"

# stop_reason → OpenAI finish_reason (https://docs.anthropic.com/en/api/messages, `stop_reason`)
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

EPHEMERAL: dict[str, str] = {"type": "ephemeral"}


def usage_from_anthropic(u: Any) -> Usage | None:
    """Anthropic `usage` → our Usage (OpenAI semantics: the prompt includes cached tokens)."""
    if not isinstance(u, dict):
        return None
    read = int(u.get("cache_read_input_tokens") or 0)
    write = int(u.get("cache_creation_input_tokens") or 0)
    details = u.get("output_tokens_details")
    thinking = details.get("thinking_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=int(u.get("input_tokens") or 0) + read + write,
        completion_tokens=int(u.get("output_tokens") or 0),
        cached_prompt_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=int(thinking or 0),
    )


def cache_system_prompt(system: Any) -> Any:
    """Mark the system prompt's last block `cache_control: ephemeral` (a cache breakpoint
    covers everything before it: tools and the whole system prompt), unless the caller
    already placed a breakpoint there. Used for models with `auto_cache_system_prompt`."""
    if isinstance(system, str):
        return [{"type": "text", "text": system, "cache_control": EPHEMERAL}] if system else system
    if not isinstance(system, list) or not system:
        return system
    if any(isinstance(b, dict) and "cache_control" in b for b in system):
        return system
    last = system[-1]
    if not isinstance(last, dict):
        return system
    return [*system[:-1], {**last, "cache_control": EPHEMERAL}]


def anthropic_headers(target: Target) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "anthropic-version": target.provider.anthropic_version,
    }
    if target.provider.api_key:
        headers["x-api-key"] = target.provider.api_key
    return headers


def messages_url(target: Target) -> str:
    return target.provider.api_base.rstrip("/") + MESSAGES_PATH


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
            f"`{where}`: content part type {kind!r} cannot be sent to an "
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
        f"`{where}.role` {role!r} is not supported by Anthropic models.", param="messages"
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
        raise InvalidRequest(f"`tool_choice` {choice!r} is not supported.", param="tool_choice")
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


def scrub(text: str, target: Target) -> str:
    """Belt and braces: an upstream message never carries our key to a client or the ledger."""
    key = target.provider.api_key
    return text.replace(key, "***") if key and key in text else text


def error_from_anthropic(
    status: int, body: bytes, headers: dict[str, str], target: Target
) -> UpstreamHTTPError:
    """`{"type": "error", "error": {"type", "message"}}` → UpstreamHTTPError with the same
    status (529 stays 529) and Anthropic's error type; `retry-after` is kept."""
    message, type_ = f"upstream answered HTTP {status}", None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message") or message)
        type_ = err.get("type") if isinstance(err.get("type"), str) else None
    retry_after = headers.get("retry-after")
    return UpstreamHTTPError(
        status,
        scrub(message, target),
        provider=target.provider.name,
        type_=type_,
        headers={"retry-after": retry_after} if retry_after else None,
    )


class AnthropicAdapter:
    endpoints: frozenset[Endpoint] = frozenset({"chat"})

    def build_request(self, request: ClientRequest, target: Target) -> UpstreamRequest:
        return UpstreamRequest(
            method="POST",
            url=messages_url(target),
            headers=anthropic_headers(target),
            body=orjson.dumps(build_messages_body(request, target)),
            stream=request.stream,
        )

    def parse_response(self, body: bytes, request: ClientRequest, target: Target) -> Result:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or data.get("type") != "message":
            raise UpstreamProtocolError(
                f"{target.provider.name}: the upstream answer is not an Anthropic message"
            )
        usage = usage_from_anthropic(data.get("usage"))
        out = chat_completion(data, usage, target.upstream_model)
        rid = data.get("id")
        return Result(orjson.dumps(out), usage, rid if isinstance(rid, str) else None)

    def parse_error(
        self, status: int, body: bytes, headers: dict[str, str], target: Target
    ) -> UpstreamHTTPError:
        return error_from_anthropic(status, body, headers, target)

    def stream_translator(self, request: ClientRequest, target: Target) -> StreamTranslator:
        # imported here: anthropic_stream uses this module's usage and finish-reason helpers
        from gateway.providers.anthropic_stream import AnthropicStream

        return AnthropicStream(request.include_usage, target)

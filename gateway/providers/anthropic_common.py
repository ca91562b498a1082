"""What the Anthropic adapter's parts share: usage, finish reasons, errors, headers, URL.

Spec: https://docs.anthropic.com/en/api/messages (request and `Message`),
https://docs.anthropic.com/en/api/errors (error shapes, 529 overloaded_error),
https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching (cache_control, usage).
Usage is normalised to OpenAI's semantics (gateway/core.py `Usage`): Anthropic reports
`input_tokens` *excluding* cached tokens, so prompt_tokens = input + cache_read + cache_creation.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.core import Target, Usage
from gateway.errors import UpstreamHTTPError

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

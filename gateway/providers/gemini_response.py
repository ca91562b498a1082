"""Reading Gemini's answers — pure: usage, finish reasons, candidates, error bodies.

Shared by the whole-body path (`gemini.py`) and the stream translator (`gemini_stream.py`).
Shapes: google-genai `types.GenerateContentResponse` on the REST wire (camelCase), see
https://ai.google.dev/api/generate-content#generatecontentresponse.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.core import Usage
from gateway.errors import UpstreamHTTPError
from gateway.protocol.openai import usage_to_openai

# Candidate.finishReason (google-genai `types.FinishReason`) → OpenAI finish_reason. The
# reasons that mean "stopped by a safety/recitation/policy filter" become content_filter;
# MAX_TOKENS is length; every other end (STOP, OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, …)
# is a plain stop, or tool_calls when the candidate called a function.
_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)


def finish_reason(reason: object, called_a_function: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if called_a_function else "stop"


def prompt_blocked(data: Mapping[str, Any]) -> bool:
    """A prompt Gemini refused: `promptFeedback.blockReason` and no candidates, HTTP 200."""
    feedback = data.get("promptFeedback")
    return (
        not data.get("candidates")
        and isinstance(feedback, Mapping)
        and bool(feedback.get("blockReason"))
    )


def usage_from_gemini(meta: object) -> Usage | None:
    """usageMetadata → OpenAI semantics (shared/reference/ECONOMICS.md §7.3 and §7.4).

    `promptTokenCount` already includes `cachedContentTokenCount` (google-genai
    GenerateContentResponseUsageMetadata docstring), as OpenAI's prompt_tokens includes
    cached_tokens. `thoughtsTokenCount` is *not* part of `candidatesTokenCount` (the total is
    their sum), while OpenAI's completion_tokens includes reasoning_tokens: completion =
    candidates + thoughts, reasoning = thoughts (thoughts are billed at the output rate).
    `toolUsePromptTokenCount` (tool results fed back to the model) is billed as input.
    """
    if not isinstance(meta, Mapping):
        return None

    def n(key: str) -> int:
        value = meta.get(key)
        return value if isinstance(value, int) else 0

    thoughts = n("thoughtsTokenCount")
    return Usage(
        prompt_tokens=n("promptTokenCount") + n("toolUsePromptTokenCount"),
        completion_tokens=n("candidatesTokenCount") + thoughts,
        cached_prompt_tokens=n("cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def call_id(response_id: str | None, candidate: int, k: int, call: Mapping[str, Any]) -> str:
    """Gemini's own call id when it sends one, else one derived from the response id."""
    given = call.get("id")
    if isinstance(given, str) and given:
        return given
    return f"call_{response_id or uuid.uuid4().hex}_{candidate}_{k}"


def tool_call(call: Mapping[str, Any], part: Mapping[str, Any], id_: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id_,
        "type": "function",
        "function": {
            "name": str(call.get("name") or ""),
            "arguments": orjson.dumps(call.get("args") or {}).decode(),
        },
    }
    if part.get("thoughtSignature"):
        out["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return out


def visible_parts(candidate: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The candidate's parts minus thought summaries (`thought: true`): reasoning is counted,
    not shown, as OpenAI models do."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    if not isinstance(parts, list):
        return []
    return [p for p in parts if isinstance(p, Mapping) and not p.get("thought")]


def completion(data: Mapping[str, Any], model: str, created: int) -> dict[str, Any]:
    """A whole GenerateContentResponse → an OpenAI `chat.completion` body."""
    rid = data.get("responseId") if isinstance(data.get("responseId"), str) else None
    choices = []
    for pos, cand in enumerate(data.get("candidates") or []):
        index = cand.get("index", pos) if isinstance(cand.get("index"), int) else pos
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in visible_parts(cand):
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            call = part.get("functionCall")
            if isinstance(call, Mapping):
                calls.append(tool_call(call, part, call_id(rid, index, len(calls), call)))
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(texts) if texts or not calls else None,
        }
        if calls:
            message["tool_calls"] = calls
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(cand.get("finishReason"), bool(calls)),
            }
        )
    if not choices:  # a blocked prompt is an answer with nothing in it, not a failure
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": "content_filter" if prompt_blocked(data) else "stop",
            }
        )
    usage = usage_from_gemini(data.get("usageMetadata")) or Usage()
    return {
        "id": rid or f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": created,
        "model": data.get("modelVersion") or model,
        "choices": choices,
        "usage": usage_to_openai(usage),
    }


# --- errors --------------------------------------------------------------------------------

# google.rpc.Code names (https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes)
# → OpenAI error `type`; the HTTP status itself is kept as Gemini sent it.
_ERROR_TYPES = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "DEADLINE_EXCEEDED": "timeout_error",
    "INTERNAL": "api_error",
    "UNAVAILABLE": "service_unavailable_error",
}
_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


def error_from_gemini(
    status: int, body: bytes, *, provider: str, api_key: str | None, retry_after: str | None = None
) -> UpstreamHTTPError:
    """Google's `{"error": {"code", "message", "status", "details"}}` → our error.

    Only the message and the status name are kept (never the raw body), with the provider
    key scrubbed from the message in case an upstream ever echoed it. A 429's RetryInfo
    `retryDelay` ("37s") becomes Retry-After when the header itself is absent.
    """
    err = _error_object(body)
    message = str(err.get("message") or f"upstream answered HTTP {status}")
    if api_key:
        message = message.replace(api_key, "***")
    google_status = err.get("status") if isinstance(err.get("status"), str) else None
    retry_after = retry_after or _retry_delay(err.get("details"))
    return UpstreamHTTPError(
        status,
        message,
        provider=provider,
        type_=_ERROR_TYPES.get(google_status or "") or _str(err.get("type")),
        code=google_status.lower() if google_status else _str(err.get("code")),
        headers={"retry-after": retry_after} if retry_after else None,
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(data, list) and data:  # some Google front ends wrap the error in a list
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else {}


def _retry_delay(details: object) -> str | None:
    for d in details if isinstance(details, list) else []:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            m = _DELAY.match(str(d.get("retryDelay", "")))
            if m:
                return str(math.ceil(float(m.group(1))))
    return None

"""A Gemini `generateContent` body → what the simulated model produces (pure).

The body is read into the chat shape `plans.plan_chat` already understands, so a Gemini
request gets the same deterministic words, tool arguments, token counts and prompt-cache
keys as an OpenAI one. On top of that, Gemini's own behaviour (documented behaviour of the
simulator):

- `toolConfig.functionCallingConfig.mode` ANY calls a function (the first of
  `allowedFunctionNames` when given), NONE never does, AUTO (or none given) calls one when
  the last turn is a user turn mentioning "weather" — as `plans.py` does for OpenAI.
- `generationConfig.thinkingConfig.thinkingBudget` > 0 (or -1, dynamic) reports
  `min(budget, THOUGHT_TOKENS)` thoughts tokens; `includeThoughts` adds a thought part.
- `cachedContent` (explicit caching) adds `CACHED_CONTENT_TOKENS` to the prompt, all read
  from the cache, as Gemini counts cached content inside promptTokenCount.
- a last user turn containing BLOCK_PROMPT is refused: `promptFeedback.blockReason: SAFETY`,
  no candidates; one containing BLOCK_REPLY starts answering and stops after
  BLOCKED_REPLY_TOKENS tokens with `finishReason: SAFETY`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from gateway.simulator import tokens
from gateway.simulator.plans import ChoicePlan, GenerationPlan, RequestError, plan_chat
from gateway.simulator.profiles import Profile

MAX_CANDIDATES = 8  # Gemini's documented upper bound for candidateCount
THOUGHT_TOKENS = 96
CACHED_CONTENT_TOKENS = 2048
BLOCK_PROMPT = "BLOCKME"
BLOCK_REPLY = "BLOCKREPLY"
BLOCKED_REPLY_TOKENS = 3


@dataclass(frozen=True)
class GeminiPlan:
    plan: GenerationPlan
    thoughts: int = 0
    include_thoughts: bool = False
    prompt_blocked: bool = False
    chat: Mapping[str, Any] = field(default_factory=dict)  # the chat body the plan was made from


def plan_generate(raw: Mapping[str, Any], model: str, stream: bool, profile: Profile) -> GeminiPlan:
    body = camel_keys(raw)
    chat = _chat_body(body, model, stream)
    plan = plan_chat(chat, profile)
    if isinstance(body.get("cachedContent"), str):
        plan = replace(
            plan,
            prompt_tokens=plan.prompt_tokens + CACHED_CONTENT_TOKENS,
            cached_tokens=CACHED_CONTENT_TOKENS,
        )
    user_text = tokens.last_user_text(chat["messages"])
    if BLOCK_PROMPT in user_text:
        return GeminiPlan(replace(plan, choices=()), prompt_blocked=True, chat=chat)
    if BLOCK_REPLY in user_text:
        plan = replace(
            plan,
            choices=tuple(
                ChoicePlan(c.pieces[:BLOCKED_REPLY_TOKENS], "content_filter") for c in plan.choices
            ),
        )
    thoughts, include = _thinking(body.get("generationConfig") or {})
    return GeminiPlan(plan, thoughts, include, chat=chat)


def camel_keys(value: Any, *, names: bool = False) -> Any:
    """The request with every field name in lowerCamelCase.

    Gemini's JSON is proto3 JSON, whose parsers accept a field's original snake_case name as
    well as its camelCase one — and google-genai 3.6 does send `thinkingConfig.thinking_budget`.
    User data keeps its keys: function `args`, `response` objects and schema property names.
    """
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    if not isinstance(value, Mapping):
        return value
    out = {}
    for key, v in value.items():
        name = key if names else _camel(str(key))
        out[name] = v if name in ("args", "response") else camel_keys(v, names=name == "properties")
    return out


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _thinking(config: Mapping[str, Any]) -> tuple[int, bool]:
    thinking = config.get("thinkingConfig")
    if not isinstance(thinking, Mapping):
        return 0, False
    budget = thinking.get("thinkingBudget")
    if budget is not None and (not isinstance(budget, int) or budget < -1):
        raise RequestError(
            "thinkingBudget must be an integer >= -1",
            "generationConfig.thinkingConfig.thinkingBudget",
        )
    thoughts = THOUGHT_TOKENS if budget == -1 else min(budget or 0, THOUGHT_TOKENS)
    return thoughts, thinking.get("includeThoughts") is True


def _chat_body(body: Mapping[str, Any], model: str, stream: bool) -> dict[str, Any]:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise RequestError("contents is required and must be a non-empty list", "contents")
    messages: list[dict[str, Any]] = []
    system = body.get("systemInstruction")
    if isinstance(system, Mapping):
        messages.append({"role": "system", "content": _text(system.get("parts"))})
    for i, content in enumerate(contents):
        if (
            not isinstance(content, Mapping)
            or not isinstance(content.get("parts"), list)
            or not content["parts"]
        ):
            raise RequestError(
                f"contents[{i}] must have a non-empty parts list", f"contents[{i}].parts"
            )
        messages.extend(_messages(content))
    chat: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    config = body.get("generationConfig") or {}
    if not isinstance(config, Mapping):
        raise RequestError("generationConfig must be an object", "generationConfig")
    _limits(config, chat)
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        if isinstance(schema, Mapping):  # the answer is valid against it
            spec = {"name": "response", "schema": _lower_types(schema)}
            chat["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            chat["response_format"] = {"type": "json_object"}
    _tools(body, chat)
    return chat


def _text(parts: object) -> str:
    if not isinstance(parts, list):
        return ""
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, Mapping))


def _messages(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One Gemini turn → chat messages (function responses become `tool` messages)."""
    parts = [p for p in content["parts"] if isinstance(p, Mapping)]
    responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
    calls = [p["functionCall"] for p in parts if "functionCall" in p]
    chat_parts: list[dict[str, Any]] = [
        {"type": "text", "text": str(p["text"])}
        for p in parts
        if "text" in p and not p.get("thought")
    ]
    chat_parts += [
        {"type": "image_url", "image_url": {"url": "inline"}}
        for p in parts
        if "inlineData" in p or "fileData" in p
    ]
    role = "assistant" if content.get("role") == "model" else "user"
    out: list[dict[str, Any]] = []
    if chat_parts or calls:
        message: dict[str, Any] = {"role": role, "content": chat_parts}
        if calls:
            message["tool_calls"] = calls
        out.append(message)
    out += [{"role": "tool", "content": orjson.dumps(r).decode()} for r in responses]
    return out


def _limits(config: Mapping[str, Any], chat: dict[str, Any]) -> None:
    for key, target, high in (
        ("maxOutputTokens", "max_tokens", None),
        ("candidateCount", "n", MAX_CANDIDATES),
    ):
        value = config.get(key)
        if value is None:
            continue
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < 1
            or (high is not None and value > high)
        ):
            bound = f"between 1 and {high}" if high else "a positive integer"
            raise RequestError(f"{key} must be {bound}, got {value!r}", f"generationConfig.{key}")
        chat[target] = value


def _tools(body: Mapping[str, Any], chat: dict[str, Any]) -> None:
    declarations = [
        d
        for tool in body.get("tools") or []
        if isinstance(tool, Mapping)
        for d in tool.get("functionDeclarations") or []
        if isinstance(d, Mapping)
    ]
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    allowed = calling.get("allowedFunctionNames")
    if isinstance(allowed, list) and allowed:
        declarations = [d for d in declarations if d.get("name") in allowed]
    if not declarations:
        return
    chat["tools"] = [{"type": "function", "function": _lower_types(d)} for d in declarations]
    mode = calling.get("mode", "AUTO")
    if mode == "ANY":
        chat["tool_choice"] = "required"
    elif mode == "NONE":
        chat["tool_choice"] = "none"


def _lower_types(value: Any) -> Any:
    """Gemini's Schema → JSON Schema: types may be spelled as its enum ("STRING") where JSON
    Schema's are lower case, and `nullable: true` is JSON Schema's `null` type."""
    if isinstance(value, Mapping):
        out = {
            k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v))
            for k, v in value.items()
            if k != "nullable"
        }
        if value.get("nullable") is True and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(value, list):
        return [_lower_types(v) for v in value]
    return value

"""A Responses request → the neutral (OpenAI chat) body, and the per-request facts the codec
renders back (pure).

Top-level fields (https://platform.openai.com/docs/api-reference/responses/create):
`instructions` → a leading system message (not carried over a `previous_response_id` chain,
as OpenAI does not); `max_output_tokens` → `max_completion_tokens`; `text.format` →
`response_format`; `reasoning.effort` → `reasoning_effort`; `temperature`, `top_p`, `user`,
`parallel_tool_calls`, `prompt_cache_key` as they are. `metadata` and `store` are the
gateway's (chat's own `store` would store the completion at OpenAI), `include` and
`reasoning.summary` shape the answer only.

Tools: `function` tools become chat functions; the functions of a `namespace` tool are
flattened into the list (their calls come back with the namespace named); every other type —
hosted tools (web_search, file_search, computer use, code interpreter, …) and types this
gateway does not know — is left out and listed in `dropped_tools` (the
`x-gateway-dropped-tools` header). A `tool_choice` forcing one of those can only be served by
an upstream that runs it itself (`ClientRequest.native_only`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.codecs.responses_input import as_items, to_messages
from gateway.core import ClientRequest
from gateway.errors import InvalidRequest

# Request fields echoed in the Response object (openai-python `types/responses/response.py`).
ECHOED = (
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "reasoning",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
    "user",
)


@dataclass(slots=True)
class ResponsesRequest(ClientRequest):
    """A `/v1/responses` request: the neutral request plus what its Response echoes."""

    id: str = ""  # the Response's id (resp_…), unless a native upstream names it
    created_at: int = 0
    fields: dict[str, Any] = field(default_factory=dict)  # the client's body (checked)
    input_items: list[Any] = field(default_factory=list)  # this turn's input, as items
    context: list[Any] = field(default_factory=list)  # earlier turns' items (a chain)
    store: bool = True
    dropped_tools: tuple[str, ...] = ()
    namespaces: dict[str, str] = field(default_factory=dict)  # flattened function → namespace
    response: dict[str, Any] | None = None  # the Response object, once rendered
    team: str | None = None
    # Called with the request when its Response is final (and `store` is on): the
    # conversation store keeps it, before the last byte goes out (read-your-writes).
    keep: Callable[[ResponsesRequest], None] | None = None


def completed(req: ResponsesRequest, response: dict[str, Any]) -> None:
    """The Response is final: remember it, and keep it when it may continue a chain."""
    req.response = response
    if req.keep is not None and response.get("status") in ("completed", "incomplete"):
        req.keep(req)


def _function(tool: dict[str, Any], where: str) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"`{where}.name` must be a non-empty string.", param=f"{where}.name")
    fn: dict[str, Any] = {"name": name}
    if isinstance(tool.get("description"), str):
        fn["description"] = tool["description"]
    fn["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
    if isinstance(tool.get("strict"), bool):
        fn["strict"] = tool["strict"]
    return {"type": "function", "function": fn}


def translate_tools(
    tools: list[Any],
) -> tuple[list[dict[str, Any]], tuple[str, ...], dict[str, str]]:
    """(chat tools, dropped tool types, flattened function name → its namespace)."""
    out: list[dict[str, Any]] = []
    dropped: list[str] = []
    namespaces: dict[str, str] = {}
    seen: set[str] = set()

    def add(tool: dict[str, Any], where: str, namespace: str | None) -> None:
        chat = _function(tool, where)
        name = chat["function"]["name"]
        if name in seen:
            raise InvalidRequest(
                f"`{where}.name`: a function named {name!r} is already defined (namespaces are "
                "flattened for this model, so function names must be unique across them).",
                param="tools",
            )
        seen.add(name)
        out.append(chat)
        if namespace is not None:
            namespaces[name] = namespace

    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"`{where}` must be an object.", param=where)
        kind = tool.get("type")
        if kind == "function":
            add(tool, where, None)
        elif kind == "namespace":
            for j, inner in enumerate(tool.get("tools") or ()):
                if isinstance(inner, dict) and inner.get("type") == "function":
                    add(inner, f"{where}.tools[{j}]", str(tool.get("name") or ""))
                else:
                    kind_in = inner.get("type") if isinstance(inner, dict) else None
                    dropped.append(str(kind_in or "unknown"))
        else:
            dropped.append(str(kind or "unknown"))
    return out, tuple(dict.fromkeys(dropped)), namespaces


def translate_tool_choice(
    choice: Any, tools: list[dict[str, Any]], dropped: tuple[str, ...]
) -> tuple[Any, list[dict[str, Any]], InvalidRequest | None]:
    """(chat tool_choice, the tools to send, the refusal when it forces a dropped tool)."""
    if choice is None or choice in ("auto", "none", "required"):
        return choice, tools, None
    if not isinstance(choice, dict):
        raise InvalidRequest(
            "`tool_choice` must be auto, none, required or an object.", param="tool_choice"
        )
    kind = choice.get("type")
    if kind == "function":
        name = choice.get("name")
        if not any(t["function"]["name"] == name for t in tools):
            raise InvalidRequest(
                f"`tool_choice` names function {name!r}, which is not in `tools`.",
                param="tool_choice",
            )
        return {"type": "function", "function": {"name": name}}, tools, None
    if kind == "allowed_tools":
        allowed = {
            t.get("name") for t in choice.get("tools") or () if isinstance(t, dict)
        }  # chat's own allowed_tools is OpenAI-only: narrow the list instead
        kept = [t for t in tools if t["function"]["name"] in allowed]
        mode = choice.get("mode") if choice.get("mode") in ("auto", "required") else "auto"
        return mode, kept, None
    refusal = InvalidRequest(
        f"`tool_choice` forces the tool type {kind!r}, which the model this request was routed "
        f"to cannot run (this gateway left out: {', '.join(dropped) or 'none'}).",
        param="tool_choice",
    )
    return "auto", tools, refusal


def response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    spec = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
    return {"type": "json_schema", "json_schema": spec}


def chat_body(req: ResponsesRequest) -> dict[str, Any]:
    """The neutral chat body of `req` (its context, then this turn's input)."""
    f = req.fields
    messages: list[dict[str, Any]] = []
    if f.get("instructions"):
        messages.append({"role": "system", "content": f["instructions"]})
    messages += to_messages(req.context, "previous_response_id")
    messages += to_messages(req.input_items)
    if not messages:
        raise InvalidRequest("`input` must contain at least one message.", param="input")
    body: dict[str, Any] = {"model": f["model"], "messages": messages}
    tools, dropped, namespaces = translate_tools(f.get("tools") or [])
    choice, tools, refusal = translate_tool_choice(f.get("tool_choice"), tools, dropped)
    req.dropped_tools, req.namespaces, req.native_only = dropped, namespaces, refusal
    if tools:
        body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = choice
        if isinstance(f.get("parallel_tool_calls"), bool):
            body["parallel_tool_calls"] = f["parallel_tool_calls"]
    fmt = response_format(f.get("text"))
    if fmt is not None:
        body["response_format"] = fmt
    if f.get("max_output_tokens") is not None:
        body["max_completion_tokens"] = f["max_output_tokens"]
    for key in ("temperature", "top_p", "user", "prompt_cache_key"):
        if f.get(key) is not None:
            body[key] = f[key]
    effort = (f.get("reasoning") or {}).get("effort")
    if effort is not None:
        body["reasoning_effort"] = effort
    if req.stream:
        body["stream"] = True
    return body


def native_body(req: ResponsesRequest) -> dict[str, Any]:
    """The body for an upstream that speaks Responses itself: the client's, with a chain's
    earlier turns written out as input items (the gateway, not the upstream, holds them)."""
    if not req.context:
        return req.fields
    body = {k: v for k, v in req.fields.items() if k != "previous_response_id"}
    body["input"] = [*req.context, *as_items(req.fields.get("input"))]
    return body

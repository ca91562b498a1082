"""The simulator's Responses endpoint: `POST /v1/responses` on its OpenAI profiles, at the
root and under every `/{profile}/` prefix, answered as JSON or as an event stream
(https://platform.openai.com/docs/api-reference/responses).

The request is read into the chat plan the other endpoints use (`plans.plan_chat`): input
items become messages, function tools chat functions (hosted tools are accepted and never
called), `text.format` the response format, `max_output_tokens` the limit. The simulator
keeps no state, so a `previous_response_id` is a 404, as OpenAI answers for an id it does not
hold: the gateway must send a chain's earlier turns itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.simulator import handlers, quality
from gateway.simulator.asgi import Request, respond_error
from gateway.simulator.plans import RequestError, plan_chat
from gateway.simulator.responses_wire import Echo, ResponsesFrames, whole
from gateway.simulator.state import SimState
from gateway.simulator.upstream import Upstream

PATH = "/v1/responses"
_ROLES = {"developer": "system"}


def _content(content: object) -> object:
    if not isinstance(content, list):
        return content
    parts: list[dict[str, Any]] = []
    for p in content:
        if isinstance(p, Mapping) and p.get("type") == "input_image":
            parts.append({"type": "image_url", "image_url": {"url": str(p.get("image_url"))}})
        elif isinstance(p, Mapping):
            parts.append({"type": "text", "text": str(p.get("text") or p.get("refusal") or "")})
    return parts


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise RequestError("'input' is required: a string or a non-empty list of items", "input")
    out: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        out.append({"role": "system", "content": body["instructions"]})
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise RequestError(f"input[{i}] must be an object", f"input[{i}]")
        kind = item.get("type", "message")
        if kind == "message":
            role = str(item.get("role"))
            out.append({"role": _ROLES.get(role, role), "content": _content(item.get("content"))})
        elif kind == "function_call":
            fn = {"name": item.get("name"), "arguments": item.get("arguments")}
            call = {"id": item.get("call_id"), "type": "function", "function": fn}
            out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            result = str(item.get("output"))
            out.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": result})
    return out


def _tools(body: Mapping[str, Any], chat: dict[str, Any]) -> None:
    functions = [
        {"type": "function", "function": {k: t[k] for k in ("name", "parameters") if k in t}}
        for t in body.get("tools") or ()
        if isinstance(t, Mapping) and t.get("type") == "function"
    ]
    if not functions:
        return
    chat["tools"] = functions
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif choice in ("auto", "none", "required"):
        chat["tool_choice"] = choice


def chat_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Responses body → the chat body the plan is made from."""
    chat: dict[str, Any] = {
        "model": body.get("model"),
        "messages": _messages(body),
        "stream": body.get("stream") is True,
    }
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), Mapping) else None
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        spec = {"name": fmt.get("name"), "schema": fmt.get("schema")}
        chat["response_format"] = {"type": "json_schema", "json_schema": spec}
    _tools(body, chat)
    return chat


async def responses(sim: SimState, up: Upstream, req: Request) -> None:
    up.count("responses")
    body = handlers.json_object(req.body)
    if body.get("previous_response_id") is not None:
        await respond_error(
            req.send,
            404,
            f"Previous response with id '{body['previous_response_id']}' not found.",
            "previous_response_id",
            "previous_response_not_found",
        )
        return
    chat = chat_body(body)
    plan = handlers.with_prompt_cache(up, plan_chat(chat, up.profile))
    chat["metadata"] = body.get("metadata")  # read for the task only (quality.py)
    plan = quality.answered_chat(plan, sim.quality, req.scope, chat, up.profile.name, sim.seed)
    echo = Echo(body)
    await handlers.generate(
        sim,
        up,
        req,
        plan,
        "resp_",
        lambda p, rid, created: whole(p, echo, rid, created),
        lambda p, rid, created: ResponsesFrames(p, echo, rid, created),
    )

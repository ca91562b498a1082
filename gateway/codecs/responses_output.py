"""The Response object (pure): its request echo, output items, status and usage, built from a
chat answer for models reached through chat completions.

Shapes: openai-python `types/responses/response.py` (`Response`), `response_output_message.py`,
`response_output_text.py`, `response_function_tool_call.py`, `response_reasoning_item.py`,
`response_usage.py`; the tests validate every object against them. Status: a chat
`finish_reason` of `length` makes the response `incomplete` (`max_output_tokens`), and
`content_filter` too (`content_filter`); anything else is `completed`.
"""

from __future__ import annotations

from typing import Any

from gateway.codecs.responses_request import ECHOED, ResponsesRequest
from gateway.core import Usage

# finish_reason → (status, incomplete_details.reason)
STATUS: dict[str, tuple[str, str | None]] = {
    "length": ("incomplete", "max_output_tokens"),
    "content_filter": ("incomplete", "content_filter"),
}
DEFAULTS: dict[str, Any] = {
    "metadata": {},
    "parallel_tool_calls": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
}


def item_id(req: ResponsesRequest, prefix: str, n: int) -> str:
    """Output item ids, unique per response: the response's own id plus the item's position."""
    return f"{prefix}_{req.id[5:]}{n:02x}"


def skeleton(req: ResponsesRequest, model: str, status: str = "in_progress") -> dict[str, Any]:
    """The Response before any output: the request's parameters echoed, as OpenAI does."""
    f = req.fields
    response: dict[str, Any] = {
        "id": req.id,
        "object": "response",
        "created_at": req.created_at,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "model": model or str(f.get("model")),
        "output": [],
        "usage": None,
    }
    for key in ECHOED:
        value = f.get(key)
        response[key] = DEFAULTS.get(key) if value is None else value
    response["store"] = req.store
    return response


def usage_object(u: Usage | None) -> dict[str, Any]:
    """Our Usage (OpenAI semantics) → the Response's usage (`ResponseUsage`)."""
    u = u or Usage()
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": u.cached_prompt_tokens,
            "cache_write_tokens": u.cache_write_tokens,
        },
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def message_item(id_: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": id_,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [output_text(text)],
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(
    req: ResponsesRequest, id_: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    item = {
        "id": id_,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }
    if name in req.namespaces:
        item["namespace"] = req.namespaces[name]
    return item


def reasoning_item(id_: str, text: str) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"id": id_, "type": "reasoning", "summary": summary, "status": "completed"}


def finish(response: dict[str, Any], finish_reason: str | None, usage: Usage | None) -> None:
    status, reason = STATUS.get(finish_reason or "stop", ("completed", None))
    response["status"] = status
    response["incomplete_details"] = {"reason": reason} if reason else None
    response["usage"] = usage_object(usage)


def from_chat(req: ResponsesRequest, chat: dict[str, Any], usage: Usage | None) -> dict[str, Any]:
    """A `chat.completion` (its first choice) → the Response object."""
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    assert isinstance(msg, dict)
    finish_reason = choice.get("finish_reason")
    cut = STATUS.get(str(finish_reason), ("completed", None))[0]
    output: list[dict[str, Any]] = []
    thought = msg.get("reasoning_content") or msg.get("reasoning")
    if isinstance(thought, str) and thought:
        output.append(reasoning_item(item_id(req, "rs", len(output)), thought))
    text = msg.get("content")
    if isinstance(text, str) and (text or not msg.get("tool_calls")):
        output.append(message_item(item_id(req, "msg", len(output)), text, cut))
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            continue
        output.append(
            function_call_item(
                req,
                item_id(req, "fc", len(output)),
                str(call.get("id") or item_id(req, "call", len(output))),
                str(fn.get("name") or ""),
                str(fn.get("arguments") or ""),
                cut,
            )
        )
    response = skeleton(req, str(chat.get("model") or ""))
    response["output"] = output
    finish(response, str(finish_reason) if finish_reason else None, usage)
    return response


def replayable(items: list[Any]) -> list[dict[str, Any]]:
    """Output items as input items for a later turn, sent to any upstream: ids the upstream
    never issued are dropped (so is a reasoning item without `encrypted_content`, which only
    the upstream that stored it could resolve)."""
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            text = "".join(
                str(p.get("text") or p.get("refusal") or "")
                for p in item.get("content") or ()
                if isinstance(p, dict)
            )
            out.append({"type": "message", "role": "assistant", "content": text})
        elif kind == "function_call":
            out.append({k: item[k] for k in ("type", "call_id", "name", "arguments") if k in item})
        elif kind == "reasoning" and item.get("encrypted_content"):
            keep = ("type", "id", "summary", "encrypted_content")
            out.append({k: item[k] for k in keep if k in item})
    return out

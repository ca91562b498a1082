"""OpenAI Responses wire format of the simulator's answers: the Response object and its event
stream (pure).

Shapes follow the official SDK's types (openai-python `types/responses/response.py`,
`response_output_message.py`, `response_function_tool_call.py`, `response_usage.py` and the
events of `response_stream_event.py`); the tests parse every answer with them, and the SDK's
`responses.stream` accumulator checks the order. Built with orjson rather than the SDK's
pydantic models, as `anthropic_wire.py` is, because the simulator runs without the test extras.

Stream order: `response.created`, `response.in_progress`, `response.output_item.added`, then a
message's `content_part.added`, one `output_text.delta` per token, `output_text.done`,
`content_part.done` — or a function call's `function_call_arguments.delta` per piece and
`.done` — then `response.output_item.done` and `response.completed` (`response.incomplete` when
the token limit cut the answer). Every event has its `sequence_number`, from 0; no `[DONE]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.simulator.plans import ChoicePlan, GenerationPlan
from gateway.simulator.wire import tool_call_id


@dataclass(frozen=True)
class Echo:
    """The request's parameters a Response repeats back."""

    body: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        value = self.body.get(key)
        return default if value is None else value


def usage(plan: GenerationPlan) -> dict[str, Any]:
    return {
        "input_tokens": plan.prompt_tokens,
        "input_tokens_details": {"cached_tokens": plan.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": plan.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
    }


def _status(choice: ChoicePlan) -> str:
    return "incomplete" if choice.finish_reason == "length" else "completed"


def _item(choice: ChoicePlan, request_id: str, status: str, text: str) -> dict[str, Any]:
    if choice.tool_name is not None:
        return {
            "id": f"fc_{request_id[5:]}",
            "type": "function_call",
            "status": status,
            "call_id": tool_call_id(request_id, 0),
            "name": choice.tool_name,
            "arguments": text,
        }
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": f"msg_{request_id[5:]}",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content if status != "in_progress" else [],
    }


def response(
    plan: GenerationPlan, echo: Echo, request_id: str, created: int, status: str | None = None
) -> dict[str, Any]:
    choice = plan.choices[0]
    final = status is None
    status = status or _status(choice)
    body: dict[str, Any] = {
        "id": request_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "metadata": echo.get("metadata", {}),
        "model": plan.model,
        "output": [_item(choice, request_id, status, choice.text)] if final else [],
        "parallel_tool_calls": echo.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": echo.get("reasoning", {"effort": None, "summary": None}),
        "store": echo.get("store", True),
        "temperature": echo.get("temperature", 1.0),
        "text": echo.get("text", {"format": {"type": "text"}}),
        "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools", []),
        "top_p": echo.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage(plan) if final else None,
        "user": echo.get("user"),
    }
    return body


def whole(plan: GenerationPlan, echo: Echo, request_id: str, created: int) -> bytes:
    return orjson.dumps(response(plan, echo, request_id, created))


class ResponsesFrames:
    """The event stream of one answer: `head()` + `frame(0..steps-1)` + `tail()`."""

    def __init__(self, plan: GenerationPlan, echo: Echo, request_id: str, created: int) -> None:
        self.plan, self.echo, self.request_id, self.created = plan, echo, request_id, created
        self.choice = plan.choices[0]
        self.steps = self.choice.steps
        self._seq = 0
        self._item_id = _item(self.choice, request_id, "in_progress", "")["id"]

    def _event(self, kind: str, payload: dict[str, Any]) -> bytes:
        body = {"type": kind, **payload, "sequence_number": self._seq}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"

    def _at(self) -> dict[str, Any]:
        return {"item_id": self._item_id, "output_index": 0}

    def head(self) -> bytes:
        skeleton = response(self.plan, self.echo, self.request_id, self.created, "in_progress")
        out = [
            self._event("response.created", {"response": skeleton}),
            self._event("response.in_progress", {"response": skeleton}),
            self._event(
                "response.output_item.added",
                {"output_index": 0, "item": _item(self.choice, self.request_id, "in_progress", "")},
            ),
        ]
        if self.choice.tool_name is None:
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            payload = {**self._at(), "content_index": 0, "part": part}
            out.append(self._event("response.content_part.added", payload))
        return b"".join(out)

    def frame(self, step: int) -> bytes:
        if self.choice.tool_name is None:
            delta = {**self._at(), "content_index": 0, "delta": self.choice.pieces[step]}
            return self._event("response.output_text.delta", {**delta, "logprobs": []})
        if step == 0:
            return b""  # the call's name went out with its item
        delta = {**self._at(), "delta": self.choice.pieces[step - 1]}
        return self._event("response.function_call_arguments.delta", delta)

    def tail(self) -> bytes:
        final = response(self.plan, self.echo, self.request_id, self.created)
        item = final["output"][0]
        text = self.choice.text
        out: list[bytes] = []
        if self.choice.tool_name is None:
            at = {**self._at(), "content_index": 0}
            done = {**at, "text": text, "logprobs": []}
            out.append(self._event("response.output_text.done", done))
            part = {**at, "part": item["content"][0]}
            out.append(self._event("response.content_part.done", part))
        else:
            done = {**self._at(), "arguments": text, "name": self.choice.tool_name}
            out.append(self._event("response.function_call_arguments.done", done))
        out.append(self._event("response.output_item.done", {"output_index": 0, "item": item}))
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        out.append(self._event(kind, {"response": final}))
        return b"".join(out)

    def error_event(self, status: int, message: str) -> bytes:
        """A failure midway: `response.failed`, whose error says what went wrong."""
        failed = response(self.plan, self.echo, self.request_id, self.created, "failed")
        code = "rate_limit_exceeded" if status == 429 else "server_error"
        failed["error"] = {"code": code, "message": message}
        return self._event("response.failed", {"response": failed})

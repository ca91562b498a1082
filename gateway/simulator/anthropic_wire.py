"""Anthropic Messages wire format of the simulator's answers: JSON, SSE events, errors (pure).

Shapes follow the official SDK's types (anthropic-sdk-python `types/message.py`, `usage.py`,
`raw_message_start_event.py`, `raw_content_block_*_event.py`, `raw_message_delta_event.py`,
`message_delta_usage.py`, `shared/error_response.py`); the tests validate every body and event
against them. Built with orjson rather than the SDK's pydantic models because the simulator
runs without the test extras and shares CPU with what it measures.

Stream order (https://docs.anthropic.com/en/docs/build-with-claude/streaming): message_start,
then per content block content_block_start → content_block_delta* → content_block_stop (a
`ping` after the first start), then message_delta (stop_reason, cumulative usage) and
message_stop. A tool_use block starts with its id and name and an empty input_json_delta,
then streams its input JSON in pieces.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.simulator.anthropic_plans import Block, MessagesPlan

# status → Anthropic error type (https://docs.anthropic.com/en/api/errors#http-errors)
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(
    status: int, message: str, request_id: str | None = None, kind: str | None = None
) -> bytes:
    """`{"type": "error", "error": {"type", "message"}, "request_id"}` (ErrorResponse)."""
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": kind or error_type(status), "message": message},
            "request_id": request_id,
        }
    )


def event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def usage(plan: MessagesPlan, output_tokens: int | None = None) -> dict[str, Any]:
    """`Usage`: input_tokens excludes what was read from or written to the prompt cache."""
    return {
        "input_tokens": plan.input_tokens,
        "cache_creation_input_tokens": plan.cache_write_5m + plan.cache_write_1h,
        "cache_read_input_tokens": plan.cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": plan.cache_write_5m,
            "ephemeral_1h_input_tokens": plan.cache_write_1h,
        },
        "output_tokens": plan.output_tokens if output_tokens is None else output_tokens,
        "service_tier": "standard",
    }


def tool_use_id(message_id: str, index: int) -> str:
    return f"toolu_{message_id[-16:]}{index}"


def _input(block: Block) -> dict[str, Any]:
    try:
        value = orjson.loads("".join(block.pieces) or "{}")
    except orjson.JSONDecodeError:  # cut short by max_tokens
        return {}
    return value if isinstance(value, dict) else {}


def message(plan: MessagesPlan, message_id: str) -> bytes:
    """The non-streamed answer: a `Message`."""
    content: list[dict[str, Any]] = []
    for i, b in enumerate(plan.blocks):
        if b.tool_name is None:
            content.append({"type": "text", "text": "".join(b.pieces)})
        else:
            content.append(
                {
                    "type": "tool_use",
                    "id": tool_use_id(message_id, i),
                    "name": b.tool_name,
                    "input": _input(b),
                }
            )
    return orjson.dumps(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": plan.generation.model,
            "content": content,
            "stop_reason": plan.stop_reason,
            "stop_sequence": plan.stop_sequence,
            "usage": usage(plan),
        }
    )


class MessagesFrames:
    """SSE of one streamed answer, in engine.py's Frames protocol: head + frame(0..steps-1)
    + tail; `error_event` is the in-stream error in Anthropic's format."""

    def __init__(self, plan: MessagesPlan, message_id: str) -> None:
        self.plan = plan
        self.message_id = message_id
        # step → (block index, step within the block)
        self._schedule = [(i, j) for i, b in enumerate(plan.blocks) for j in range(b.steps)]
        self.steps = len(self._schedule)

    def head(self) -> bytes:
        msg: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.plan.generation.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage(self.plan, output_tokens=1),
        }
        return event("message_start", {"type": "message_start", "message": msg})

    def frame(self, step: int) -> bytes:
        index, j = self._schedule[step]
        block = self.plan.blocks[index]
        out = []
        if j == 0:
            if index > 0:
                out.append(_stop(index - 1))
            out.append(self._start(index, block))
            if index == 0:
                out.append(event("ping", {"type": "ping"}))
        if block.tool_name is None:
            delta: dict[str, Any] = {"type": "text_delta", "text": block.pieces[j]}
        else:  # the name step carries the empty first input delta, as Anthropic sends it
            delta = {"type": "input_json_delta", "partial_json": block.pieces[j - 1] if j else ""}
        out.append(
            event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        )
        return b"".join(out)

    def _start(self, index: int, block: Block) -> bytes:
        content: dict[str, Any] = (
            {"type": "text", "text": ""}
            if block.tool_name is None
            else {
                "type": "tool_use",
                "id": tool_use_id(self.message_id, index),
                "name": block.tool_name,
                "input": {},
            }
        )
        return event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": content},
        )

    def tail(self) -> bytes:
        out = [_stop(len(self.plan.blocks) - 1)] if self.plan.blocks else []
        u = usage(self.plan)
        delta_usage = {
            k: u[k]
            for k in (
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
                "output_tokens",
            )
        }
        out.append(
            event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": self.plan.stop_reason,
                        "stop_sequence": self.plan.stop_sequence,
                    },
                    "usage": delta_usage,
                },
            )
        )
        out.append(event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def error_event(self, status: int, message: str) -> bytes:
        """A failure mid-stream: Anthropic sends an `error` event and ends the stream."""
        return event(
            "error", {"type": "error", "error": {"type": error_type(status), "message": message}}
        )


def _stop(index: int) -> bytes:
    return event("content_block_stop", {"type": "content_block_stop", "index": index})

"""Anthropic Messages wire shapes the gateway's `POST /v1/messages` reads and writes.

Requests are checked on the fields the gateway routes and accounts on, or that would otherwise
fail late (https://docs.anthropic.com/en/api/messages): `model`, `max_tokens` (required, as
Anthropic requires it), `messages` (user and assistant turns, and `system` ones: the anthropic
SDK's `MessageParam` allows that role and Claude Code sends it), `stream`, sampling ranges. Every
other field is kept verbatim for a native Anthropic upstream (`extra="allow"`, as in
`protocol/openai.py`). Errors leave in Anthropic's envelope
(https://docs.anthropic.com/en/api/errors): `{"type": "error", "error": {"type", "message"}}`,
or, once a stream has started, an `event: error` SSE event.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import GatewayError, InvalidRequest, UpstreamHTTPError
from gateway.protocol.limits import (
    DEFAULT_LIMITS,
    BodyLimits,
    check_messages,
    load_object,
    too_long,
)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class MessageParam(_Wire):
    role: Literal["user", "assistant", "system"]
    content: str | list[dict[str, Any]]


class MessagesRequestModel(_Wire):
    model: Annotated[str, Field(min_length=1)]
    max_tokens: Annotated[int, Field(ge=1)]
    messages: Annotated[list[MessageParam], Field(min_length=1)]
    system: str | list[dict[str, Any]] | None = None
    stream: bool | None = None
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    stop_sequences: list[str] | None = None
    metadata: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None


def parse_messages_body(raw: bytes, limits: BodyLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Bytes → the checked Messages body, or InvalidRequest naming the field (Anthropic's
    style: `messages.0.role: …`); the shape limits first (protocol/limits.py)."""
    body = load_object(raw, limits)
    check_messages(body.get("messages"), limits)
    system = body.get("system")
    if isinstance(system, list) and len(system) > limits.max_content_parts:
        raise too_long("system", len(system), limits.max_content_parts, "limits.max_content_parts")
    try:
        MessagesRequestModel.model_validate(body)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = [str(x) for x in err["loc"] if not (isinstance(x, str) and "[" in x)]
        field = ".".join(loc)
        msg = "Field required" if err["type"] == "missing" else err["msg"]
        raise InvalidRequest(f"{field}: {msg}", param=loc[0] if loc else None) from None
    return body


# Anthropic's error types (anthropic-sdk-python `types/shared/error_type.py`) by status
# (https://docs.anthropic.com/en/api/errors#http-errors).
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
KNOWN_TYPES = frozenset(ERROR_TYPES.values())


def error_type(error: GatewayError) -> str:
    """The Anthropic `error.type` for one of our errors: an Anthropic upstream's own type
    when it has one, else the type Anthropic documents for the status."""
    if isinstance(error, UpstreamHTTPError) and error.type in KNOWN_TYPES:
        return error.type
    return error_type_for(None, error.status_code)


def error_type_for(kind: str | None, status: int) -> str:
    """`kind` when Anthropic knows it, else the type Anthropic documents for the status."""
    if kind in KNOWN_TYPES:
        assert kind is not None
        return kind
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_object(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_body(error: GatewayError) -> bytes:
    return orjson.dumps(error_object(error_type(error), error.message))


def sse_event(name: str, payload: dict[str, Any]) -> bytes:
    """One Anthropic SSE event: its name on an `event:` line, its JSON on a `data:` line."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def error_event(kind: str, message: str) -> bytes:
    return sse_event("error", error_object(kind, message))

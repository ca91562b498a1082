"""OpenAI Responses request shape the gateway's `POST /v1/responses` checks
(https://platform.openai.com/docs/api-reference/responses/create; openai-python
`types/responses/response_create_params.py`).

Strict types on the top-level fields the gateway reads, so a wrong type is a 400 naming the
parameter; `extra="allow"` for everything else (unknown top-level fields are ignored, as
OpenAI-compatible servers do, and sent untouched to a native upstream). The items of `input`
and `tools` are checked where they are translated (`codecs/responses_input.py`,
`codecs/responses_request.py`), which names the offending item.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import InvalidRequest
from gateway.protocol.limits import DEFAULT_LIMITS, BodyLimits, check_messages, load_object
from gateway.protocol.openai import invalid


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class TextFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class TextConfig(_Wire):
    format: TextFormat | None = None


class ReasoningConfig(_Wire):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class ResponseCreate(_Wire):
    model: Annotated[str, Field(min_length=1)]
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    store: bool | None = None
    stream: bool | None = None
    previous_response_id: Annotated[str, Field(min_length=1)] | None = None
    reasoning: ReasoningConfig | None = None
    include: list[str] | None = None
    prompt_cache_key: str | None = None


# Parameters whose meaning the gateway cannot honour: silently ignoring them would lose the
# client's state or template, so they are refused by name.
UNSUPPORTED = {
    "conversation": "The Conversations API is not supported by this gateway; chain responses "
    "with `previous_response_id` instead.",
    "prompt": "Reusable prompts (`prompt`) are not supported by this gateway; send "
    "`instructions` and `input` instead.",
}


def parse_create_body(raw: bytes, limits: BodyLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Bytes → the checked Responses body, or InvalidRequest naming the parameter."""
    body = load_object(raw, limits)
    check_messages(body.get("input"), limits, field="input")
    try:
        ResponseCreate.model_validate(body)
    except ValidationError as e:
        raise invalid(e) from None
    for name, message in UNSUPPORTED.items():
        if body.get(name) is not None:
            raise InvalidRequest(message, param=name, code="unsupported_parameter")
    if body.get("input") is None and body.get("previous_response_id") is None:
        raise InvalidRequest(
            "Missing required parameter: `input`.", param="input", code="missing_required_parameter"
        )
    return body

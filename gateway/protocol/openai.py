"""OpenAI request shapes the gateway validates (https://platform.openai.com/docs/api-reference).

Strict types on the fields we read or that upstreams would choke on — so a wrong type is a
clear 400 naming the field, not an upstream 500 — and `extra="allow"` for everything else,
which is forwarded verbatim (vLLM's OpenAIBaseModel takes the same stance). The validated model
is only a check: the body forwarded upstream is the client's own dict.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.core import ClientRequest, Endpoint, Usage
from gateway.errors import InvalidRequest
from gateway.protocol.limits import DEFAULT_LIMITS, BodyLimits, check_messages, load_object


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class StreamOptions(_Wire):
    include_usage: bool | None = None


class Message(_Wire):
    role: str
    content: Any = None


class _Generation(_Wire):
    model: Annotated[str, Field(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None


class ChatCompletionRequest(_Generation):
    messages: Annotated[list[Message], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None


class CompletionRequest(_Generation):
    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None


class EmbeddingRequest(_Wire):
    model: Annotated[str, Field(min_length=1)]
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None


_MODELS: dict[Endpoint, type[_Wire]] = {
    "chat": ChatCompletionRequest,
    "completions": CompletionRequest,
    "embeddings": EmbeddingRequest,
}


def parse_request(
    endpoint: Endpoint, raw: bytes, limits: BodyLimits = DEFAULT_LIMITS
) -> ClientRequest:
    """Bytes → ClientRequest, or InvalidRequest naming what is wrong (the shape limits first:
    see protocol/limits.py)."""
    body = load_object(raw, limits)
    if endpoint == "chat":
        check_messages(body.get("messages"), limits)
    try:
        _MODELS[endpoint].model_validate(body)
    except ValidationError as e:
        raise invalid(e) from None
    stream = body.get("stream") is True
    opts = body.get("stream_options")
    if opts is not None and not stream:
        raise InvalidRequest(
            "`stream_options` is only allowed when `stream` is true.", param="stream_options"
        )
    return ClientRequest(
        endpoint=endpoint,
        body=body,
        model=body["model"],
        stream=stream,
        include_usage=bool(stream and opts and opts.get("include_usage")),
    )


def invalid(e: ValidationError) -> InvalidRequest:
    err = e.errors(include_url=False)[0]
    loc = [x for x in err["loc"] if not (isinstance(x, str) and "[" in x)]
    # pydantic reports union members in the location (e.g. 'str'); keep the field path only
    path = ".".join(str(x) if not isinstance(x, int) else f"[{x}]" for x in loc)
    path = path.replace(".[", "[")
    field = str(loc[0]) if loc else None
    if err["type"] == "missing":
        return InvalidRequest(
            f"Missing required parameter: `{path}`.", param=field, code="missing_required_parameter"
        )
    return InvalidRequest(
        f"Invalid value for `{path}`: {err['msg']}.", param=field, code="invalid_value"
    )


def usage_to_openai(u: Usage) -> dict[str, Any]:
    """Our Usage → OpenAI's `usage` object (openai-python `CompletionUsage`, details included)."""
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_prompt_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }

"""The provider seam: what an adapter for one API family must do, with no I/O in it.

An adapter turns the client's OpenAI-shaped request into the provider's HTTP request
(`build_request`), the provider's answer back into an OpenAI-shaped body plus normalised usage
(`parse_response`, `parse_error`), and a provider's SSE events into OpenAI chunk events
(`stream_translator`: a small per-request state machine). `transport.py` does the sending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from gateway.config import ModelConfig, ProviderConfig
from gateway.errors import UpstreamHTTPError, UpstreamProtocolError
from gateway.pricing.cost import Price, Usage
from gateway.sse import Event

Endpoint = Literal["chat", "completions", "embeddings"]


@dataclass(frozen=True, slots=True)
class Target:
    """One configured model at one provider: what an attempt is made against."""

    model: str  # the name clients send
    upstream_model: str
    provider: ProviderConfig
    price: Price
    config: ModelConfig | None = None  # per-model adapter settings (default_max_tokens, …)


@dataclass(slots=True)
class ClientRequest:
    """The client's JSON body (kept verbatim for the upstream) and the fields we act on."""

    endpoint: Endpoint
    body: dict[str, Any]
    model: str
    stream: bool = False
    include_usage: bool = False  # the client asked for the final usage chunk
    min_tier: int | None = None  # x-gateway-min-tier: routes skip models below it


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool


@dataclass(slots=True)
class Result:
    """A complete (non-streamed) answer, already in the OpenAI shape the client expects."""

    body: bytes
    usage: Usage | None
    upstream_request_id: str | None = None


@dataclass(slots=True)
class StreamState:
    """What a translator learned from a stream, read when the stream ends."""

    usage: Usage | None = None
    upstream_request_id: str | None = None
    finish_reason: str | None = None
    chunks: int = 0  # events carrying choices: the fallback token estimate when usage is absent
    error: dict[str, Any] | None = field(default=None)
    done: bool = False


def json_object(body: bytes, target: Target) -> dict[str, Any]:
    """An upstream's JSON body as a dict, or the protocol error every adapter raises."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError(
            f"{target.provider.name}: the upstream answered with a body that is not JSON"
        ) from None
    if not isinstance(data, dict):
        raise UpstreamProtocolError(f"{target.provider.name}: unexpected upstream answer")
    return data


def usage_to_openai(u: Usage) -> dict[str, Any]:
    """Our Usage → OpenAI's `usage` object (openai-python `CompletionUsage`, details included)."""
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_prompt_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


class StreamTranslator(Protocol):
    state: StreamState

    def feed(self, event: Event) -> list[bytes]:
        """Return the SSE-framed bytes to send to the client for this upstream event."""
        ...

    def finish(self) -> list[bytes]:
        """Bytes to send when the upstream stream ended (e.g. a missing `[DONE]`)."""
        ...


class Adapter(Protocol):
    endpoints: frozenset[Endpoint]  # the OpenAI endpoints this family can serve

    def build_request(self, request: ClientRequest, target: Target) -> UpstreamRequest: ...

    def parse_response(self, body: bytes, request: ClientRequest, target: Target) -> Result: ...

    def parse_error(
        self, status: int, body: bytes, headers: dict[str, str], target: Target
    ) -> UpstreamHTTPError: ...

    def stream_translator(self, request: ClientRequest, target: Target) -> StreamTranslator: ...

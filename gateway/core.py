"""The neutral types every layer speaks: requests, targets, results, stream chunks, usage, price.

Nothing here does I/O or knows a wire format beyond naming it. The HTTP edge and the client
API codecs (`gateway/codecs/`) turn wire bodies into a `ClientRequest` and render `Result`s and
`Chunk`s back; provider adapters (`gateway/providers/`) turn a `ClientRequest` into an
`UpstreamRequest` and the upstream's answer into a `Result` or `Chunk`s; routing picks `Target`s;
pricing turns `Usage` and a `Price` into money. Every one of them imports this module and none of
the others' internals.

The neutral request body is OpenAI chat's shape: it is the superset every adapter already
translates from, and the wire format of three of the client endpoints. A codec whose wire
format an adapter speaks natively (Anthropic's Messages on `/v1/messages`, OpenAI's Responses
on `/v1/responses`) also keeps the client's own body in `ClientRequest.native_body`, so that
adapter can send it untouched.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from gateway.config import ModelConfig, ProviderConfig
from gateway.errors import InvalidRequest

# The client-facing endpoints: each is a codec, and the `endpoint` column of the ledger.
Endpoint = Literal["chat", "completions", "embeddings", "messages", "responses"]
# What an adapter is asked to do upstream; `messages` and `responses` requests are chat operations.
Operation = Literal["chat", "completions", "embeddings"]
# A client API's wire format: "openai" (chat, completions, embeddings), "anthropic" (Messages)
# or "openai-responses" (OpenAI's Responses API).
WireFormat = str

ZERO = Decimal(0)
PER_MTOK = Decimal(1_000_000)


def new_request_id() -> str:
    """32 hex chars: 48 bits of milliseconds then 80 random bits (UUIDv7's layout, minus the
    version bits). Time-ordered ids append to the ledger's primary-key index instead of
    splitting random pages. Ids need to be unique, not secret: Python's PRNG (seeded from the
    OS per process) avoids a getrandbits syscall per request that showed up in the profile."""
    return f"{int(time.time() * 1000):012x}{random.getrandbits(80):020x}"


# --- usage and price: the facts money is computed from ---------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts in OpenAI's semantics, which every adapter normalises to: `prompt_tokens`
    counts the whole prompt, of which `cached_prompt_tokens` were read from the provider's
    prompt cache and `cache_write_tokens` written to it; `completion_tokens` includes any
    `reasoning_tokens` (shared/reference/ECONOMICS.md §7.4)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token. Cache rates fall back to the input rate when a provider has none."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    source: str = "table"  # "table" (litellm) or "config" (an override)

    @classmethod
    def per_mtok(
        cls,
        input: float | str | Decimal,
        output: float | str | Decimal,
        cache_read: float | str | Decimal | None = None,
        cache_write: float | str | Decimal | None = None,
        source: str = "config",
    ) -> Price:
        def d(x: float | str | Decimal | None) -> Decimal | None:
            return None if x is None else Decimal(str(x)) / PER_MTOK

        return cls(d(input) or ZERO, d(output) or ZERO, d(cache_read), d(cache_write), source)


# --- what a request is and where it goes ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """One configured model at one provider: what an attempt is made against."""

    model: str  # the name clients send
    upstream_model: str
    provider: ProviderConfig
    price: Price
    config: ModelConfig | None = None  # per-model adapter settings (default_max_tokens, …)


# Each endpoint's operation upstream and its wire format (what a native adapter must speak).
ENDPOINTS: dict[Endpoint, tuple[Operation, WireFormat]] = {
    "chat": ("chat", "openai"),
    "completions": ("completions", "openai"),
    "embeddings": ("embeddings", "openai"),
    "messages": ("chat", "anthropic"),
    "responses": ("chat", "openai-responses"),
}


@dataclass(slots=True)
class ClientRequest:
    """One client request, as every layer past the codec sees it.

    `body` is OpenAI-shaped (the client's own dict on the OpenAI endpoints: forwarded verbatim
    to OpenAI-family upstreams). On an endpoint of another wire format, `native_body` and
    `native_headers` hold the client's own body and protocol headers.
    """

    endpoint: Endpoint
    body: dict[str, Any]
    model: str
    stream: bool = False
    include_usage: bool = False  # an OpenAI client asked for the final usage chunk
    min_tier: int | None = None  # x-gateway-min-tier: routes skip models below it
    task: str | None = None  # x-gateway-task: what quality evidence is kept under
    native_body: dict[str, Any] | None = None
    native_headers: dict[str, str] = field(default_factory=dict)
    # Set when only an adapter speaking the client's wire natively can serve the request (a
    # Responses `tool_choice` forcing a hosted tool): raised for any target that would need
    # the request translated.
    native_only: InvalidRequest | None = None

    @property
    def operation(self) -> Operation:
        return ENDPOINTS[self.endpoint][0]

    @property
    def wire(self) -> WireFormat:
        return ENDPOINTS[self.endpoint][1]


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool


# --- what comes back ------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    """A complete (non-streamed) answer.

    `wire` is the format `body`/`data` are in: "openai" (a `chat.completion`, completion or
    embedding list) unless the adapter answered natively in the client's own format.
    `body` is the encoded answer when the upstream's bytes can be sent as they are (None when
    the answer was translated: the codec encodes `data` once).
    """

    data: dict[str, Any]
    usage: Usage | None
    upstream_request_id: str | None = None
    body: bytes | None = None
    wire: WireFormat = "openai"


# Stream chunks: what a provider's stream translator yields and a codec renders. The first
# chunk of a translated stream is `Start`; `End` closes a complete answer and `StreamError`
# an incomplete one. `Raw` is an upstream event already in the client's wire format (an
# adapter speaking it natively), forwarded byte for byte.


@dataclass(frozen=True, slots=True)
class Start:
    id: str
    model: str
    created: int


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    index: int = 0  # the choice (OpenAI `n`; Gemini candidates)


@dataclass(frozen=True, slots=True)
class Reasoning:
    text: str
    index: int = 0


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call's start (`id` and `name` set) or a fragment of its JSON arguments."""

    call: int  # the call's position in its choice's tool_calls, from 0
    arguments: str = ""
    id: str | None = None
    name: str | None = None
    index: int = 0
    extra: dict[str, Any] | None = None  # provider extras (Gemini's thought signature)


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str  # OpenAI's finish_reason vocabulary
    index: int = 0


@dataclass(frozen=True, slots=True)
class UsageReport:
    usage: Usage


@dataclass(frozen=True, slots=True)
class StreamError:
    """The upstream failed after the stream started: the client gets it in-band."""

    type: str  # the upstream's error type (or ours)
    message: str
    status: int = 502  # what the ledger records, and what codecs map to their error types
    code: str | None = None


@dataclass(frozen=True, slots=True)
class End:
    pass


@dataclass(frozen=True, slots=True)
class Raw:
    data: bytes  # one whole SSE event, framing included
    content: bool = False  # carries generated content (text, tool call or reasoning)
    usage_only: bool = False  # OpenAI's final usage chunk (choices: [])


Chunk = Start | Text | Reasoning | ToolCall | Finish | UsageReport | StreamError | End | Raw
CONTENT_CHUNKS = (Text, Reasoning, ToolCall)


def is_content(chunk: Chunk) -> bool:
    """Generated content: what time to first token is measured to, for every provider."""
    return isinstance(chunk, CONTENT_CHUNKS) or (isinstance(chunk, Raw) and chunk.content)


@dataclass(slots=True)
class StreamState:
    """What a translator learned from a stream, read when the stream ends."""

    usage: Usage | None = None
    upstream_request_id: str | None = None
    finish_reason: str | None = None
    chunks: int = 0  # events carrying choices: the fallback token estimate when usage is absent
    error: dict[str, Any] | None = None
    done: bool = False


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A finished response that a later request may continue (`previous_response_id`).

    Nothing here is ever mutated once made: a pending record is shared by every reader
    until the store has written it."""

    id: str
    created_at: float  # time.time()
    team: str | None
    model: str  # the model (or route) the client asked for
    previous_response_id: str | None
    status: str
    context: list[Any]  # earlier turns' items, ready to send again
    input: list[Any]  # this turn's input items, as the client sent them
    output: list[Any]  # the Response's output items
    response: dict[str, Any]  # the Response object (its `output` is `output`)
    api_key_id: str | None = None

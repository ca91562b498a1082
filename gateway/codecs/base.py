"""The codec seam: what a client-facing API must do, with no I/O, routing or pricing in it.

A codec parses its wire body into the neutral `ClientRequest` (or raises `InvalidRequest`
naming the field), renders a `Result` and a stream's typed chunks back into its wire format,
and renders errors in its own envelope — before the response starts (`error_body`) and
in-band once it has (`StreamRenderer.fail`). Bytes are made here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gateway.core import Chunk, ClientRequest, Endpoint, Result, StoredResponse
from gateway.errors import GatewayError

Headers = list[tuple[bytes, bytes]]


class StreamRenderer(Protocol):
    def render(self, chunks: list[Chunk]) -> bytes:
        """The wire bytes of the chunks one upstream read produced."""
        ...

    def fail(self, error: GatewayError) -> bytes:
        """An error after the response started, in-band; the stream ends after it."""
        ...


class Conversation(Protocol):
    """A stateful client API's side of stored conversations (the Responses API's
    `previous_response_id`), pure: the edge does the store's I/O around it."""

    def start(
        self,
        request: ClientRequest,
        request_id: str,
        created_at: float,
        team: str | None,
        keep: Callable[[StoredResponse], None],
    ) -> str | None:
        """Give the request its id; `keep` takes its record once its answer is final (if the
        client asked for it to be stored). Returns the stored response it continues, if any."""
        ...

    def extend(self, request: ClientRequest, previous: StoredResponse) -> None:
        """Put the earlier turns in front of the request's own input."""
        ...

    def missing(self, response_id: str) -> GatewayError:
        """The error for a `previous` id that is unknown (or deleted, or another team's)."""
        ...


class Codec(Protocol):
    endpoint: Endpoint
    conversation: Conversation | None  # None: a stateless API

    def parse(self, raw: bytes, headers: Headers) -> ClientRequest: ...

    def render(self, result: Result, request: ClientRequest) -> bytes: ...

    def stream_renderer(self, request: ClientRequest) -> StreamRenderer: ...

    def error_body(self, error: GatewayError) -> bytes: ...

    def headers(self, request: ClientRequest, native: bool) -> Headers:
        """Response headers of this API's own (`native`: the upstream spoke its wire)."""
        ...


def header(headers: Headers, name: bytes) -> str | None:
    """One request header's value (names are lower-case in ASGI)."""
    for k, v in headers:
        if k == name:
            return v.decode("latin-1")
    return None

"""The codec seam: what a client-facing API must do, with no I/O, routing or pricing in it.

A codec parses its wire body into the neutral `ClientRequest` (or raises `InvalidRequest`
naming the field), renders a `Result` and a stream's typed chunks back into its wire format,
and renders errors in its own envelope — before the response starts (`error_body`) and
in-band once it has (`StreamRenderer.fail`). Bytes are made here, once.
"""

from __future__ import annotations

from typing import Protocol

from gateway.core import Chunk, ClientRequest, Endpoint, Result
from gateway.errors import GatewayError

Headers = list[tuple[bytes, bytes]]


class StreamRenderer(Protocol):
    def render(self, chunks: list[Chunk]) -> bytes:
        """The wire bytes of the chunks one upstream read produced."""
        ...

    def fail(self, error: GatewayError) -> bytes:
        """An error after the response started, in-band; the stream ends after it."""
        ...


class Codec(Protocol):
    endpoint: Endpoint

    def parse(self, raw: bytes, headers: Headers) -> ClientRequest: ...

    def render(self, result: Result) -> bytes: ...

    def stream_renderer(self, request: ClientRequest) -> StreamRenderer: ...

    def error_body(self, error: GatewayError) -> bytes: ...


def header(headers: Headers, name: bytes) -> str | None:
    """One request header's value (names are lower-case in ASGI)."""
    for k, v in headers:
        if k == name:
            return v.decode("latin-1")
    return None

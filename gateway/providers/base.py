"""The provider seam: what an adapter for one API family must do, with no I/O in it.

An adapter turns a `ClientRequest` into the provider's HTTP request (`build_request`), the
provider's answer back into a `Result` (`parse_response`, `parse_error`), and the provider's
SSE events into typed chunks (`stream_translator`: a small per-request state machine).
`transport.py` does the sending; client API codecs render results and chunks.

An adapter may speak client wire formats natively (`wires`): OpenAI's chat and — for a
provider configured with `responses_api` — Responses for the OpenAI family, Anthropic's
Messages for Anthropic. `native(request, target)` says whether this request goes to this
target that way: sent as the client wrote it and answered with the upstream's own bytes
(`Result.body` with `Result.wire` set, `Raw` chunks), read only for usage, ids and errors; any
other request goes through the adapter's translation.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from gateway.core import (
    Chunk,
    ClientRequest,
    Operation,
    Result,
    StreamState,
    Target,
    UpstreamRequest,
    WireFormat,
)
from gateway.errors import UpstreamHTTPError, UpstreamProtocolError
from gateway.sse import Event


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


class StreamTranslator(Protocol):
    state: StreamState

    def feed(self, event: Event) -> list[Chunk]:
        """The chunks one upstream event makes (none, one or several)."""
        ...

    def finish(self) -> list[Chunk]:
        """Chunks to send when the upstream stream ended (e.g. an error if it was cut)."""
        ...


class Adapter(Protocol):
    operations: frozenset[Operation]  # what this family can do upstream
    wires: frozenset[WireFormat]  # the client wire formats it can speak natively

    def native(self, request: ClientRequest, target: Target) -> bool:
        """Whether `request` goes to `target` in the client's own wire format."""
        ...

    def build_request(self, request: ClientRequest, target: Target) -> UpstreamRequest: ...

    def parse_response(self, body: bytes, request: ClientRequest, target: Target) -> Result: ...

    def parse_error(
        self, status: int, body: bytes, headers: dict[str, str], target: Target
    ) -> UpstreamHTTPError: ...

    def stream_translator(self, request: ClientRequest, target: Target) -> StreamTranslator: ...

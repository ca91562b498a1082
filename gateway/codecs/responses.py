"""The Responses codec: `POST /v1/responses`, for apps built on OpenAI's newest API.

The body is checked by `protocol/responses.py` and kept as the request's `native_body` (a
provider with `responses_api: true` gets it as written); every other model gets it translated
to the neutral chat body (`responses_request.py`, `responses_input.py`). Answers: a native
upstream's bytes as they came, others built into a Response object (`responses_output.py`);
streams: `responses_stream.py`. Errors use OpenAI's envelope.

Stored conversations (`store`, `previous_response_id`) are this codec's `conversation`: it
names the response (`resp_` + the request id, so a Response and its ledger row share an id),
writes a chain's earlier turns in front of the new input, and hands the finished Response to
the store. The store itself (I/O) is `conversations/store.py`, driven by the edge.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from gateway.codecs.base import Conversation, Headers, StreamRenderer
from gateway.codecs.responses_input import as_items
from gateway.codecs.responses_output import from_chat, replayable
from gateway.codecs.responses_request import (
    ResponsesRequest,
    chat_body,
    completed,
    native_body,
)
from gateway.codecs.responses_stream import ResponsesStreamRenderer
from gateway.core import ClientRequest, Endpoint, Result, StoredResponse, WireFormat
from gateway.errors import GatewayError, NotFound
from gateway.protocol.limits import DEFAULT_LIMITS, BodyLimits
from gateway.protocol.responses import parse_create_body

DROPPED_TOOLS = b"x-gateway-dropped-tools"


def _responses(request: ClientRequest) -> ResponsesRequest:
    assert isinstance(request, ResponsesRequest), "the Responses codec parsed this request"
    return request


def record(req: ResponsesRequest, team: str | None) -> StoredResponse:
    response = req.response or {}
    return StoredResponse(
        id=str(response.get("id") or req.id),
        created_at=float(response.get("created_at") or req.created_at),
        team=team,
        model=req.model,
        previous_response_id=req.fields.get("previous_response_id"),
        status=str(response.get("status")),
        context=req.context,
        input=req.input_items,
        output=list(response.get("output") or ()),
        response=response,
    )


class ResponsesConversation:
    def start(
        self,
        request: ClientRequest,
        request_id: str,
        created_at: float,
        team: str | None,
        keep: Callable[[StoredResponse], None],
    ) -> str | None:
        req = _responses(request)
        req.id = f"resp_{request_id}"
        req.created_at = int(created_at)
        req.team = team
        if req.store:
            req.keep = lambda r: keep(record(r, team))
        previous = req.fields.get("previous_response_id")
        return previous if isinstance(previous, str) else None

    def extend(self, request: ClientRequest, previous: StoredResponse) -> None:
        req = _responses(request)
        req.context = [*previous.context, *previous.input, *replayable(previous.output)]
        req.body = chat_body(req)
        req.native_body = native_body(req)

    def missing(self, response_id: str) -> GatewayError:
        return NotFound(
            f"Previous response with id '{response_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )


class ResponsesCodec:
    endpoint: Endpoint = "responses"
    wire: WireFormat = "openai-responses"
    conversation: Conversation | None = ResponsesConversation()

    def __init__(self, limits: BodyLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits

    def parse(self, raw: bytes, headers: Headers) -> ClientRequest:
        body = parse_create_body(raw, self.limits)
        req = ResponsesRequest(
            "responses",
            {},
            body["model"],
            body.get("stream") is True,
            native_body=body,
            fields=body,
            input_items=as_items(body.get("input")),
            store=body.get("store") is not False,
        )
        if body.get("previous_response_id") is None:
            req.body = chat_body(req)  # else once the earlier turns are in (`extend`)
        return req

    def render(self, result: Result, request: ClientRequest) -> bytes:
        req = _responses(request)
        if result.wire == self.wire and result.body is not None:
            completed(req, result.data)
            return result.body
        response = from_chat(req, result.data, result.usage)
        completed(req, response)
        return orjson.dumps(response)

    def stream_renderer(self, request: ClientRequest) -> StreamRenderer:
        return ResponsesStreamRenderer(_responses(request))

    def error_body(self, error: GatewayError) -> bytes:
        return error.body()

    def headers(self, request: ClientRequest, native: bool) -> Headers:
        dropped = _responses(request).dropped_tools
        if native or not dropped:
            return []
        return [(DROPPED_TOOLS, ", ".join(dropped).encode())]

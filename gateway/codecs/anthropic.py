"""The Anthropic Messages codec: `POST /v1/messages`, for apps built on the Anthropic SDK.

The body is checked by `protocol/anthropic.py`, kept as the request's `native_body` (an
Anthropic model gets it as written, with the client's `anthropic-beta` header) and translated
to the neutral chat body for every other model (`anthropic_bridge.py`). Answers: an Anthropic
upstream's bytes as they came, others translated to a `Message`; streams: see
`anthropic_stream.py`. Errors use Anthropic's envelope, so the SDK raises its own typed
exceptions (RateLimitError, OverloadedError…).
"""

from __future__ import annotations

import orjson

from gateway.codecs.anthropic_bridge import to_chat_body, to_message
from gateway.codecs.anthropic_stream import MessagesStreamRenderer
from gateway.codecs.base import Conversation, Headers, StreamRenderer, header
from gateway.core import ClientRequest, Endpoint, Result, WireFormat
from gateway.errors import GatewayError
from gateway.protocol.anthropic import error_body, parse_messages_body
from gateway.protocol.limits import DEFAULT_LIMITS, BodyLimits


class MessagesCodec:
    endpoint: Endpoint = "messages"
    wire: WireFormat = "anthropic"
    conversation: Conversation | None = None

    def __init__(self, limits: BodyLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits

    def parse(self, raw: bytes, headers: Headers) -> ClientRequest:
        body = parse_messages_body(raw, self.limits)
        stream = body.get("stream") is True
        beta = header(headers, b"anthropic-beta")
        return ClientRequest(
            "messages",
            to_chat_body(body, stream),
            body["model"],
            stream,
            native_body=body,
            native_headers={"anthropic-beta": beta} if beta else {},
        )

    def render(self, result: Result, request: ClientRequest) -> bytes:
        if result.wire == self.wire and result.body is not None:
            return result.body
        return orjson.dumps(to_message(result.data, result.usage))

    def headers(self, request: ClientRequest, native: bool) -> Headers:
        return []

    def stream_renderer(self, request: ClientRequest) -> StreamRenderer:
        return MessagesStreamRenderer(request.model)

    def error_body(self, error: GatewayError) -> bytes:
        return error_body(error)

"""The Anthropic Messages family (`POST /v1/messages`), wired to the `Adapter` protocol.

Anthropic's Messages wire is this adapter's native format. A request that arrived on the
gateway's own `/v1/messages` is sent as the client wrote it (with the upstream's model name,
the system prompt marked cacheable for models with `auto_cache_system_prompt`, and the
client's `anthropic-beta` header) and answered with the upstream's own bytes. Any other
request is OpenAI-shaped and translated (`anthropic_request`, `anthropic_stream`); the shared
wire facts are in `anthropic_common`. Sending is `transport.py`'s job.
"""

from __future__ import annotations

import orjson

from gateway.core import ClientRequest, Operation, Result, Target, UpstreamRequest, WireFormat
from gateway.errors import UpstreamHTTPError, UpstreamProtocolError
from gateway.providers.anthropic_common import (
    anthropic_headers,
    cache_system_prompt,
    error_from_anthropic,
    messages_url,
    usage_from_anthropic,
)
from gateway.providers.anthropic_request import build_messages_body, chat_completion
from gateway.providers.anthropic_stream import AnthropicPassthrough, AnthropicStream
from gateway.providers.base import StreamTranslator


class AnthropicAdapter:
    operations: frozenset[Operation] = frozenset({"chat"})
    wires: frozenset[WireFormat] = frozenset({"anthropic"})

    def native(self, request: ClientRequest, target: Target) -> bool:
        return request.wire in self.wires and request.native_body is not None

    def build_request(self, request: ClientRequest, target: Target) -> UpstreamRequest:
        headers = anthropic_headers(target)
        if self.native(request, target) and request.native_body is not None:
            body = {**request.native_body, "model": target.upstream_model}
            cfg = target.config
            if body.get("system") and cfg is not None and cfg.auto_cache_system_prompt:
                body["system"] = cache_system_prompt(body["system"])
            beta = request.native_headers.get("anthropic-beta")
            if beta:
                headers["anthropic-beta"] = beta
        else:
            body = build_messages_body(request, target)
        return UpstreamRequest(
            "POST", messages_url(target), headers, orjson.dumps(body), request.stream
        )

    def parse_response(self, body: bytes, request: ClientRequest, target: Target) -> Result:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or data.get("type") != "message":
            raise UpstreamProtocolError(
                f"{target.provider.name}: the upstream answer is not an Anthropic message"
            )
        usage = usage_from_anthropic(data.get("usage"))
        rid = data.get("id") if isinstance(data.get("id"), str) else None
        if self.native(request, target):
            return Result(data, usage, rid, body=body, wire=request.wire)
        return Result(chat_completion(data, usage, target.upstream_model), usage, rid)

    def parse_error(
        self, status: int, body: bytes, headers: dict[str, str], target: Target
    ) -> UpstreamHTTPError:
        return error_from_anthropic(status, body, headers, target)

    def stream_translator(self, request: ClientRequest, target: Target) -> StreamTranslator:
        if self.native(request, target):
            return AnthropicPassthrough(target)
        return AnthropicStream(target)

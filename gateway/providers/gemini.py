"""The Gemini API family (Google AI Studio's Generative Language API): chat only.

`POST {api_base}/v1beta/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse`
for streams (https://ai.google.dev/api/generate-content). The key travels in the
`x-goog-api-key` header, never in the URL's `?key=`, so it cannot end up in a log of URLs.
The translations live beside this module: `gemini_request` (OpenAI body → Gemini body),
`gemini_response` (answers, usage, finish reasons, errors), `gemini_stream` (SSE events →
chunks); this module only wires them to the `Adapter` protocol.
"""

from __future__ import annotations

import re
import time

import orjson

from gateway.core import ClientRequest, Operation, Result, Target, UpstreamRequest, WireFormat
from gateway.errors import UpstreamHTTPError
from gateway.providers.base import json_object
from gateway.providers.gemini_request import to_gemini
from gateway.providers.gemini_response import completion, error_from_gemini, usage_from_gemini
from gateway.providers.gemini_stream import GeminiStream

_VERSIONED = re.compile(r"/v1(alpha|beta)?$")  # an api_base that already names the version


def model_url(target: Target, stream: bool) -> str:
    base = target.provider.api_base.rstrip("/")
    if not _VERSIONED.search(base):
        base += "/v1beta"
    model = target.upstream_model
    if "/" not in model:  # "gemini-1.5-flash"; "models/…" and "tunedModels/…" are kept
        model = f"models/{model}"
    return (
        f"{base}/{model}:streamGenerateContent?alt=sse"
        if stream
        else f"{base}/{model}:generateContent"
    )


class GeminiAdapter:
    operations: frozenset[Operation] = frozenset({"chat"})
    wires: frozenset[WireFormat] = frozenset()  # no client speaks Gemini's wire to the gateway

    def native(self, request: ClientRequest, target: Target) -> bool:
        return False

    def build_request(self, request: ClientRequest, target: Target) -> UpstreamRequest:
        headers = {"content-type": "application/json"}
        if target.provider.api_key:
            headers["x-goog-api-key"] = target.provider.api_key
        return UpstreamRequest(
            method="POST",
            url=model_url(target, request.stream),
            headers=headers,
            body=orjson.dumps(to_gemini(request.body)),
            stream=request.stream,
        )

    def parse_response(self, body: bytes, request: ClientRequest, target: Target) -> Result:
        data = json_object(body, target)
        rid = data.get("responseId")
        return Result(
            completion(data, target.upstream_model, int(time.time())),
            usage_from_gemini(data.get("usageMetadata")),
            rid if isinstance(rid, str) else None,
        )

    def parse_error(
        self, status: int, body: bytes, headers: dict[str, str], target: Target
    ) -> UpstreamHTTPError:
        return error_from_gemini(
            status,
            body,
            provider=target.provider.name,
            api_key=target.provider.api_key,
            retry_after=headers.get("retry-after"),
        )

    def stream_translator(self, request: ClientRequest, target: Target) -> GeminiStream:
        return GeminiStream(
            model=target.upstream_model,
            created=int(time.time()),
            provider=target.provider.name,
            api_key=target.provider.api_key,
        )

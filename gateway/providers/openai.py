"""The OpenAI-compatible family: OpenAI itself and vLLM's server.

Bodies pass through untouched except `model` (the upstream's name) and, for streams,
`stream_options.include_usage`, which we always ask for so that every streamed request is
priced from the provider's own counts; the extra usage chunk is dropped again for clients that
did not ask for it. Usage fields: openai-python `CompletionUsage` (prompt_tokens_details.
cached_tokens, completion_tokens_details.reasoning_tokens); vLLM reports the same shape
(vllm/entrypoints/openai/protocol.py `UsageInfo`).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import UpstreamHTTPError
from gateway.pricing.cost import Usage
from gateway.providers.base import (
    ClientRequest,
    Endpoint,
    Result,
    StreamState,
    Target,
    UpstreamRequest,
    json_object,
)
from gateway.sse import DONE, Event

_PATHS = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings"}


def usage_from_openai(u: Any) -> Usage | None:
    if not isinstance(u, dict):
        return None
    ptd = u.get("prompt_tokens_details") or {}
    ctd = u.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(u.get("prompt_tokens") or 0),
        completion_tokens=int(u.get("completion_tokens") or 0),
        cached_prompt_tokens=int(ptd.get("cached_tokens") or 0) if isinstance(ptd, dict) else 0,
        reasoning_tokens=int(ctd.get("reasoning_tokens") or 0) if isinstance(ctd, dict) else 0,
    )


class OpenAIAdapter:
    endpoints: frozenset[Endpoint] = frozenset({"chat", "completions", "embeddings"})

    def build_request(self, request: ClientRequest, target: Target) -> UpstreamRequest:
        body = dict(request.body)
        body["model"] = target.upstream_model
        if request.stream:
            opts = body.get("stream_options")
            body["stream_options"] = {
                **(opts if isinstance(opts, dict) else {}),
                "include_usage": True,
            }
        headers = {"content-type": "application/json"}
        if target.provider.api_key:
            headers["authorization"] = f"Bearer {target.provider.api_key}"
        return UpstreamRequest(
            method="POST",
            url=target.provider.api_base.rstrip("/") + _PATHS[request.endpoint],
            headers=headers,
            body=orjson.dumps(body),
            stream=request.stream,
        )

    def parse_response(self, body: bytes, request: ClientRequest, target: Target) -> Result:
        data = json_object(body, target)
        rid = data.get("id")
        return Result(
            body, usage_from_openai(data.get("usage")), rid if isinstance(rid, str) else None
        )

    def parse_error(
        self, status: int, body: bytes, headers: dict[str, str], target: Target
    ) -> UpstreamHTTPError:
        return UpstreamHTTPError.from_body(
            status, body, provider=target.provider.name, retry_after=headers.get("retry-after")
        )

    def stream_translator(self, request: ClientRequest, target: Target) -> OpenAIStream:
        return OpenAIStream(request.include_usage)


class OpenAIStream:
    """Forwards each event's bytes as received; reads usage and ids without re-encoding."""

    __slots__ = ("_forward_usage", "state")

    def __init__(self, forward_usage: bool) -> None:
        self.state = StreamState()
        self._forward_usage = forward_usage

    def feed(self, event: Event) -> list[bytes]:
        data = event.data
        st = self.state
        if data == DONE:
            st.done = True
            return [event.encode()]
        # Parsing every chunk would cost more than forwarding it; only chunks that carry
        # usage, an error, or the first id need a look inside.
        has_usage = b'"usage":{' in data or b'"usage": {' in data
        if has_usage or st.upstream_request_id is None or b'"error"' in data:
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                return [event.encode()]
            if isinstance(obj, dict):
                return self._inspect(obj, event)
        st.chunks += 1
        return [event.encode()]

    def _inspect(self, obj: dict[str, Any], event: Event) -> list[bytes]:
        st = self.state
        if st.upstream_request_id is None and isinstance(obj.get("id"), str):
            st.upstream_request_id = obj["id"]
        if isinstance(obj.get("error"), dict):
            st.error = obj["error"]
            return [event.encode()]
        choices = obj.get("choices")
        if choices:
            st.chunks += 1
            fr = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
            if fr:
                st.finish_reason = fr
        usage = usage_from_openai(obj.get("usage"))
        if usage is not None:
            st.usage = usage
            if not choices and not self._forward_usage:
                return []
        return [event.encode()]

    def finish(self) -> list[bytes]:
        return [] if self.state.done else [b"data: [DONE]\n\n"]

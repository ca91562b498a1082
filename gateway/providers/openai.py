"""The OpenAI-compatible family: OpenAI itself and vLLM's server.

Bodies pass through untouched except `model` (the upstream's name) and, for streams,
`stream_options.include_usage`, which we always ask for so that every streamed request is
priced from the provider's own counts; the extra usage chunk is dropped again for clients that
did not ask for it. Usage fields: openai-python `CompletionUsage` (prompt_tokens_details.
cached_tokens, completion_tokens_details.reasoning_tokens); vLLM reports the same shape
(vllm/entrypoints/openai/protocol.py `UsageInfo`).

OpenAI's wire is this family's native format: a client of an OpenAI endpoint gets the
upstream's events byte for byte (`OpenAIPassthrough`); any other client gets typed chunks
(`OpenAIChunks`) for its codec to render. A provider with `responses_api: true` also speaks
OpenAI's Responses API natively (`openai_responses.py`); without it, `/v1/responses` requests
arrive here translated to chat.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.core import (
    Chunk,
    ClientRequest,
    End,
    Finish,
    Operation,
    Raw,
    Reasoning,
    Result,
    Start,
    StreamError,
    StreamState,
    Target,
    Text,
    ToolCall,
    UpstreamRequest,
    Usage,
    UsageReport,
    WireFormat,
)
from gateway.errors import UpstreamHTTPError
from gateway.providers.base import StreamTranslator, json_object
from gateway.providers.openai_responses import (
    WIRE as RESPONSES,
)
from gateway.providers.openai_responses import (
    ResponsesPassthrough,
    responses_request,
    responses_result,
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
    operations: frozenset[Operation] = frozenset({"chat", "completions", "embeddings"})
    wires: frozenset[WireFormat] = frozenset({"openai", RESPONSES})

    def native(self, request: ClientRequest, target: Target) -> bool:
        if request.wire == "openai":
            return True
        return (
            request.wire == RESPONSES
            and target.provider.responses_api
            and request.native_body is not None
        )

    def build_request(self, request: ClientRequest, target: Target) -> UpstreamRequest:
        if request.wire == RESPONSES and self.native(request, target):
            return responses_request(request, target, self._headers(target))
        body = dict(request.body)
        body["model"] = target.upstream_model
        if request.stream:
            opts = body.get("stream_options")
            body["stream_options"] = {
                **(opts if isinstance(opts, dict) else {}),
                "include_usage": True,
            }
        return UpstreamRequest(
            method="POST",
            url=target.provider.api_base.rstrip("/") + _PATHS[request.operation],
            headers=self._headers(target),
            body=orjson.dumps(body),
            stream=request.stream,
        )

    @staticmethod
    def _headers(target: Target) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if target.provider.api_key:
            headers["authorization"] = f"Bearer {target.provider.api_key}"
        return headers

    def parse_response(self, body: bytes, request: ClientRequest, target: Target) -> Result:
        if request.wire == RESPONSES and self.native(request, target):
            return responses_result(body, target)
        data = json_object(body, target)
        rid = data.get("id")
        return Result(
            data,
            usage_from_openai(data.get("usage")),
            rid if isinstance(rid, str) else None,
            body=body,
        )

    def parse_error(
        self, status: int, body: bytes, headers: dict[str, str], target: Target
    ) -> UpstreamHTTPError:
        return UpstreamHTTPError.from_body(
            status, body, provider=target.provider.name, retry_after=headers.get("retry-after")
        )

    def stream_translator(self, request: ClientRequest, target: Target) -> StreamTranslator:
        if request.wire == "openai":
            return OpenAIPassthrough()
        if self.native(request, target):
            return ResponsesPassthrough()
        return OpenAIChunks()


def _has_content(choices: list[Any]) -> bool:
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and (
            delta.get("content")
            or delta.get("tool_calls")
            or delta.get("reasoning_content")
            or delta.get("reasoning")
        ):
            return True
    return False


def _stream_error(err: dict[str, Any]) -> StreamError:
    kind = err.get("type")
    return StreamError(
        kind if isinstance(kind, str) else "upstream_error",
        str(err.get("message") or "upstream error mid-stream"),
    )


class OpenAIPassthrough:
    """Forwards each event's bytes as received; reads usage and ids without re-encoding.

    Parsing every chunk would cost more than forwarding it: only chunks that may carry
    usage, an error, the first id, or the first generated content are looked inside."""

    __slots__ = ("_content_seen", "state")

    def __init__(self) -> None:
        self.state = StreamState()
        self._content_seen = False

    def feed(self, event: Event) -> list[Chunk]:
        st = self.state
        if st.done:
            return []
        data = event.data
        if data == DONE:
            st.done = True
            return [End()]
        if (
            not self._content_seen
            or st.upstream_request_id is None
            or data.find(b'"usage":{') >= 0  # find: cheaper than `in` on bytes (sse.py)
            or data.find(b'"usage": {') >= 0
            or data.find(b'"error"') >= 0
        ):
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                return [Raw(event.encode())]
            if isinstance(obj, dict):
                return self._inspect(obj, event)
        st.chunks += 1
        return [Raw(event.encode(), content=True)]

    def _inspect(self, obj: dict[str, Any], event: Event) -> list[Chunk]:
        st = self.state
        if st.upstream_request_id is None and isinstance(obj.get("id"), str):
            st.upstream_request_id = obj["id"]
        if isinstance(obj.get("error"), dict):
            st.error = obj["error"]
            st.done = True
            return [_stream_error(obj["error"])]
        choices = obj.get("choices")
        content = False
        if isinstance(choices, list) and choices:
            st.chunks += 1
            content = _has_content(choices)
            self._content_seen = self._content_seen or content
            fr = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
            if fr:
                st.finish_reason = fr
        usage = usage_from_openai(obj.get("usage"))
        if usage is not None:
            st.usage = usage
        return [Raw(event.encode(), content=content, usage_only=usage is not None and not choices)]

    def finish(self) -> list[Chunk]:
        if self.state.done:
            return []
        self.state.done = True
        return [End()]  # an upstream that forgot `[DONE]` still ends the client's stream


class OpenAIChunks:
    """OpenAI chunk events → typed chunks, for clients of another wire format."""

    __slots__ = ("_started", "state")

    def __init__(self) -> None:
        self.state = StreamState()
        self._started = False

    def feed(self, event: Event) -> list[Chunk]:
        st = self.state
        if st.done:
            return []
        if event.data == DONE:
            return self.finish()
        try:
            obj = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return self._fail("the upstream sent a stream event that is not JSON")
        if not isinstance(obj, dict):
            return []
        if isinstance(obj.get("error"), dict):
            st.error = obj["error"]
            st.done = True
            return [_stream_error(obj["error"])]
        out: list[Chunk] = []
        if not self._started:
            self._started = True
            rid = obj.get("id")
            st.upstream_request_id = rid if isinstance(rid, str) else None
            created = obj.get("created")
            out.append(
                Start(
                    st.upstream_request_id or "",
                    str(obj.get("model") or ""),
                    created if isinstance(created, int) else 0,
                )
            )
        choices = obj.get("choices")
        if isinstance(choices, list) and choices:
            st.chunks += 1
            for choice in choices:
                if isinstance(choice, dict):
                    out += self._choice(choice)
        usage = usage_from_openai(obj.get("usage"))
        if usage is not None:
            st.usage = usage
            out.append(UsageReport(usage))
        return out

    def _choice(self, choice: dict[str, Any]) -> list[Chunk]:
        index = choice.get("index") if isinstance(choice.get("index"), int) else 0
        assert isinstance(index, int)
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        assert isinstance(delta, dict)
        out: list[Chunk] = []
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(thought, str) and thought:
            out.append(Reasoning(thought, index))
        if isinstance(delta.get("content"), str) and delta["content"]:
            out.append(Text(delta["content"], index))
        for pos, call in enumerate(delta.get("tool_calls") or ()):
            if not isinstance(call, dict):
                continue
            fn = call.get("function") if isinstance(call.get("function"), dict) else {}
            assert isinstance(fn, dict)
            out.append(
                ToolCall(
                    call["index"] if isinstance(call.get("index"), int) else pos,
                    str(fn.get("arguments") or ""),
                    call.get("id") if isinstance(call.get("id"), str) else None,
                    fn.get("name") if isinstance(fn.get("name"), str) else None,
                    index,
                )
            )
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self.state.finish_reason = reason
            out.append(Finish(reason, index))
        return out

    def finish(self) -> list[Chunk]:
        """The end of the upstream stream: complete only after a finish_reason."""
        if self.state.done:
            return []
        if self.state.finish_reason is None:
            return self._fail("the upstream stream ended before the answer was complete")
        self.state.done = True
        return [End()]

    def _fail(self, message: str) -> list[Chunk]:
        self.state.error = {"type": "upstream_protocol_error", "message": message}
        self.state.done = True
        return [StreamError("api_error", message)]

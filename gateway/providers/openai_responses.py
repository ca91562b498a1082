"""OpenAI's Responses API spoken natively: a `/v1/responses` request to a provider with
`responses_api: true` (OpenAI, or a vLLM server that serves it) goes to `{api_base}/responses`
as the client wrote it, and its answer or events come back as they are.

Only what the ledger needs is read: the response id, and usage from the Response object
(`input_tokens` including `input_tokens_details.cached_tokens`, `output_tokens` including
`output_tokens_details.reasoning_tokens`: openai-python `types/responses/response_usage.py`),
which a stream carries in its terminal `response.completed` / `response.incomplete` /
`response.failed` event. Delta events are forwarded without being parsed.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.core import (
    Chunk,
    ClientRequest,
    End,
    Raw,
    Result,
    StreamError,
    StreamState,
    Target,
    UpstreamRequest,
    Usage,
)
from gateway.providers.base import json_object
from gateway.sse import Event

WIRE = "openai-responses"

# Events that carry generated content: time to first token is measured to the first of them.
CONTENT_EVENTS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
    }
)
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def usage_from_responses(u: Any) -> Usage | None:
    if not isinstance(u, dict):
        return None
    itd = u.get("input_tokens_details")
    otd = u.get("output_tokens_details")
    itd = itd if isinstance(itd, dict) else {}
    otd = otd if isinstance(otd, dict) else {}
    return Usage(
        prompt_tokens=int(u.get("input_tokens") or 0),
        completion_tokens=int(u.get("output_tokens") or 0),
        cached_prompt_tokens=int(itd.get("cached_tokens") or 0),
        cache_write_tokens=int(itd.get("cache_write_tokens") or 0),
        reasoning_tokens=int(otd.get("reasoning_tokens") or 0),
    )


def responses_request(
    request: ClientRequest, target: Target, headers: dict[str, str]
) -> UpstreamRequest:
    assert request.native_body is not None
    body = {**request.native_body, "model": target.upstream_model}
    return UpstreamRequest(
        method="POST",
        url=target.provider.api_base.rstrip("/") + "/responses",
        headers=headers,
        body=orjson.dumps(body),
        stream=request.stream,
    )


def responses_result(body: bytes, target: Target) -> Result:
    data = json_object(body, target)
    rid = data.get("id")
    return Result(
        data,
        usage_from_responses(data.get("usage")),
        rid if isinstance(rid, str) else None,
        body=body,
        wire=WIRE,
    )


def _event_type(event: Event) -> tuple[str, dict[str, Any] | None]:
    """The event's type: its `event:` line when it has one (OpenAI sends it), else its data's."""
    if event.event:
        return event.event, None
    try:
        obj = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return "", None
    if not isinstance(obj, dict):
        return "", None
    return str(obj.get("type") or ""), obj


class ResponsesPassthrough:
    """Forwards a Responses event stream byte for byte; parses only its lifecycle events."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = StreamState()

    def feed(self, event: Event) -> list[Chunk]:
        st = self.state
        if st.done:
            return []
        kind, obj = _event_type(event)
        raw = event.encode()
        if kind in CONTENT_EVENTS:
            st.chunks += 1
            return [Raw(raw, content=True)]
        if kind == "response.created" or kind in TERMINAL_EVENTS or kind == "error":
            if obj is None:
                try:
                    obj = orjson.loads(event.data)
                except orjson.JSONDecodeError:
                    return [Raw(raw)]
            return self._lifecycle(kind, obj if isinstance(obj, dict) else {}, raw)
        return [Raw(raw)]

    def _lifecycle(self, kind: str, obj: dict[str, Any], raw: bytes) -> list[Chunk]:
        st = self.state
        response = obj.get("response") if isinstance(obj.get("response"), dict) else {}
        assert isinstance(response, dict)
        if st.upstream_request_id is None and isinstance(response.get("id"), str):
            st.upstream_request_id = response["id"]
        if kind == "response.created":
            return [Raw(raw)]
        usage = usage_from_responses(response.get("usage"))
        if usage is not None:
            st.usage = usage
        st.done = True
        if kind == "response.completed":
            st.finish_reason = "stop"
            return [Raw(raw), End()]
        if kind == "response.incomplete":
            st.finish_reason = "length"
            return [Raw(raw), End()]
        # response.failed, or an `error` event: forwarded as sent; the StreamError after it is
        # for the ledger (its status), and renders nothing once a terminal event went out
        err = response.get("error") if kind == "response.failed" else obj
        err = err if isinstance(err, dict) else {}
        st.error = err
        message = str(err.get("message") or "the upstream response failed")
        code = err.get("code") if isinstance(err.get("code"), str) else None
        return [Raw(raw), StreamError("upstream_error", message, 502, code)]

    def finish(self) -> list[Chunk]:
        if self.state.done:
            return []
        self.state.done = True
        message = "the upstream stream ended before the response was complete"
        self.state.error = {"type": "upstream_protocol_error", "message": message}
        return [StreamError("api_error", message)]

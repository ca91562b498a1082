"""Gemini's `streamGenerateContent?alt=sse` events → OpenAI `chat.completion.chunk` events.

Each upstream event is a partial `GenerateContentResponse`; this state machine turns it into
chunks as it arrives, in OpenAI's documented order: per choice a role chunk first, then
content deltas and tool-call chunks (Gemini sends a function call whole, so each call is one
chunk carrying id, name and all its arguments, with an `index` stable per choice), then one
chunk with the finish_reason; at the end, a usage chunk (`choices: []`) only if the client
asked for one (`stream_options.include_usage`), then `data: [DONE]`, which Gemini does not
send. Every event repeats `usageMetadata` with the running counts, so the last one wins
(shared/reference/ECONOMICS.md §7.3).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import UpstreamProtocolError
from gateway.providers.base import StreamState, usage_to_openai
from gateway.providers.gemini_response import (
    call_id,
    error_from_gemini,
    finish_reason,
    prompt_blocked,
    tool_call,
    usage_from_gemini,
    visible_parts,
)
from gateway.sse import DONE, Event

_DONE_EVENT = b"data: [DONE]\n\n"


class GeminiStream:
    def __init__(
        self, *, include_usage: bool, model: str, created: int, provider: str, api_key: str | None
    ) -> None:
        self.state = StreamState()
        self._include_usage = include_usage
        self._model = model
        self._created = created
        self._provider = provider
        self._api_key = api_key
        self._id: str | None = None  # Gemini's responseId
        self._chunk_id = ""  # the chunks' `id`: the responseId, fixed by the first event
        self._started: set[int] = set()  # choices whose role chunk went out
        self._calls: dict[int, int] = {}  # choice → tool calls sent so far (the next index)
        self._finished: set[int] = set()

    def feed(self, event: Event) -> list[bytes]:
        if self.state.done or not event.data.strip() or event.data == DONE:
            return []
        try:
            obj = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(
                f"{self._provider}: the upstream sent a stream event that is not JSON"
            ) from None
        if not isinstance(obj, dict):
            raise UpstreamProtocolError(f"{self._provider}: unexpected stream event")
        if isinstance(obj.get("error"), dict):
            return self._error(obj)
        return self._response(obj)

    def finish(self) -> list[bytes]:
        if self.state.done:
            return []
        self.state.done = True
        out = []
        if self._include_usage and self.state.usage is not None:
            out.append(self._chunk([], usage=usage_to_openai(self.state.usage)))
        out.append(_DONE_EVENT)
        return out

    # --- one upstream event ----------------------------------------------------------------

    def _response(self, obj: dict[str, Any]) -> list[bytes]:
        st = self.state
        if not self._chunk_id:
            if isinstance(obj.get("responseId"), str):
                self._id = st.upstream_request_id = obj["responseId"]
            self._chunk_id = self._id or f"chatcmpl-{uuid.uuid4().hex}"
        if isinstance(obj.get("modelVersion"), str):
            self._model = obj["modelVersion"]
        usage = usage_from_gemini(obj.get("usageMetadata"))
        if usage is not None:
            st.usage = usage
        out: list[bytes] = []
        if prompt_blocked(obj):  # nothing will be generated: an empty, filtered answer
            self._open(0, out)
            self._close(0, "content_filter", out)
        for pos, cand in enumerate(obj.get("candidates") or []):
            if isinstance(cand, Mapping):
                index = cand["index"] if isinstance(cand.get("index"), int) else pos
                self._candidate(index, cand, out)
        return out

    def _candidate(self, index: int, cand: Mapping[str, Any], out: list[bytes]) -> None:
        if index in self._finished:
            return
        self._open(index, out)
        for part in visible_parts(cand):
            text = part.get("text")
            if isinstance(text, str) and text:
                out.append(self._delta(index, {"content": text}))
            call = part.get("functionCall")
            if isinstance(call, Mapping):
                k = self._calls.get(index, 0)
                self._calls[index] = k + 1
                delta = tool_call(call, part, call_id(self._id, index, k, call))
                out.append(self._delta(index, {"tool_calls": [{"index": k, **delta}]}))
        reason = cand.get("finishReason")
        if reason:
            self._close(index, finish_reason(reason, self._calls.get(index, 0) > 0), out)

    def _open(self, index: int, out: list[bytes]) -> None:
        if index not in self._started:
            self._started.add(index)
            out.append(self._delta(index, {"role": "assistant", "content": ""}))

    def _close(self, index: int, reason: str, out: list[bytes]) -> None:
        self._finished.add(index)
        self.state.finish_reason = reason
        out.append(
            self._chunk([{"index": index, "delta": {}, "logprobs": None, "finish_reason": reason}])
        )

    def _error(self, obj: dict[str, Any]) -> list[bytes]:
        """An error inside a started stream: one OpenAI error event, then [DONE]."""
        err = obj["error"]
        code = err.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else 502
        e = error_from_gemini(
            status, orjson.dumps(obj), provider=self._provider, api_key=self._api_key
        )
        self.state.error = e.to_dict()["error"]
        self.state.done = True
        return [e.sse_event()]

    # --- framing ---------------------------------------------------------------------------

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return self._chunk(
            [{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}]
        )

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        if choices:
            self.state.chunks += 1
        body: dict[str, Any] = {
            "id": self._chunk_id or f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if usage is not None:
            body["usage"] = usage
        return b"data: " + orjson.dumps(body) + b"\n\n"

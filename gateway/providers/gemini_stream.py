"""Gemini's `streamGenerateContent?alt=sse` events → typed chunks.

Each upstream event is a partial `GenerateContentResponse`; this state machine turns it into
chunks as it arrives: `Start` first, then per candidate text deltas and tool calls (Gemini
sends a function call whole, so each call is one `ToolCall` carrying id, name and all its
arguments, numbered per candidate), then its `Finish`. Gemini has no end-of-stream event: when
the upstream closes, `finish()` adds the usage and `End`. Every event repeats `usageMetadata`
with the running counts, so the last one wins (shared/reference/ECONOMICS.md §7.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.core import (
    Chunk,
    End,
    Finish,
    Start,
    StreamError,
    StreamState,
    Text,
    ToolCall,
    UsageReport,
)
from gateway.errors import UpstreamProtocolError
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


class GeminiStream:
    def __init__(self, *, model: str, created: int, provider: str, api_key: str | None) -> None:
        self.state = StreamState()
        self._model = model
        self._created = created
        self._provider = provider
        self._api_key = api_key
        self._id: str | None = None  # Gemini's responseId
        self._started = False
        self._calls: dict[int, int] = {}  # choice → tool calls sent so far (the next index)
        self._finished: set[int] = set()

    def feed(self, event: Event) -> list[Chunk]:
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

    def finish(self) -> list[Chunk]:
        if self.state.done:
            return []
        self.state.done = True
        out: list[Chunk] = []
        if self.state.usage is not None:
            out.append(UsageReport(self.state.usage))
        out.append(End())
        return out

    # --- one upstream event ----------------------------------------------------------------

    def _response(self, obj: dict[str, Any]) -> list[Chunk]:
        st = self.state
        out: list[Chunk] = []
        if isinstance(obj.get("modelVersion"), str):
            self._model = obj["modelVersion"]
        if not self._started:
            self._started = True
            if isinstance(obj.get("responseId"), str):
                self._id = st.upstream_request_id = obj["responseId"]
            out.append(Start(self._id or "", self._model, self._created))
        usage = usage_from_gemini(obj.get("usageMetadata"))
        if usage is not None:
            st.usage = usage
        if prompt_blocked(obj):  # nothing will be generated: an empty, filtered answer
            self._close(0, "content_filter", out)
        for pos, cand in enumerate(obj.get("candidates") or []):
            if isinstance(cand, Mapping):
                index = cand["index"] if isinstance(cand.get("index"), int) else pos
                self._candidate(index, cand, out)
        return out

    def _candidate(self, index: int, cand: Mapping[str, Any], out: list[Chunk]) -> None:
        if index in self._finished:
            return
        for part in visible_parts(cand):
            text = part.get("text")
            if isinstance(text, str) and text:
                self.state.chunks += 1
                out.append(Text(text, index))
            call = part.get("functionCall")
            if isinstance(call, Mapping):
                k = self._calls.get(index, 0)
                self._calls[index] = k + 1
                whole = tool_call(call, part, call_id(self._id, index, k, call))
                self.state.chunks += 1
                out.append(
                    ToolCall(
                        k,
                        whole["function"]["arguments"],
                        whole["id"],
                        whole["function"]["name"],
                        index,
                        whole.get("extra_content"),
                    )
                )
        reason = cand.get("finishReason")
        if reason:
            self._close(index, finish_reason(reason, self._calls.get(index, 0) > 0), out)

    def _close(self, index: int, reason: str, out: list[Chunk]) -> None:
        self._finished.add(index)
        self.state.finish_reason = reason
        out.append(Finish(reason, index))

    def _error(self, obj: dict[str, Any]) -> list[Chunk]:
        """An error inside a started stream: one in-band error, then nothing more."""
        err = obj["error"]
        code = err.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else 502
        e = error_from_gemini(
            status, orjson.dumps(obj), provider=self._provider, api_key=self._api_key
        )
        self.state.error = e.to_dict()["error"]
        self.state.done = True
        return [StreamError(e.type, e.message)]

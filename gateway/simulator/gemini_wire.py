"""Gemini's wire format for the simulator's answers: bodies, SSE events, errors (pure).

Shapes are those of google-genai `types.GenerateContentResponse` serialised the way the REST
API sends them (camelCase, nothing null): the tests parse every body and event with
`GenerateContentResponse.model_validate`, so the simulator has no runtime dependency on the
SDK (a test extra) and the wire format is still the real one. A stream is a series of
partial responses, one per simulated token, each repeating `responseId`, `modelVersion` and
the running `usageMetadata`; the last one carries each candidate's `finishReason` (with an
empty text part, as the live API's last event does) and the final counts. There is no
`[DONE]`. Events end with CRLF line breaks, which the SSE spec allows.
Errors are Google's `{"error": {"code", "message", "status"}}` (google.rpc.Status), with a
`google.rpc.RetryInfo` detail when the fault sets a retry delay; a mid-stream failure is one
event carrying that same error object.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from gateway.simulator.gemini_plans import GeminiPlan
from gateway.simulator.plans import ChoicePlan

_FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
_THOUGHT = {"text": "Thinking about what the user asked before answering.", "thought": True}
_BLOCKED_RATING = [
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
]
_EVENT_END = b"\r\n\r\n"

# HTTP status → google.rpc.Code name and the live API's message for it
# (https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes).
ERROR_STATUSES: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: (
        "PERMISSION_DENIED",
        (
            "Method doesn't allow unregistered callers (callers without "
            "established identity). Please use API Key or other form of "
            "API consumer identity to call this API."
        ),
    ),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    499: ("CANCELLED", "The operation was cancelled."),
    500: (
        "INTERNAL",
        (
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting"
        ),
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}


def error_body(status: int, message: str | None = None, retry_after: float | None = None) -> bytes:
    name, default = ERROR_STATUSES.get(
        status, ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT", "Simulated error.")
    )
    error: dict[str, Any] = {"code": status, "message": message or default, "status": name}
    if retry_after is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{math.ceil(retry_after)}s",
            }
        ]
    return orjson.dumps({"error": error})


def usage_metadata(gp: GeminiPlan, candidates_tokens: int) -> dict[str, Any]:
    plan = gp.plan
    meta: dict[str, Any] = {"promptTokenCount": plan.prompt_tokens}
    if candidates_tokens:
        meta["candidatesTokenCount"] = candidates_tokens
    if plan.cached_tokens:
        meta["cachedContentTokenCount"] = plan.cached_tokens
    if gp.thoughts:
        meta["thoughtsTokenCount"] = gp.thoughts
    meta["totalTokenCount"] = plan.prompt_tokens + candidates_tokens + gp.thoughts
    return meta


def _call(choice: ChoicePlan) -> dict[str, Any] | None:
    try:
        args = orjson.loads(choice.text)
    except orjson.JSONDecodeError:  # cut by maxOutputTokens: Gemini sends no partial call
        return None
    return {"functionCall": {"name": choice.tool_name, "args": args}}


def _final_parts(choice: ChoicePlan) -> list[dict[str, Any]]:
    if choice.tool_name is None:
        return [{"text": choice.text}]
    call = _call(choice)
    return [call] if call is not None else [{"text": ""}]


def _candidate(index: int, parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
    if finish is not None:
        cand["finishReason"] = _FINISH.get(finish, "STOP")
        if finish == "content_filter":
            cand["safetyRatings"] = _BLOCKED_RATING
    return cand


def _envelope(
    gp: GeminiPlan, response_id: str, candidates: list[dict[str, Any]], generated: int
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if candidates:
        body["candidates"] = candidates
    if gp.prompt_blocked:
        body["promptFeedback"] = {"blockReason": "SAFETY"}
    body["usageMetadata"] = usage_metadata(gp, generated)
    body["modelVersion"] = gp.plan.model
    body["responseId"] = response_id
    return body


def response(gp: GeminiPlan, response_id: str) -> bytes:
    """The whole `GenerateContentResponse` of a non-streamed request."""
    candidates = []
    for i, choice in enumerate(gp.plan.choices):
        parts = ([_THOUGHT] if gp.include_thoughts else []) + _final_parts(choice)
        candidates.append(_candidate(i, parts, choice.finish_reason))
    return orjson.dumps(_envelope(gp, response_id, candidates, gp.plan.completion_tokens))


class GeminiFrames:
    """SSE events of one streamed answer: `head()` + `frame(0..steps-1)` + `tail()`."""

    def __init__(self, gp: GeminiPlan, response_id: str) -> None:
        self.gp = gp
        self.response_id = response_id
        self.steps = gp.plan.steps

    def _event(self, candidates: list[dict[str, Any]], generated: int) -> bytes:
        body = _envelope(self.gp, self.response_id, candidates, generated)
        return b"data: " + orjson.dumps(body) + _EVENT_END

    def head(self) -> bytes:
        if self.gp.prompt_blocked:  # the only event of a refused prompt
            return self._event([], 0)
        if not self.gp.include_thoughts:
            return b""
        return self._event(
            [_candidate(i, [_THOUGHT], None) for i in range(len(self.gp.plan.choices))], 0
        )

    def frame(self, step: int) -> bytes:
        candidates = []
        for i, choice in enumerate(self.gp.plan.choices):
            if choice.tool_name is None and step < len(choice.pieces):
                candidates.append(_candidate(i, [{"text": choice.pieces[step]}], None))
            elif choice.tool_name is not None and step == 0 and _call(choice) is not None:
                candidates.append(_candidate(i, _final_parts(choice), None))
        if not candidates:
            return b""
        generated = sum(min(step + 1, c.steps) for c in self.gp.plan.choices)
        return self._event(candidates, generated)

    def error_event(self, status: int, message: str) -> bytes:
        """A mid-stream failure (the `stream_error` fault): one event carrying Google's error."""
        return b"data: " + error_body(status, message) + _EVENT_END

    def tail(self) -> bytes:
        if self.gp.prompt_blocked:
            return b""
        candidates = [
            _candidate(i, [{"text": ""}], c.finish_reason)
            for i, c in enumerate(self.gp.plan.choices)
        ]
        return self._event(candidates, self.gp.plan.completion_tokens)

"""OpenAI wire format of the simulator's answers: JSON bodies, SSE frames, error envelopes (pure).

Shapes follow the official SDK types (openai-python `types/chat/chat_completion.py`,
`chat_completion_chunk.py`, `completion.py`, `completion_usage.py`,
`create_embedding_response.py`, `model.py`); the integration tests parse every answer with them.
Streaming follows OpenAI's documented order: a first chunk carrying the role, one chunk per
token, a chunk per choice with its `finish_reason`, then, only with
`stream_options.include_usage`, a chunk with `choices: []` and the usage (every earlier chunk
then has `"usage": null`), then `data: [DONE]`.

Chunk bytes are spliced from a per-request prefix and suffix, so a token costs one `orjson.dumps`
of its text rather than of a whole chunk dict: the simulator shares CPU with what it measures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import orjson

from gateway.simulator.plans import EmbeddingPlan, GenerationPlan
from gateway.simulator.tokens import embedding_base64, embedding_vector

SSE_DONE = b"data: [DONE]\n\n"

# status → (OpenAI error `type`, `code`); OpenAI error codes guide and vLLM's ErrorResponse.
ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("not_found_error", None),
    408: ("timeout_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "timeout"),
}


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> bytes:
    """OpenAI's error envelope: {"error": {"message", "type", "param", "code"}}."""
    kind, default_code = ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    error = {"message": message, "type": kind, "param": param, "code": code or default_code}
    return orjson.dumps({"error": error})


def stream_error_event(status: int, message: str) -> bytes:
    """An error inside a started stream: one `data: {"error": …}` event, then `[DONE]` (vLLM)."""
    return b"data: " + error_body(status, message) + b"\n\n" + SSE_DONE


def usage(plan: GenerationPlan, details: bool = True) -> dict[str, object]:
    """CompletionUsage; `cached_tokens` is part of `prompt_tokens`, as OpenAI reports it."""
    body: dict[str, object] = {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
    }
    if details:
        body["prompt_tokens_details"] = {"cached_tokens": plan.cached_tokens, "audio_tokens": 0}
        body["completion_tokens_details"] = {"reasoning_tokens": 0, "audio_tokens": 0}
    return body


def tool_call_id(request_id: str, choice: int) -> str:
    return f"call_{request_id[-12:]}{choice}"


def chat_completion(plan: GenerationPlan, request_id: str, created: int) -> bytes:
    choices = []
    for index, choice in enumerate(plan.choices):
        message: dict[str, object] = {"role": "assistant", "content": choice.text, "refusal": None}
        if choice.tool_name is not None:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": tool_call_id(request_id, index),
                    "type": "function",
                    "function": {"name": choice.tool_name, "arguments": choice.text},
                }
            ]
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": choice.finish_reason,
            }
        )
    return orjson.dumps(
        {
            "id": request_id,
            "object": "chat.completion",
            "created": created,
            "model": plan.model,
            "choices": choices,
            "usage": usage(plan),
        }
    )


def text_completion(plan: GenerationPlan, request_id: str, created: int) -> bytes:
    choices = [
        {"index": i, "text": c.text, "logprobs": None, "finish_reason": c.finish_reason}
        for i, c in enumerate(plan.choices)
    ]
    return orjson.dumps(
        {
            "id": request_id,
            "object": "text_completion",
            "created": created,
            "model": plan.model,
            "choices": choices,
            "usage": usage(plan, details=False),
        }
    )


class _Frames(ABC):
    """SSE frames of one streamed answer: `head()` + `frame(0..steps-1)` + `tail()`."""

    object_name = b""

    def __init__(self, plan: GenerationPlan, request_id: str, created: int) -> None:
        self.plan = plan
        self.request_id = request_id
        self.steps = plan.steps
        self._prefix = b'data: {"id":%s,"object":"%s","created":%d,"model":%s,"choices":[' % (
            orjson.dumps(request_id),
            self.object_name,
            created,
            orjson.dumps(plan.model),
        )
        self._suffix = b'],"usage":null}\n\n' if plan.include_usage else b"]}\n\n"

    def _event(self, choice_json: bytes) -> bytes:
        return self._prefix + choice_json + self._suffix

    def head(self) -> bytes:
        return b""

    @abstractmethod
    def frame(self, step: int) -> bytes: ...

    @abstractmethod
    def _finish(self, index: int, reason: str) -> bytes: ...

    def tail(self) -> bytes:
        out = [self._finish(i, c.finish_reason) for i, c in enumerate(self.plan.choices)]
        if self.plan.include_usage:
            details = self.object_name == b"chat.completion.chunk"
            out.append(
                self._prefix + b'],"usage":' + orjson.dumps(usage(self.plan, details)) + b"}\n\n"
            )
        out.append(SSE_DONE)
        return b"".join(out)


class ChatFrames(_Frames):
    object_name = b"chat.completion.chunk"

    def head(self) -> bytes:
        """The role chunk of every choice (content "" for text, null before a tool call)."""
        return b"".join(
            self._event(
                b'{"index":%d,"delta":{"role":"assistant","content":%s},"logprobs":null,"finish_reason":null}'
                % (i, b"null" if c.tool_name is not None else b'""')
            )
            for i, c in enumerate(self.plan.choices)
        )

    def frame(self, step: int) -> bytes:
        out = []
        for index, choice in enumerate(self.plan.choices):
            if step >= choice.steps:
                continue
            if choice.tool_name is None:
                delta = b'{"content":' + orjson.dumps(choice.pieces[step]) + b"}"
            elif step == 0:  # the call's id, type and name first, arguments after (OpenAI's order)
                call = {
                    "index": 0,
                    "id": tool_call_id(self.request_id, index),
                    "type": "function",
                    "function": {"name": choice.tool_name, "arguments": ""},
                }
                delta = orjson.dumps({"tool_calls": [call]})
            else:
                delta = orjson.dumps(
                    {
                        "tool_calls": [
                            {"index": 0, "function": {"arguments": choice.pieces[step - 1]}}
                        ]
                    }
                )
            out.append(
                self._event(
                    b'{"index":%d,"delta":%s,"logprobs":null,"finish_reason":null}' % (index, delta)
                )
            )
        return b"".join(out)

    def _finish(self, index: int, reason: str) -> bytes:
        return self._event(
            b'{"index":%d,"delta":{},"logprobs":null,"finish_reason":"%s"}'
            % (index, reason.encode())
        )


class TextFrames(_Frames):
    object_name = b"text_completion"

    def frame(self, step: int) -> bytes:
        return b"".join(
            self._event(
                b'{"index":%d,"text":%s,"logprobs":null,"finish_reason":null}'
                % (i, orjson.dumps(c.pieces[step]))
            )
            for i, c in enumerate(self.plan.choices)
            if step < len(c.pieces)
        )

    def _finish(self, index: int, reason: str) -> bytes:
        return self._event(
            b'{"index":%d,"text":"","logprobs":null,"finish_reason":"%s"}'
            % (index, reason.encode())
        )


def embeddings(plan: EmbeddingPlan) -> bytes:
    data = []
    for index, seed in enumerate(plan.seeds):
        vector = embedding_vector(seed, plan.dimensions)
        encoded: object = embedding_base64(vector) if plan.base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": plan.model,
            "usage": {"prompt_tokens": plan.prompt_tokens, "total_tokens": plan.prompt_tokens},
        }
    )


def models(model_ids: list[str], created: int, owned_by: str) -> bytes:
    data = [
        {"id": m, "object": "model", "created": created, "owned_by": owned_by} for m in model_ids
    ]
    return orjson.dumps({"object": "list", "data": data})

"""The request function every benchmark program uses (aiohttp; it never raises an error).

It follows vLLM's benchmark client (`vllm/benchmarks/lib/endpoint_request_func.py` @02cfb534,
`async_request_openai_chat_completions`; the older `benchmarks/backend_request_func.py` is the
same): the clock starts just before the POST; TTFT is the arrival of the first SSE event whose
`choices` list is non-empty (a role-only chunk counts, as there); every later such event adds one
inter-token gap to `itl` (one gap per chunk, not per token); the end of the request is the last
event with `choices`, so the trailing usage chunk and `[DONE]` do not move it; token counts come
from the server's `usage` (the body asks for `stream_options.include_usage`). SSE framing is
`gateway.sse.SSEDecoder`: events straddle network reads.

A request function never raises (rule R12): any exception becomes `success=False` with `error`
set, and an `error` event inside a stream fails the request. Cancellation is not an error: it
propagates, and since the result is filled in place, a caller that passes its own
`RequestResult` and cancels the request still reads what was measured until then.

One difference from vLLM, for speed and accuracy: events that arrive in the same network read
share that read's timestamp (vLLM reads the clock per event after splitting, which only adds its
own parsing time).
"""

from __future__ import annotations

import time

import aiohttp
import orjson

from benchmarks.common.result import RequestInput, RequestResult
from gateway.sse import DONE, Event, SSEDecoder

ERROR_CHARS = 500  # an error message is cut here: a whole HTML error page helps nobody


def _usage(result: RequestResult, usage: object) -> None:
    if not isinstance(usage, dict):
        return
    result.usage_reported = True
    result.output_tokens = int(usage.get("completion_tokens") or 0)
    if (pt := usage.get("prompt_tokens")) is not None:
        result.prompt_len = int(pt)
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        result.cached_tokens = int(details.get("cached_tokens") or 0)


def _fail(result: RequestResult, message: str) -> RequestResult:
    result.success = False
    result.error = message[:ERROR_CHARS]
    return result


def _headers(result: RequestResult, resp: aiohttp.ClientResponse) -> None:
    result.status = resp.status
    result.request_id = resp.headers.get("x-request-id")
    result.provider = resp.headers.get("x-gateway-provider")


async def send_streaming(
    session: aiohttp.ClientSession,
    inp: RequestInput,
    result: RequestResult | None = None,
    *,
    content_times: bool = False,
) -> RequestResult:
    """A streamed chat or completions request, timed as vLLM's client times it.

    `content_times` keeps the arrival time of every chunk whose delta has content (the policy
    day counts the tokens streamed inside a window with them)."""
    if result is None:
        result = RequestResult()
    result.prompt_len = inp.prompt_len
    if content_times:
        result.content_times = []
    timer = _StreamTimer(result, time.perf_counter())
    try:
        async with session.post(inp.url, data=inp.body, headers=inp.headers) as resp:
            _headers(result, resp)
            if resp.status != 200:
                text = (await resp.read()).decode("utf-8", "replace")
                return _fail(result, f"HTTP {resp.status}: {text[:300]}")
            decoder = SSEDecoder()
            async for chunk in resp.content.iter_any():
                if events := decoder.feed(chunk):
                    if (error := timer.take(events, time.perf_counter())) is not None:
                        return _fail(result, error)
            if (error := timer.take(decoder.flush(), time.perf_counter())) is not None:
                return _fail(result, error)
    except Exception as exc:  # noqa: BLE001 — a request function never raises (R12)
        return _fail(result, f"{type(exc).__name__}: {exc}")
    if not result.chunks:
        return _fail(result, "no chunk with choices arrived (vLLM: no valid chunk for TTFT)")
    result.success = True
    return result


class _StreamTimer:
    """Folds a stream's events into its result as they arrive (one clock reading per read)."""

    __slots__ = ("result", "start", "last")

    def __init__(self, result: RequestResult, start: float) -> None:
        self.result, self.start, self.last = result, start, start
        result.start_time = start

    def take(self, events: list[Event], now: float) -> str | None:
        """Fold one read's events in; returns an error event's message, if one came."""
        r = self.result
        for event in events:
            if event.data == DONE or not event.data:
                continue
            data = orjson.loads(event.data)
            if choices := data.get("choices"):
                if r.chunks == 0:
                    r.ttft = now - self.start
                else:
                    r.itl.append(now - self.last)
                self.last = now
                r.latency = now - self.start
                r.chunks += 1
                if r.content_times is not None and (choices[0].get("delta") or {}).get("content"):
                    r.content_times.append(now)
            if (usage := data.get("usage")) is not None:
                _usage(r, usage)
            if "error" in data:
                return f"error event: {orjson.dumps(data['error'])!r}"
        return None


async def send_json(
    session: aiohttp.ClientSession, inp: RequestInput, result: RequestResult | None = None
) -> RequestResult:
    """A non-streamed request: E2EL only (no TTFT, TPOT or ITL)."""
    if result is None:
        result = RequestResult()
    result.prompt_len, result.streamed = inp.prompt_len, False
    start = result.start_time = time.perf_counter()
    try:
        async with session.post(inp.url, data=inp.body, headers=inp.headers) as resp:
            _headers(result, resp)
            raw = await resp.read()
            end = time.perf_counter()
            if resp.status != 200:
                return _fail(result, f"HTTP {resp.status}: {raw[:300].decode('utf-8', 'replace')}")
            data = orjson.loads(raw)
    except Exception as exc:  # noqa: BLE001 — a request function never raises (R12)
        return _fail(result, f"{type(exc).__name__}: {exc}")
    if not isinstance(data, dict) or not data.get("choices"):
        return _fail(result, "the response has no choices")
    _usage(result, data.get("usage"))
    result.chunks = 1
    result.latency = end - start
    result.success = True
    return result


async def send(
    session: aiohttp.ClientSession,
    inp: RequestInput,
    result: RequestResult | None = None,
    *,
    content_times: bool = False,
) -> RequestResult:
    """`send_streaming` or `send_json`, as the input says."""
    if inp.stream:
        return await send_streaming(session, inp, result, content_times=content_times)
    return await send_json(session, inp, result)

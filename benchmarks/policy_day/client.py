"""The policy benchmark's client: one streamed request measured, an open-loop day, a closed loop.

`send()` follows vLLM's benchmark client (`vllm/benchmarks/lib/endpoint_request_func.py`): the
clock starts just before the POST, TTFT is the first SSE event whose `choices` is non-empty,
token counts come from the server's usage chunk (the request asks for
`stream_options.include_usage`). It never raises: a failure is an `Outcome` with `error` set
(rule R12). SSE framing is `gateway.sse.SSEDecoder`. `replay()` sends a schedule open-loop
(each request at its time, whatever is still in flight); `closed_loop()` keeps `concurrency`
requests in flight, for the capacity sweep.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from benchmarks.policy_day.traffic import Arrival
from gateway.sse import DONE, SSEDecoder

Body = Callable[[Arrival], dict[str, Any]]


@dataclass(slots=True)
class Outcome:
    arrival: Arrival
    sent_s: float = 0.0  # perf_counter at the POST
    ok: bool = False
    status: int = 0
    ttft_s: float | None = None
    latency_s: float | None = None
    chunks: int = 0  # SSE events with choices (one per replayed token, plus the role chunk)
    request_id: str | None = None  # x-request-id: the ledger row's id
    provider: str | None = None  # x-gateway-provider
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    token_times: list[float] | None = None  # set to a list to keep each content chunk's time


async def send(
    session: aiohttp.ClientSession,
    url: str,
    payload: bytes,
    out: Outcome,
    headers: Mapping[str, str] | None = None,
) -> Outcome:
    """POST one streaming chat request and fill `out`; never raises."""
    out.sent_s = t0 = time.perf_counter()
    try:
        async with session.post(
            url, data=payload, headers={"content-type": "application/json", **(headers or {})}
        ) as r:
            out.status = r.status
            out.request_id = r.headers.get("x-request-id")
            out.provider = r.headers.get("x-gateway-provider")
            if r.status != 200:
                out.error = f"HTTP {r.status}: {(await r.read())[:200]!r}"
                return out
            decoder = SSEDecoder()
            async for data in r.content.iter_any():
                now = time.perf_counter()
                for ev in decoder.feed(data):
                    if ev.data == DONE:
                        continue
                    obj = orjson.loads(ev.data)
                    if "error" in obj:
                        out.error = f"stream error: {str(obj['error'])[:200]}"
                        return out
                    choices = obj.get("choices")
                    if choices:
                        out.chunks += 1
                        if out.ttft_s is None:
                            out.ttft_s = now - t0
                        if out.token_times is not None and (choices[0].get("delta") or {}).get(
                            "content"
                        ):
                            out.token_times.append(now)
                    usage = obj.get("usage")
                    if usage:
                        out.prompt_tokens = int(usage.get("prompt_tokens") or 0)
                        out.completion_tokens = int(usage.get("completion_tokens") or 0)
            out.latency_s = time.perf_counter() - t0
            out.ok = out.ttft_s is not None
            if not out.ok:
                out.error = "stream ended without a token"
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        out.error = f"{type(e).__name__}: {e}"
    except asyncio.CancelledError:
        out.error = "cancelled: still running when the drain timeout ran out"
    return out


def _session(timeout_s: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=timeout_s)
    )


async def replay(
    url: str,
    arrivals: Sequence[Arrival],
    body: Body,
    *,
    drain_s: float = 120.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Outcome]:
    """Send each arrival at its time (open loop); wait up to `drain_s` after the last one."""
    outcomes = [Outcome(a) for a in arrivals]
    async with _session(drain_s + 600) as session:
        tasks: list[asyncio.Task[Outcome]] = []
        start = time.perf_counter()
        hour = -1
        for a, out in zip(arrivals, outcomes, strict=True):
            delay = start + a.t - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(session, url, orjson.dumps(body(a)), out)))
            if progress is not None and a.hour != hour:
                hour = a.hour
                progress(a.hour, sum(not t.done() for t in tasks))
        _done, pending = await asyncio.wait(tasks, timeout=drain_s) if tasks else (set(), set())
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending)
    return outcomes


async def closed_loop(
    url: str,
    make: Callable[[int], Arrival],
    body: Body,
    concurrency: int,
    duration_s: float,
    *,
    seed: int = 0,
) -> tuple[list[Outcome], float]:
    """`concurrency` workers, each sending its next request when the last one ends.

    Returns the outcomes of the requests sent within the run (each with its content chunks'
    times) and its wall time; the caller measures a window after its warm-up.
    """
    outcomes: list[Outcome] = []
    rng = random.Random(seed)
    async with _session(duration_s + 600) as session:
        start = time.perf_counter()
        stop = start + duration_s

        async def worker() -> None:
            while time.perf_counter() < stop:
                out = Outcome(make(rng.randrange(1 << 30)), token_times=[])
                outcomes.append(out)
                await send(session, url, orjson.dumps(body(out.arrival)), out)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return outcomes, time.perf_counter() - start

"""The policy day's load: a schedule replayed open-loop, and closed loops for the capacity sweep.

Every request is one streamed chat request sent through `benchmarks.common.request` (vLLM's
request function: the clock starts just before the POST, TTFT is the first SSE event whose
`choices` is non-empty, token counts come from the server's usage chunk; it never raises) and
measured as a `benchmarks.common.result.RequestResult`. `replay()` sends each arrival at its time,
whatever is still in flight; `capacity_loop()` keeps `concurrency` requests in flight.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import orjson

from benchmarks.common.closed_loop import closed_loop
from benchmarks.common.request import send_streaming
from benchmarks.common.result import RequestInput, RequestResult
from benchmarks.policy_day.traffic import Arrival

Body = Callable[[Arrival], dict[str, Any]]
CANCELLED = "cancelled: still running when the drain timeout ran out"


def request(url: str, arrival: Arrival, body: Body) -> RequestInput:
    return RequestInput(url, orjson.dumps(body(arrival)))


def session(timeout_s: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        headers={"content-type": "application/json"},
    )


async def replay(
    url: str,
    arrivals: Sequence[Arrival],
    body: Body,
    *,
    drain_s: float = 120.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[RequestResult]:
    """Send each arrival at its time (open loop); wait up to `drain_s` after the last one.

    Returns one result per arrival, in order. Requests still running then are cancelled: their
    results keep what was measured (a first token that came in time still has its TTFT) and
    say so in `error`."""
    results = [RequestResult() for _ in arrivals]
    async with session(drain_s + 600) as s:
        tasks: list[asyncio.Task[RequestResult]] = []
        start = time.perf_counter()
        hour = -1
        for a, result in zip(arrivals, results, strict=True):
            delay = start + a.t - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send_streaming(s, request(url, a, body), result)))
            if progress is not None and a.hour != hour:
                hour = a.hour
                progress(a.hour, sum(not t.done() for t in tasks))
        _done, pending = await asyncio.wait(tasks, timeout=drain_s) if tasks else (set(), set())
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending)
    for result, task in zip(results, tasks, strict=True):
        if task.cancelled():
            result.error = CANCELLED
    return results


async def capacity_loop(
    url: str,
    make: Callable[[int], Arrival],
    body: Body,
    concurrency: int,
    duration_s: float,
    *,
    seed: int = 0,
) -> tuple[list[RequestResult], float]:
    """`concurrency` clients, each sending its next request (a seeded draw) when the last ends.

    Returns the results of the requests sent within the run (each with its content chunks'
    times) and its wall time; the caller measures a window after its warm-up."""
    rng = random.Random(seed)
    async with session(duration_s + 600) as s:
        return await closed_loop(
            s,
            lambda: request(url, make(rng.randrange(1 << 30)), body),
            concurrency,
            duration_s,
            content_times=True,
        )

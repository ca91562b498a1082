"""A closed loop: `concurrency` clients, each sending its next request when its last one ends.

Used where a program wants a plain saturating load for a fixed time and measures its own window
afterwards (the policy day's capacity sweep, the overhead run's streams). The load benchmark has
its own arrival process with warm-up windows and request rates (`benchmarks.load.loadgen`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from benchmarks.common.request import send
from benchmarks.common.result import RequestInput, RequestResult


async def closed_loop(
    session: aiohttp.ClientSession,
    next_input: Callable[[], RequestInput],
    concurrency: int,
    duration_s: float,
    *,
    content_times: bool = False,
) -> tuple[list[RequestResult], float]:
    """Run for `duration_s`; every request started by then runs to its end.

    Returns every result in the order the requests were sent, and the wall time until the last
    one ended."""
    results: list[RequestResult] = []
    start = time.perf_counter()
    stop = start + duration_s

    async def client() -> None:
        while time.perf_counter() < stop:
            result = RequestResult()
            results.append(result)
            await send(session, next_input(), result, content_times=content_times)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return results, time.perf_counter() - start

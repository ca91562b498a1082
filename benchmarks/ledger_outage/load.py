"""Load for the ledger scenarios, through the common request function (`send_json`, which never
raises): an open loop at a fixed rate — which requests were answered, and when — and the
common closed loop for throughput. Times are `time.perf_counter()` seconds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson

from benchmarks.common.closed_loop import closed_loop
from benchmarks.common.request import send_json
from benchmarks.common.result import RequestInput, RequestResult
from benchmarks.common.stats import percentile


def answered_at(r: RequestResult) -> float:
    """When the whole response had arrived."""
    return r.start_time + r.latency


def latency_summary(results: list[RequestResult]) -> dict[str, float]:
    lat = [r.latency for r in results if r.success]
    if not lat:
        return {}
    return {
        "n": len(lat),
        **{f"p{q}_ms": round(percentile(lat, q) * 1000, 3) for q in (50, 90, 99)},
        "mean_ms": round(sum(lat) / len(lat) * 1000, 3),
    }


class Load:
    def __init__(self, session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
        self.session = session
        self.input = RequestInput(
            url=url + "/v1/chat/completions", body=orjson.dumps(body), stream=False
        )
        self.results: list[RequestResult] = []
        self._tasks: set[asyncio.Task[RequestResult]] = set()

    def answered(self, before: float | None = None) -> list[RequestResult]:
        """Requests that got a whole 200 with a request id (before `before`, if given)."""
        return [
            r
            for r in self.results
            if r.success and r.request_id and (before is None or answered_at(r) < before)
        ]

    async def open_loop(self, rate: float, seconds: float) -> list[RequestResult]:
        """Start a request every 1/rate s for `seconds`, whether earlier ones finished or
        not; returns this phase's results (complete once `settle` has returned)."""
        start = time.perf_counter()
        phase: list[RequestResult] = []
        n = 0
        while (due := start + n / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            result = RequestResult()
            phase.append(result)
            t = asyncio.create_task(send_json(self.session, self.input, result))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
            n += 1
        self.results += phase
        return phase

    async def closed_loop(self, concurrency: int, seconds: float) -> float:
        """Answered requests per second with `concurrency` clients back to back."""
        results, wall = await closed_loop(self.session, lambda: self.input, concurrency, seconds)
        self.results += results
        return sum(r.success for r in results) / wall

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait for the requests still in flight."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

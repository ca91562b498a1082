"""Streams for the overhead run: a closed loop of streamed chat requests, and its TTFT summary.

Requests go through `benchmarks.common.request` (vLLM's client: TTFT is the time from just before
the request is sent to the first SSE event that carries `choices`; E2EL to the last such event;
SSE framing is `gateway.sse.SSEDecoder`); percentiles are `benchmarks.common.stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from benchmarks.common.closed_loop import closed_loop
from benchmarks.common.result import RequestInput, RequestResult
from benchmarks.common.stats import percentile_or_none


@dataclass
class StreamRun:
    results: list[RequestResult] = field(default_factory=list)
    duration_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        ok = [r for r in self.results if r.success]
        ttft = [r.ttft * 1000 for r in ok]
        n = len(ok)
        return {
            "streams": n,
            "errors": len(self.results) - n,
            "ttft_p50_ms": percentile_or_none(ttft, 50),
            "ttft_p99_ms": percentile_or_none(ttft, 99),
            "total_p50_ms": percentile_or_none([r.latency * 1000 for r in ok], 50),  # E2EL
            "usage_fraction": sum(r.usage_reported for r in ok) / n if n else 0.0,
            "streams_per_s": n / self.duration_s if self.duration_s else 0.0,
            "first_error": _first_error(self.results),
        }


def _first_error(results: Sequence[RequestResult]) -> str | None:
    return next((r.error for r in results if not r.success), None)


async def stream_loop(
    url: str, body: dict[str, Any], concurrency: int, duration_s: float
) -> StreamRun:
    """`concurrency` clients streaming `body` to `url` back to back for `duration_s`."""
    inp = RequestInput(url, orjson.dumps(body))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=60),
        headers={"content-type": "application/json"},
    ) as session:
        results, duration = await closed_loop(session, lambda: inp, concurrency, duration_s)
    return StreamRun(results, duration)

"""A closed-loop streaming client (aiohttp): time to first token and to end of stream.

TTFT follows vLLM's benchmark client (vllm/benchmarks/lib/endpoint_request_func.py): the time
from just before the request is sent to the first SSE event that carries `choices`. SSE framing
goes through `gateway.sse.SSEDecoder`, since events can straddle network reads.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from gateway.sse import DONE, SSEDecoder


@dataclass
class StreamRun:
    ttft_s: list[float] = field(default_factory=list)
    total_s: list[float] = field(default_factory=list)
    errors: int = 0
    with_usage: int = 0
    duration_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        def pct(xs: list[float], p: float) -> float | None:
            if not xs:
                return None
            s = sorted(xs)
            return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] * 1000

        n = len(self.ttft_s)
        return {
            "streams": n,
            "errors": self.errors,
            "ttft_p50_ms": statistics.median(self.ttft_s) * 1000 if n else None,
            "ttft_p99_ms": pct(self.ttft_s, 99),
            "total_p50_ms": statistics.median(self.total_s) * 1000 if n else None,
            "usage_fraction": self.with_usage / n if n else 0.0,
            "streams_per_s": n / self.duration_s if self.duration_s else 0.0,
        }


async def _one(session: aiohttp.ClientSession, url: str, body: bytes, run: StreamRun) -> None:
    t0 = time.perf_counter()
    first: float | None = None
    usage = False
    try:
        async with session.post(url, data=body, headers={"content-type": "application/json"}) as r:
            if r.status != 200:
                await r.read()
                run.errors += 1
                return
            dec = SSEDecoder()
            async for chunk in r.content.iter_any():
                for ev in dec.feed(chunk):
                    if ev.data == DONE:
                        continue
                    if first is None and b'"choices":[{' in ev.data.replace(b" ", b""):
                        first = time.perf_counter()
                    if b'"usage":{' in ev.data.replace(b" ", b""):
                        usage = bool(orjson.loads(ev.data).get("usage"))
    except (TimeoutError, aiohttp.ClientError):
        run.errors += 1
        return
    if first is None:
        run.errors += 1
        return
    run.ttft_s.append(first - t0)
    run.total_s.append(time.perf_counter() - t0)
    run.with_usage += usage


async def closed_loop(
    url: str, body: dict[str, Any], concurrency: int, duration_s: float
) -> StreamRun:
    run = StreamRun()
    raw = orjson.dumps(body)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        start = time.perf_counter()
        stop_at = start + duration_s

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                await _one(session, url, raw, run)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.duration_s = time.perf_counter() - start
    return run

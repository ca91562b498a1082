"""Load for the ledger scenarios: an open loop at a fixed rate (which requests were answered,
and when), and a closed loop (throughput). A request never raises: a failure is counted."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass(slots=True)
class Answered:
    request_id: str
    at: float  # time.monotonic() when the whole response had arrived
    latency_s: float


@dataclass(slots=True)
class LoadLog:
    answered: list[Answered] = field(default_factory=list)
    failed: int = 0
    sent: int = 0

    def since(self, t: float) -> list[Answered]:
        return [a for a in self.answered if a.at >= t]


def percentiles(latencies: list[float]) -> dict[str, float]:
    if len(latencies) < 2:
        return {}
    qs = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "n": len(latencies),
        "p50_ms": round(qs[49] * 1000, 3),
        "p90_ms": round(qs[89] * 1000, 3),
        "p99_ms": round(qs[98] * 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
    }


class Load:
    def __init__(self, session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
        self.session = session
        self.url = url + "/v1/chat/completions"
        self.body = body
        self.log = LoadLog()
        self._tasks: set[asyncio.Task[None]] = set()

    async def one(self) -> None:
        self.log.sent += 1
        t0 = time.monotonic()
        try:
            async with self.session.post(self.url, json=self.body) as r:
                await r.read()
                if r.status != 200:
                    self.log.failed += 1
                    return
                rid = r.headers["x-request-id"]
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.log.failed += 1
            return
        t1 = time.monotonic()
        self.log.answered.append(Answered(rid, t1, t1 - t0))

    async def open_loop(self, rate: float, seconds: float) -> None:
        """Start a request every 1/rate s for `seconds`, whether earlier ones finished or not."""
        start = time.monotonic()
        n = 0
        while (due := start + n / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            t = asyncio.create_task(self.one())
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
            n += 1

    async def closed_loop(self, concurrency: int, seconds: float) -> float:
        """`concurrency` clients back to back for `seconds`; answered requests per second."""
        end = time.monotonic() + seconds
        before = len(self.log.answered)

        async def client() -> None:
            while time.monotonic() < end:
                await self.one()

        await asyncio.gather(*(client() for _ in range(concurrency)))
        return (len(self.log.answered) - before) / seconds

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait for the requests still in flight."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

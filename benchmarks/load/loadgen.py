"""The load generator: when requests are sent, and which of their results a point measures.

Each request goes through `benchmarks.common.request.send` (vLLM's request function: TTFT, ITL,
E2EL, usage; it never raises) and comes back as a `benchmarks.common.result.RequestResult`.

Arrivals follow vLLM's `get_request` (`vllm/benchmarks/serve.py` @009e6d4a): an infinite rate
sends at once (a closed loop of `concurrency` clients); a finite rate draws gaps from
Gamma(shape=burstiness, scale=1/(rate·burstiness)) — burstiness 1 is Poisson — and rescales the
cumulative delays so the last request goes out at exactly n/rate. `max_concurrency` is a client
semaphore whose wait is recorded as `queue_time`, outside TTFT and E2EL (vLLM's
`client_queue_time`).

Measurement windows (`run_point`):
- count mode (`num_requests`): vLLM's own — the warm-up requests run first and are dropped; the
  next `num_requests` are measured; the duration runs from the first measured dispatch until the
  last measured request is done (ramp-up and drain included, as vLLM's `dur_s`).
- duration mode (`duration_s`): the load runs for `warmup_s + duration_s` without a break; the
  measured requests are those that *finished* inside the window after the warm-up, and the
  duration is the window. This keeps the load steady across the window (no drain tail) so
  throughput is the steady-state figure; requests still in flight when it closes are cancelled
  and counted in `cancelled`, not in the results. Closed-loop clients start one after another
  across the warm-up: started together, equal-length requests would finish in waves, and a
  window would count a whole number of waves instead of the steady rate. So the warm-up should
  last about one E2E latency of the loaded server (and the window several).
"""

from __future__ import annotations

import asyncio
import math
import random
import resource
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from benchmarks.common.request import send
from benchmarks.common.result import RequestInput, RequestResult
from benchmarks.common.stats import percentile

T = TypeVar("T")


def run_fast(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on uvloop (a dependency except on Windows): less client CPU per request."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def arrival_offsets(n: int, rate: float, burstiness: float, rng: random.Random) -> list[float]:
    """Send times (s from the start) of `n` requests at `rate` req/s — vLLM's get_request."""
    if n <= 0:
        return []
    if burstiness <= 0:
        raise ValueError("burstiness must be positive")
    if math.isinf(rate):
        return [0.0] * n
    if math.isinf(burstiness):
        gaps = [1.0 / rate] * n
    else:
        theta = 1.0 / (rate * burstiness)
        gaps = [rng.gammavariate(burstiness, theta) for _ in range(n)]
    offsets, total = [], 0.0
    for gap in gaps:
        total += gap
        offsets.append(total)
    # vLLM: rescale so the last request is sent at exactly n / rate (raw sums drift 1-2 %)
    factor = (n / rate) / offsets[-1]
    return [t * factor for t in offsets]


@dataclass(frozen=True, slots=True)
class LoadShape:
    """A closed loop of `concurrency` clients (rate inf), or arrivals at `rate` (capped or not)."""

    concurrency: int | None = None
    rate: float = math.inf
    burstiness: float = 1.0

    def __post_init__(self) -> None:
        if math.isinf(self.rate) and not self.concurrency:
            raise ValueError("an infinite request rate needs a max concurrency")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.rate <= 0:
            raise ValueError("the request rate must be positive")

    @property
    def label(self) -> str:
        parts = []
        if not math.isinf(self.rate):
            parts.append(f"rate={self.rate:g}/s")
            if self.burstiness != 1.0:
                parts.append(f"burstiness={self.burstiness:g}")
        if self.concurrency:
            parts.append(f"concurrency={self.concurrency}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Window:
    """How long a point runs: a measured duration, or a measured request count, after a warm-up."""

    duration_s: float | None = 30.0
    num_requests: int | None = None
    warmup_s: float = 5.0
    warmup_requests: int = 0

    def __post_init__(self) -> None:
        if (self.duration_s is None) == (self.num_requests is None):
            raise ValueError("give exactly one of duration_s and num_requests")


@dataclass(slots=True)
class ClientLoad:
    """The load generator's own cost: CPU seconds over wall seconds, and event-loop lag."""

    cpu_s: float = 0.0
    wall_s: float = 0.0
    loop_lag_max_ms: float = 0.0
    loop_lag_p99_ms: float = 0.0

    @property
    def cpu_fraction(self) -> float:
        """Of one core: asyncio runs on one, so ~1.0 means the client is the bottleneck."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def saturated(self) -> bool:
        return self.cpu_fraction >= SATURATED_CPU or self.loop_lag_p99_ms >= SATURATED_LAG_MS


SATURATED_CPU = 0.9  # of one core
SATURATED_LAG_MS = 50.0  # the event loop woke this late at p99: timings carry client delay


@dataclass(slots=True)
class PointRun:
    results: list[RequestResult]
    duration_s: float
    warmup: int = 0  # requests dropped as warm-up
    cancelled: int = 0  # requests in flight when a duration window closed
    client: ClientLoad = field(default_factory=ClientLoad)


OnResult = Callable[[RequestResult, bool], None]  # (result, measured)


class _Monitor:
    """Samples the event loop's wake-up lag every 50 ms; and the process's CPU time."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.cpu0, self.wall0 = _cpu_s(), time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.05)
            self.lags.append(max(0.0, time.perf_counter() - t - 0.05))

    def stop(self) -> ClientLoad:
        if self._task is not None:
            self._task.cancel()
        lags = self.lags or [0.0]
        return ClientLoad(
            cpu_s=_cpu_s() - self.cpu0,
            wall_s=time.perf_counter() - self.wall0,
            loop_lag_max_ms=max(lags) * 1000,
            loop_lag_p99_ms=percentile(lags, 99.0) * 1000,
        )


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def run_point(
    session: aiohttp.ClientSession,
    inputs: Sequence[RequestInput],
    shape: LoadShape,
    window: Window,
    *,
    seed: int = 0,
    on_result: OnResult | None = None,
) -> PointRun:
    """Run one load point; returns only the measured results (see the module docstring)."""
    if not inputs:
        raise ValueError("no requests to send")
    driver = _Driver(session, inputs, shape, window, random.Random(seed), on_result)
    monitor = _Monitor()
    monitor.start()
    try:
        run = await driver.run()
    finally:
        client = monitor.stop()
    run.client = client
    return run


class _Driver:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        inputs: Sequence[RequestInput],
        shape: LoadShape,
        window: Window,
        rng: random.Random,
        on_result: OnResult | None,
    ) -> None:
        self.session, self.inputs, self.shape, self.window = session, inputs, shape, window
        self.rng, self.on_result = rng, on_result
        self.next_input = 0
        self.results: list[RequestResult] = []
        self.warmup = 0
        self.sem = asyncio.Semaphore(shape.concurrency) if shape.concurrency else None

    def _take(self) -> RequestInput:
        inp = self.inputs[self.next_input % len(self.inputs)]
        self.next_input += 1
        return inp

    async def _send(self, inp: RequestInput, arrival: float) -> RequestResult:
        if self.sem is None:
            return await send(self.session, inp)
        async with self.sem:
            result = await send(self.session, inp)
        result.queue_time = max(0.0, result.start_time - arrival)
        return result

    async def run(self) -> PointRun:
        if self.window.num_requests is not None:
            return await self._run_count(self.window.num_requests)
        return await self._run_window(self.window.duration_s or 0.0)

    # -- count mode: vLLM's semantics --------------------------------------------------------

    async def _run_count(self, n: int) -> PointRun:
        w = self.window
        if w.warmup_requests:
            self.warmup = len(await self._dispatch(w.warmup_requests, measured=False))
        start = time.perf_counter()
        results = await self._dispatch(n, measured=True)
        duration = time.perf_counter() - start  # vLLM's dur_s: until every request is gathered
        return PointRun(results, duration, self.warmup)

    async def _dispatch(self, n: int, measured: bool) -> list[RequestResult]:
        async def one(inp: RequestInput, arrival: float) -> RequestResult:
            result = await self._send(inp, arrival)
            self._report(result, measured)
            return result

        offsets = arrival_offsets(n, self.shape.rate, self.shape.burstiness, self.rng)
        t0 = time.perf_counter()
        tasks = []
        for offset in offsets:
            delay = t0 + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(self._take(), t0 + offset)))
        return list(await asyncio.gather(*tasks))

    # -- duration mode: a steady window ----------------------------------------------------

    def _report(self, result: RequestResult, measured: bool) -> None:
        if self.on_result is not None:
            self.on_result(result, measured)

    def _finish(self, result: RequestResult, w_start: float, w_end: float) -> None:
        end = result.start_time + result.latency if result.success else time.perf_counter()
        measured = w_start <= end < w_end
        if measured:
            self.results.append(result)
        elif end < w_start:
            self.warmup += 1
        self._report(result, measured)

    async def _run_window(self, duration_s: float) -> PointRun:
        t0 = time.perf_counter()
        w_start = t0 + self.window.warmup_s
        w_end = w_start + duration_s
        pending: set[asyncio.Task[None]] = set()

        async def one(inp: RequestInput, arrival: float) -> None:
            self._finish(await self._send(inp, arrival), w_start, w_end)

        if math.isinf(self.shape.rate):
            clients = self.shape.concurrency or 1
            ramp = self.window.warmup_s / clients

            async def worker(i: int) -> None:
                await asyncio.sleep(i * ramp)  # staggered starts: see the module docstring
                while time.perf_counter() < w_end:
                    await one(self._take(), time.perf_counter())

            pending = {asyncio.ensure_future(worker(i)) for i in range(clients)}
        else:
            n = max(1, math.ceil(self.shape.rate * (w_end - t0)))
            for offset in arrival_offsets(n, self.shape.rate, self.shape.burstiness, self.rng):
                delay = t0 + offset - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if time.perf_counter() >= w_end:
                    break
                task = asyncio.ensure_future(one(self._take(), t0 + offset))
                pending.add(task)
                task.add_done_callback(pending.discard)
        remaining = w_end - time.perf_counter()
        if pending and remaining > 0:
            _, still = await asyncio.wait(pending, timeout=remaining)
        else:
            still = set(pending)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
        # a worker ends its loop after the window; count only requests cut off by the cancel
        cancelled = sum(1 for t in still if t.cancelled())
        return PointRun(self.results, duration_s, self.warmup, cancelled)

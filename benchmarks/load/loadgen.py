"""The load generator: what one request measures, and when requests are sent.

Request functions follow vLLM's benchmark client (`vllm/benchmarks/lib/endpoint_request_func.py`
@02cfb534, `async_request_openai_chat_completions`): the clock starts just before the POST;
TTFT is the arrival of the first SSE event whose `choices` list is non-empty (a role-only chunk
counts, as there); every later such event adds one inter-token gap to `itl` (one gap per chunk,
not per token); the end of the request is the last event with `choices`, so the trailing usage
chunk and `[DONE]` do not move it; token counts come from the server's `usage` (the stream asks
for `stream_options.include_usage`). A request function never raises: any failure becomes
`success=False` with `error` set (rule R12). One difference, for speed and accuracy: events that
arrive in the same network read share that read's timestamp (vLLM reads the clock per event
after splitting, which only adds its own parsing time). SSE framing is `gateway.sse.SSEDecoder`.

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
from array import array
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import aiohttp
import orjson

from gateway.sse import DONE, SSEDecoder


@dataclass(frozen=True, slots=True)
class RequestInput:
    """One request, serialised once up front so that sending it costs no encoding."""

    url: str
    body: bytes
    prompt_len: int  # the workload's target prompt tokens; replaced by usage.prompt_tokens
    output_len: int
    stream: bool = True


@dataclass(slots=True)
class RequestResult:
    """vLLM's RequestFuncOutput, plus what the gateway benchmark also wants to know."""

    success: bool = False
    streamed: bool = True
    ttft: float = 0.0  # s; streamed requests only
    itl: array[float] = field(default_factory=lambda: array("d"))  # s, one per later chunk
    latency: float = 0.0  # s, E2EL: start → last chunk with choices (or the whole body)
    start_time: float = 0.0  # perf_counter at send
    queue_time: float = 0.0  # s waited on the client's max-concurrency semaphore
    prompt_len: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    usage_reported: bool = False
    chunks: int = 0  # SSE events carrying choices
    status: int = 0
    error: str = ""


class RequestFunc(Protocol):
    async def __call__(
        self, session: aiohttp.ClientSession, inp: RequestInput
    ) -> RequestResult: ...


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
    result.error = message[:500]
    return result


async def send_streaming(session: aiohttp.ClientSession, inp: RequestInput) -> RequestResult:
    """A streamed chat or completions request, timed as vLLM's client times it."""
    result = RequestResult(prompt_len=inp.prompt_len)
    start = time.perf_counter()
    result.start_time = last = start
    first = True
    try:
        async with session.post(inp.url, data=inp.body) as resp:
            result.status = resp.status
            if resp.status != 200:
                text = (await resp.read()).decode("utf-8", "replace")
                return _fail(result, f"HTTP {resp.status}: {text[:300]}")
            decoder = SSEDecoder()
            async for chunk in resp.content.iter_any():
                events = decoder.feed(chunk)
                if not events:
                    continue
                now = time.perf_counter()
                for event in events:
                    if event.data == DONE or not event.data:
                        continue
                    data = orjson.loads(event.data)
                    if data.get("choices"):
                        if first:
                            result.ttft = now - start
                            first = False
                        else:
                            result.itl.append(now - last)
                        last = now
                        result.chunks += 1
                    if (usage := data.get("usage")) is not None:
                        _usage(result, usage)
                    if "error" in data:
                        return _fail(result, f"error event: {orjson.dumps(data['error'])!r}")
    except Exception as exc:  # noqa: BLE001 — a request function never raises (R12)
        return _fail(result, f"{type(exc).__name__}: {exc}")
    if first:
        return _fail(result, "no chunk with choices arrived (vLLM: no valid chunk for TTFT)")
    result.latency = last - start
    result.success = True
    return result


async def send_json(session: aiohttp.ClientSession, inp: RequestInput) -> RequestResult:
    """A non-streamed request: E2EL only (no TTFT, TPOT or ITL)."""
    result = RequestResult(prompt_len=inp.prompt_len, streamed=False)
    start = result.start_time = time.perf_counter()
    try:
        async with session.post(inp.url, data=inp.body) as resp:
            result.status = resp.status
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


REQUEST_FUNCS: dict[bool, RequestFunc] = {True: send_streaming, False: send_json}


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
        lags = sorted(self.lags) or [0.0]
        return ClientLoad(
            cpu_s=_cpu_s() - self.cpu0,
            wall_s=time.perf_counter() - self.wall0,
            loop_lag_max_ms=lags[-1] * 1000,
            loop_lag_p99_ms=lags[min(len(lags) - 1, int(0.99 * len(lags)))] * 1000,
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
        func = REQUEST_FUNCS[inp.stream]
        if self.sem is None:
            return await func(self.session, inp)
        async with self.sem:
            result = await func(self.session, inp)
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

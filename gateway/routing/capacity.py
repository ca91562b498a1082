"""Live capacity of self-hosted vLLM replicas: a /metrics poller plus the gateway's own counts.

`CapacityMonitor` watches every replica of every self-hosted provider (a provider with a `gpu:`
block; its `api_base` and `replicas`). One polling task, started in the app's lifespan, scrapes
each replica's `/metrics` every `capacity.scrape_interval_s` through one aiohttp session; the
proxy reports each request it sends (`acquire`) and gets back (`release`), so a burst moves the
replicas' state at once rather than at the next scrape. `snapshot()` is what the router reads
on every request: no I/O, rebuilt only when something changed.

Health: `capacity.unhealthy_after` consecutive failures — scrapes that fail (connection error,
timeout, non-200, not vLLM's text) and connection failures the proxy saw (`record_failure`) —
take a replica out; the next good scrape brings it back.

What the numbers mean and when a replica is full: `capacity_model.py` (pure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence

import aiohttp

from gateway.config import ProviderConfig
from gateway.routing.capacity_model import (
    CapacitySnapshot,
    Latency,
    Limits,
    MetricsError,
    ReplicaState,
    VllmSample,
    parse_vllm_metrics,
    replica_state,
)

__all__ = ["CapacityMonitor", "CapacitySnapshot", "ReplicaState", "metrics_url"]

log = logging.getLogger("gateway.capacity")

MAX_SCRAPE_TIMEOUT_S = 2.0


def metrics_url(api_base: str) -> str:
    """vLLM serves /metrics beside /v1: `http://h:8000/v1` → `http://h:8000/metrics`, and the
    simulator's `http://h:8001/llama-3.1-8b-h100/v1` → `http://h:8001/llama-3.1-8b-h100/metrics`."""
    base = api_base.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return base + "/metrics"


def _limits(provider: ProviderConfig) -> Limits:
    cap = provider.capacity
    in_flight = cap.max_in_flight
    if in_flight is None and provider.gpu is not None and provider.gpu.max_concurrency:
        # the pool's calibrated concurrency, shared evenly by its replicas
        in_flight = math.ceil(provider.gpu.max_concurrency / len(provider.api_bases))
    ttft_ms = cap.max_predicted_ttft_ms
    return Limits(cap.max_waiting, ttft_ms / 1000 if ttft_ms is not None else None, in_flight)


class _Replica:
    """What the monitor knows about one replica (mutable; only the monitor touches it)."""

    __slots__ = (
        "api_base",
        "failures",
        "in_flight",
        "in_flight_at_scrape",
        "interval_s",
        "last_error",
        "latency",
        "limits",
        "next_due",
        "provider",
        "sample",
        "scraped_at",
        "unhealthy_after",
        "url",
    )

    def __init__(self, provider: ProviderConfig, api_base: str) -> None:
        self.provider = provider.name
        self.api_base = api_base
        self.url = metrics_url(api_base)
        self.limits = _limits(provider)
        self.interval_s = provider.capacity.scrape_interval_s
        self.unhealthy_after = provider.capacity.unhealthy_after
        self.in_flight = 0
        self.in_flight_at_scrape = 0
        self.sample: VllmSample | None = None
        self.latency = Latency()
        self.scraped_at: float | None = None
        self.failures = 0
        self.last_error = ""
        self.next_due = 0.0

    @property
    def healthy(self) -> bool:
        return self.failures < self.unhealthy_after

    def state(self) -> ReplicaState:
        return replica_state(
            self.provider,
            self.api_base,
            limits=self.limits,
            sample=self.sample,
            latency=self.latency,
            in_flight=self.in_flight,
            in_flight_at_scrape=self.in_flight_at_scrape,
            scraped_at=self.scraped_at,
            failures=self.failures,
            unhealthy_after=self.unhealthy_after,
            last_error=self.last_error,
        )


class CapacityMonitor:
    def __init__(
        self, providers: Sequence[ProviderConfig], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Watch the replicas of the self-hosted providers among `providers` (others are
        ignored: the snapshot reports them as always having headroom).

        `clock` stamps `ReplicaState.scraped_at`; the polling schedule uses the event loop's.
        """
        self._clock = clock
        self._replicas: dict[str, dict[str, _Replica]] = {
            p.name: {base: _Replica(p, base) for base in p.api_bases}
            for p in providers
            if p.self_hosted
        }
        self._states: dict[str, tuple[ReplicaState, ...]] = {}
        self._dirty: set[str] = set(self._replicas)
        self._snapshot: CapacitySnapshot | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the polling task (the first scrapes go out at once). Idempotent."""
        if self._task is not None or not self._replicas:
            return
        interval = min(r.interval_s for r in self._all())
        timeout = min(max(interval, 0.5), MAX_SCRAPE_TIMEOUT_S)
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout, connect=timeout),
            connector=aiohttp.TCPConnector(limit=0),
        )
        self._task = asyncio.create_task(self._poll(), name="capacity-monitor")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- the request path -----------------------------------------------------------------

    def snapshot(self) -> CapacitySnapshot:
        """Every replica's state now; cheap (cached until a scrape or a request changes it)."""
        snap = self._snapshot
        if snap is None:
            for name in self._dirty:
                self._states[name] = tuple(r.state() for r in self._replicas[name].values())
            self._dirty.clear()
            snap = self._snapshot = CapacitySnapshot(dict(self._states))
        return snap

    def acquire(self, provider: str, api_base: str) -> None:
        """The gateway sends a request to this replica (no-op for one not monitored)."""
        r = self._find(provider, api_base)
        if r is not None:
            r.in_flight += 1
            self._changed(r)

    def release(self, provider: str, api_base: str, ok: bool = True) -> None:
        """That request is over. `ok` is not a health signal: an error answer came from a live
        server, and connection failures are reported with `record_failure`."""
        r = self._find(provider, api_base)
        if r is not None and r.in_flight > 0:
            r.in_flight -= 1
            self._changed(r)

    def record_failure(self, provider: str, api_base: str) -> None:
        """The proxy could not connect to this replica: counts like a failed scrape."""
        r = self._find(provider, api_base)
        if r is not None:
            self._fail(r, "connection failed")

    # --- what a scrape feeds in (the poller calls these; tests may too) -------------------

    def ingest(self, provider: str, api_base: str, text: str) -> None:
        """A /metrics page was read from this replica; unreadable text counts as a failure."""
        r = self._find(provider, api_base)
        if r is None:
            return
        try:
            sample = parse_vllm_metrics(text)
        except MetricsError as e:
            self._fail(r, str(e))
            return
        if not r.healthy:
            log.info("replica %s (%s) is back", r.api_base, r.provider)
        r.latency = r.latency.learn(r.sample, sample)
        r.sample = sample
        r.in_flight_at_scrape = r.in_flight
        r.scraped_at = self._clock()
        r.failures = 0
        r.last_error = ""
        self._changed(r)

    def scrape_failed(self, provider: str, api_base: str, error: str) -> None:
        r = self._find(provider, api_base)
        if r is not None:
            self._fail(r, error)

    # --- internals ------------------------------------------------------------------------

    def _all(self) -> list[_Replica]:
        return [r for pool in self._replicas.values() for r in pool.values()]

    def _find(self, provider: str, api_base: str) -> _Replica | None:
        pool = self._replicas.get(provider)
        return pool.get(api_base) if pool is not None else None

    def _changed(self, r: _Replica) -> None:
        self._dirty.add(r.provider)
        self._snapshot = None

    def _fail(self, r: _Replica, error: str) -> None:
        r.failures += 1
        r.last_error = error
        if r.failures == r.unhealthy_after:
            log.warning(
                "replica %s (%s) taken out after %d failures: %s (metrics: %s)",
                r.api_base,
                r.provider,
                r.failures,
                error,
                r.url,
            )
        self._changed(r)

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        replicas = self._all()
        for r in replicas:
            r.next_due = loop.time()
        while True:
            now = loop.time()
            due = [r for r in replicas if r.next_due <= now]
            if due:
                await asyncio.gather(*(self._scrape(r) for r in due))
            now = loop.time()
            for r in due:  # keep the cadence; skip beats missed while a scrape was slow
                r.next_due += r.interval_s
                if r.next_due <= now:
                    r.next_due = now + r.interval_s
            await asyncio.sleep(max(min(r.next_due for r in replicas) - now, 0.0))

    async def _scrape(self, r: _Replica) -> None:
        assert self._session is not None
        try:
            async with self._session.get(r.url) as resp:
                if resp.status != 200:
                    self._fail(r, f"/metrics answered HTTP {resp.status}")
                    return
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            self._fail(r, _describe(e))
            return
        except Exception as e:  # the poller must outlive any surprise
            log.exception("scraping %s failed", r.url)
            self._fail(r, _describe(e))
            return
        self.ingest(r.provider, r.api_base, text)


def _describe(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, aiohttp.ClientConnectorError):
        return f"cannot connect ({e.os_error.strerror or e.os_error})"
    return f"{type(e).__name__}: {e}"[:200]

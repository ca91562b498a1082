"""One simulated upstream's live state: its batch, its FIFO queue, its counters and /metrics text.

Each path prefix of the simulator (`/{profile}` or `/{profile}@{replica}`; the root is the
default profile's) gets one `Upstream`, so one process stands in for several independent
servers. Admission follows vLLM's scheduler in spirit: a request runs when the batch has room
(`max_num_seqs`) and its tokens fit the KV cache, otherwise it waits, first come first served.

`/metrics` is vLLM's Prometheus text, written by hand (cheaper than a registry on the hot path)
with the names, HELP texts, label names and buckets of `vllm/v1/metrics/loggers.py`
(vLLM 0.33.0, shared/reference/ECONOMICS.md §4.1): counters are exposed with `_total`, labels
are `engine` and `model_name` (plus `finished_reason`), sorted as prometheus_client sorts them.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Sequence

from gateway.simulator.profiles import Profile

# vllm/v1/metrics/loggers.py: `vllm:time_to_first_token_seconds` buckets ...
TTFT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
# ... and `request_latency_buckets`, shared by e2e / queue / inference time histograms.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
# vLLM's FinishReason values (vllm/v1/engine/__init__.py): the request_success label set.
FINISHED_REASONS = ("stop", "length", "abort")
_PREFIX_MEMORY = 4096  # prompt-cache keys remembered per upstream (oldest forgotten first)


class Histogram:
    """A Prometheus histogram without the registry: fixed bounds, per-bucket counts."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # bucket i holds value <= bounds[i]
        self.total += value
        self.count += 1

    def render(self, name: str, help_text: str, labels: str) -> list[str]:
        lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        cumulative = 0
        for bound, hits in zip(self.bounds, self.counts, strict=False):
            cumulative += hits
            lines.append(
                f'{name}_bucket{{engine="0",le="{_num(bound)}",{labels}}} {_num(cumulative)}'
            )
        lines.append(f'{name}_bucket{{engine="0",le="+Inf",{labels}}} {_num(self.count)}')
        lines.append(f'{name}_count{{engine="0",{labels}}} {_num(self.count)}')
        lines.append(f'{name}_sum{{engine="0",{labels}}} {_num(self.total)}')
        return lines


def _num(value: float) -> str:
    """prometheus_client's float formatting: `1.0`, `0.001`, `2560.0`."""
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Upstream:
    """The batch, queue and counters of one simulated server."""

    def __init__(self, key: str, profile: Profile) -> None:
        self.key = key
        self.profile = profile
        self.running = 0
        self.kv_tokens = 0
        self._waiters: deque[tuple[int, int, asyncio.Future[None]]] = deque()
        self._prefixes: OrderedDict[int, None] = OrderedDict()
        self._expiring: OrderedDict[int, float] = OrderedDict()  # explicit cache: key → expiry
        self.reset()

    def reset(self) -> None:
        """Forget counters, histograms and cached prefixes (requests in flight keep running)."""
        self.requests: dict[str, int] = {}
        self.prompt_tokens = 0
        self.cached_tokens = 0
        self.generation_tokens = 0
        self.finished = dict.fromkeys(FINISHED_REASONS, 0)
        self.ttft = Histogram(TTFT_BUCKETS)
        self.e2e = Histogram(LATENCY_BUCKETS)
        self.queue = Histogram(LATENCY_BUCKETS)
        self._prefixes.clear()
        self._expiring.clear()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def count(self, endpoint: str) -> None:
        self.requests[endpoint] = self.requests.get(endpoint, 0) + 1

    # --- admission -------------------------------------------------------------------------

    def _fits(self, seqs: int, kv: int) -> bool:
        if self.running == 0:  # an oversized request still runs alone rather than wait forever
            return True
        capacity = self.profile.kv_cache_tokens
        return self.running + seqs <= self.profile.max_num_seqs and (
            capacity <= 0 or self.kv_tokens + kv <= capacity
        )

    async def admit(self, seqs: int, kv: int) -> None:
        """Join the batch now if it has room, else wait in FIFO order (vLLM's FCFS policy)."""
        if not self._waiters and self._fits(seqs, kv):
            self.running += seqs
            self.kv_tokens += kv
            return
        entry = (seqs, kv, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await entry[2]
        except asyncio.CancelledError:
            if entry[2].done() and not entry[2].cancelled():
                self.release(seqs, kv)  # admitted, then cancelled before it could run
            else:
                self._waiters.remove(entry)
                self._wake()
            raise

    def release(self, seqs: int, kv: int) -> None:
        self.running -= seqs
        self.kv_tokens -= kv
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0], self._waiters[0][1]):
            seqs, kv, future = self._waiters.popleft()
            if future.done():
                continue
            self.running += seqs
            self.kv_tokens += kv
            future.set_result(None)

    # --- accounting ------------------------------------------------------------------------

    def seen_prefix(self, key: int) -> bool:
        """Whether this prompt prefix was seen before (then remember it as most recent)."""
        if key in self._prefixes:
            self._prefixes.move_to_end(key)
            return True
        self._prefixes[key] = None
        if len(self._prefixes) > _PREFIX_MEMORY:
            self._prefixes.popitem(last=False)
        return False

    def cache_hit(self, key: int, ttl_s: float, now: float) -> bool:
        """Explicit prompt caching with a lifetime (Anthropic's cache_control): whether `key`
        is cached at `now`; either way it is (re)written to expire `ttl_s` from now, since a
        cache read refreshes the entry."""
        expires = self._expiring.pop(key, None)
        self._expiring[key] = now + ttl_s
        if len(self._expiring) > _PREFIX_MEMORY:
            self._expiring.popitem(last=False)
        return expires is not None and expires > now

    def finish(
        self,
        prompt_tokens: int,
        cached_tokens: int,
        generated: int,
        reason: str,
        ttft: float | None,
        e2e: float,
        queued: float = 0.0,
    ) -> None:
        self.prompt_tokens += prompt_tokens
        self.cached_tokens += cached_tokens
        self.generation_tokens += generated
        self.finished[reason] = self.finished.get(reason, 0) + 1
        if ttft is not None:
            self.ttft.observe(ttft)
        self.e2e.observe(e2e)
        self.queue.observe(queued)

    def stats(self) -> dict[str, object]:
        return {
            "profile": self.profile.name,
            "requests": dict(self.requests),
            "running": self.running,
            "waiting": self.waiting,
            "kv_cache_usage_perc": self.kv_usage(),
            "prompt_tokens": self.prompt_tokens,
            "generation_tokens": self.generation_tokens,
            "finished": dict(self.finished),
        }

    def kv_usage(self) -> float:
        capacity = self.profile.kv_cache_tokens
        return min(self.kv_tokens / capacity, 1.0) if capacity > 0 else 0.0

    def metrics_text(self) -> bytes:
        """vLLM's /metrics for this upstream, in the Prometheus text format 0.0.4."""
        labels = f'model_name="{_escape(self.profile.served_model)}"'
        sample = f'{{engine="0",{labels}}}'
        lines: list[str] = []

        def scalar(name: str, kind: str, help_text: str, value: float) -> None:
            lines.extend(
                (
                    f"# HELP {name} {help_text}",
                    f"# TYPE {name} {kind}",
                    f"{name}{sample} {_num(value)}",
                )
            )

        scalar(
            "vllm:num_requests_running",
            "gauge",
            "Number of requests in model execution batches.",
            self.running,
        )
        scalar(
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
            self.waiting,
        )
        scalar(
            "vllm:kv_cache_usage_perc",
            "gauge",
            "KV-cache usage. 1 means 100 percent usage.",
            self.kv_usage(),
        )
        scalar(
            "vllm:prompt_tokens_total",
            "counter",
            "Number of prefill tokens processed.",
            self.prompt_tokens,
        )
        scalar(
            "vllm:prompt_tokens_cached_total",
            "counter",
            "Number of cached prompt tokens (local + external).",
            self.cached_tokens,
        )
        scalar(
            "vllm:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
            self.generation_tokens,
        )
        lines.append("# HELP vllm:request_success_total Count of successfully processed requests.")
        lines.append("# TYPE vllm:request_success_total counter")
        for reason, hits in self.finished.items():
            lines.append(
                f'vllm:request_success_total{{engine="0",finished_reason="{reason}",{labels}}} '
                f"{_num(hits)}"
            )
        lines += self.ttft.render(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            labels,
        )
        lines += self.e2e.render(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            labels,
        )
        lines += self.queue.render(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            labels,
        )
        return ("\n".join(lines) + "\n").encode()

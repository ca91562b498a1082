"""Live capacity of vLLM replicas, the pure part: /metrics text in, `ReplicaState`s out.

This module owns what a scrape means — reading vLLM's Prometheus text, learning a replica's
recent latencies from its histograms, predicting the time to first token of the next request,
deciding when a replica is "full" — and the immutable `CapacitySnapshot` the router reads on
every request. No I/O, no clock, no state: `capacity.py` does the polling and the counting.

The metric names are vLLM's (`vllm/v1/metrics/loggers.py`; shared/reference/ECONOMICS.md §4):
`vllm:num_requests_running`, `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc` (named
`vllm:gpu_cache_usage_perc` before 0.9.2, both exposed 0.9.2–0.11, the old one gone in 0.12),
and the histograms `vllm:time_to_first_token_seconds`, `vllm:e2e_request_latency_seconds`,
`vllm:request_queue_time_seconds`, whose names did not change. Every sample carries
`model_name` and `engine` labels; gauges and histograms are summed over them (a data-parallel
server has one engine per GPU), KV-cache usage is the fullest engine's.

The predicted TTFT of a request sent now (`predict_ttft_s`), from what vLLM measured lately:

    base  = mean TTFT − mean queue time          (prefill + first step, without queueing)
    S     = mean e2e latency − mean queue time   (time a request holds a batch slot)
    TTFT  = base                                 when nothing waits
          = base + (waiting + ½) × S / running   when a queue has formed

A queue means the batch is full: a newcomer is admitted after the `waiting` requests ahead of
it, and slots free up at `running / S` per second (Little's law), the first after half a
service time on average. The means are exponentially weighted over scrape intervals, so they
follow load changes within a few seconds; nothing is predicted before vLLM has observed a
request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_USAGE = "vllm:kv_cache_usage_perc"
KV_USAGE_OLD = "vllm:gpu_cache_usage_perc"  # before vLLM 0.9.2
TTFT = "vllm:time_to_first_token_seconds"
E2E = "vllm:e2e_request_latency_seconds"
QUEUE = "vllm:request_queue_time_seconds"
_HISTOGRAMS = (TTFT, E2E, QUEUE)
_WANTED = frozenset(
    (RUNNING, WAITING, KV_USAGE, KV_USAGE_OLD)
    + tuple(f"{h}{suffix}" for h in _HISTOGRAMS for suffix in ("_sum", "_count"))
)

EWMA_ALPHA = 0.3  # weight of the newest scrape interval in the latency means
MIN_SERVICE_S = 0.001


class MetricsError(ValueError):
    """The text is not a vLLM /metrics page (no `vllm:num_requests_running`)."""


class Totals(NamedTuple):
    """A histogram's cumulative `_sum` (seconds) and `_count` (observations)."""

    seconds: float = 0.0
    observations: float = 0.0


@dataclass(frozen=True, slots=True)
class VllmSample:
    """One scrape of one replica."""

    running: float
    waiting: float
    kv_cache_usage: float
    ttft: Totals = Totals()
    e2e: Totals = Totals()
    queue: Totals = Totals()


def parse_vllm_metrics(text: str) -> VllmSample:
    """Read the numbers the gateway needs from vLLM's Prometheus text (format 0.0.4).

    A hand-written reader of sample lines: it looks only at the few names above and skips the
    rest (hundreds of bucket lines) by name. The scrape runs on the gateway's event loop, and
    prometheus_client's `text_string_to_metric_families` took 7.4 ms on the 720-line page of a
    two-engine vLLM (this reader: 0.16 ms, on the project's 2-core machine), a stall for every
    request in flight once a second per replica. The unit tests check both agree. Label values
    may hold spaces or braces: the value is read after the last `}`.
    """
    sums: dict[str, float] = {}
    kv: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue  # comments, blank lines, other exporters' metrics
        brace = line.find("{")
        space = line.find(" ")
        end = brace if brace != -1 and (space == -1 or brace < space) else space
        name = line[:end]
        if name not in _WANTED:
            continue
        rest = line[line.rindex("}") + 1 :] if brace == end else line[end:]
        try:
            value = float(rest.split()[0])
        except (IndexError, ValueError):
            raise MetricsError(f"unreadable sample line: {line[:120]!r}") from None
        if math.isnan(value):
            continue
        if name in (KV_USAGE, KV_USAGE_OLD):
            kv[name] = max(kv.get(name, 0.0), value)
        else:
            sums[name] = sums.get(name, 0.0) + value
    if RUNNING not in sums:
        raise MetricsError(f"no {RUNNING} sample: not a vLLM /metrics page")

    def totals(h: str) -> Totals:
        return Totals(sums.get(f"{h}_sum", 0.0), sums.get(f"{h}_count", 0.0))

    return VllmSample(
        running=sums[RUNNING],
        waiting=sums.get(WAITING, 0.0),
        kv_cache_usage=kv.get(KV_USAGE, kv.get(KV_USAGE_OLD, 0.0)),
        ttft=totals(TTFT),
        e2e=totals(E2E),
        queue=totals(QUEUE),
    )


# --- latency, learned from the histograms ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latency:
    """Recent mean times (seconds) of requests on one replica; None until observed."""

    ttft_s: float | None = None
    e2e_s: float | None = None
    queue_s: float | None = None

    def learn(
        self, before: VllmSample | None, after: VllmSample, alpha: float = EWMA_ALPHA
    ) -> Latency:
        """Fold in the requests vLLM observed between two scrapes (all of them on the first)."""
        return Latency(
            _ewma(self.ttft_s, _interval_mean(before.ttft if before else None, after.ttft), alpha),
            _ewma(self.e2e_s, _interval_mean(before.e2e if before else None, after.e2e), alpha),
            _ewma(
                self.queue_s, _interval_mean(before.queue if before else None, after.queue), alpha
            ),
        )


def _interval_mean(before: Totals | None, after: Totals) -> float | None:
    """Mean of the observations made between two cumulative readings; a counter that went
    backwards means the server restarted, and then everything it reports is new."""
    if before is None or after.observations < before.observations:
        before = Totals()
    count = after.observations - before.observations
    if count <= 0:
        return None
    return max((after.seconds - before.seconds) / count, 0.0)


def _ewma(prev: float | None, new: float | None, alpha: float) -> float | None:
    if new is None:
        return prev
    return new if prev is None else prev + alpha * (new - prev)


def predict_ttft_s(latency: Latency, running: float, waiting: float) -> float | None:
    """Expected time to first token of a request sent now (see the module docstring)."""
    if latency.ttft_s is None:
        return None
    queued = latency.queue_s or 0.0
    base = max(latency.ttft_s - queued, 0.0)
    if waiting <= 0:
        return base
    if latency.e2e_s is None:
        return None  # a queue, but no finished request yet to tell how fast it drains
    service = max(latency.e2e_s - queued, base, MIN_SERVICE_S)
    return base + (waiting + 0.5) * service / max(running, 1.0)


# --- load between scrapes, and when a replica is full ----------------------------------------


class Load(NamedTuple):
    """Requests on a replica now: the last scrape moved by the gateway's own traffic since."""

    running: float
    waiting: float

    @property
    def outstanding(self) -> float:
        return self.running + self.waiting


def estimate_load(sample: VllmSample | None, in_flight: int, in_flight_at_scrape: int) -> Load:
    """What the replica holds now, between two scrapes.

    Requests the gateway sent since the scrape are on the replica too (those it got back are
    gone), and the replica holds at least the gateway's own outstanding requests. While vLLM
    reported a queue, its batch was full: the extra requests queue behind it. Otherwise they
    are assumed to run (vLLM does not expose its batch limit; `max_in_flight` bounds this).
    """
    if sample is None:
        return Load(float(in_flight), 0.0)
    total = max(
        sample.running + sample.waiting + (in_flight - in_flight_at_scrape), float(in_flight), 0.0
    )
    running = min(total, sample.running) if sample.waiting > 0 else total
    return Load(running, total - running)


@dataclass(frozen=True, slots=True)
class Limits:
    """A provider's `capacity:` thresholds, per replica."""

    max_waiting: int = 0
    max_predicted_ttft_s: float | None = None
    max_in_flight: int | None = None


def full_because(
    limits: Limits, load: Load, predicted_ttft_s: float | None, in_flight: int
) -> str | None:
    """Why a replica takes no more requests (the first rule broken), or None if it has room."""
    if load.waiting > limits.max_waiting:
        return f"waiting={_n(load.waiting)}>{limits.max_waiting}"
    cap = limits.max_predicted_ttft_s
    if cap is not None and predicted_ttft_s is not None and predicted_ttft_s > cap:
        return f"ttft~{predicted_ttft_s * 1000:.0f}ms>{cap * 1000:.0f}ms"
    if limits.max_in_flight is not None and in_flight >= limits.max_in_flight:
        return f"in_flight={in_flight}>={limits.max_in_flight}"
    return None


def _n(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:.1f}"


# --- what the router reads --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplicaState:
    provider: str
    api_base: str
    healthy: bool
    running: float  # vllm:num_requests_running at the last good scrape (sum over engines/models)
    waiting: float  # vllm:num_requests_waiting
    kv_cache_usage: float  # vllm:kv_cache_usage_perc (0..1); older vLLM: vllm:gpu_cache_usage_perc
    in_flight: int  # the gateway's own outstanding requests to this replica
    scraped_at: float | None  # the monitor's clock at the last good scrape
    predicted_ttft_s: float | None
    full: bool  # waiting > max_waiting, predicted TTFT > max, or in_flight >= the in-flight cap
    reason: str  # short human text for route_reason, e.g. "running=12 waiting=0 kv=0.31"
    # requests on the replica now (running + waiting moved by the gateway's traffic since the
    # scrape, at least in_flight): what "least outstanding" compares
    outstanding: float = 0.0

    @property
    def available(self) -> bool:
        return self.healthy and not self.full


def replica_state(
    provider: str,
    api_base: str,
    *,
    limits: Limits,
    sample: VllmSample | None,
    latency: Latency,
    in_flight: int,
    in_flight_at_scrape: int,
    scraped_at: float | None,
    failures: int,
    unhealthy_after: int,
    last_error: str = "",
) -> ReplicaState:
    """The state of one replica from what its monitor knows — pure."""
    load = estimate_load(sample, in_flight, in_flight_at_scrape)
    predicted = predict_ttft_s(latency, load.running, load.waiting)
    why_full = full_because(limits, load, predicted, in_flight)
    healthy = failures < unhealthy_after
    if sample is None:
        numbers = f"not scraped yet in_flight={in_flight}"
    else:
        numbers = (
            f"running={_n(sample.running)} waiting={_n(sample.waiting)} "
            f"kv={sample.kv_cache_usage:.2f} in_flight={in_flight}"
        )
        if predicted is not None:
            numbers += f" ttft~{predicted * 1000:.0f}ms"
    if not healthy:
        reason = f"down ({failures} failures: {last_error}) " + numbers
    elif why_full is not None:
        reason = f"full ({why_full}) " + numbers
    else:
        reason = numbers
    return ReplicaState(
        provider=provider,
        api_base=api_base,
        healthy=healthy,
        running=sample.running if sample else 0.0,
        waiting=sample.waiting if sample else 0.0,
        kv_cache_usage=sample.kv_cache_usage if sample else 0.0,
        in_flight=in_flight,
        scraped_at=scraped_at,
        predicted_ttft_s=predicted,
        full=why_full is not None,
        reason=reason,
        outstanding=load.outstanding,
    )


@dataclass(frozen=True, slots=True)
class CapacitySnapshot:
    """Every monitored replica at one moment; providers not in `replicas` are not monitored."""

    replicas: Mapping[str, tuple[ReplicaState, ...]]  # provider name -> its replicas

    def has_headroom(self, provider: str) -> bool:
        """Some healthy replica is not full (always True for providers not monitored)."""
        states = self.replicas.get(provider)
        return states is None or any(r.available for r in states)

    def pick(self, provider: str) -> ReplicaState | None:
        """The healthy, non-full replica with the fewest outstanding requests (then the emptiest
        KV cache, then config order); None when there is none or the provider is not monitored."""
        best: ReplicaState | None = None
        for r in self.replicas.get(provider, ()):
            if r.available and (
                best is None
                or (r.outstanding, r.kv_cache_usage) < (best.outstanding, best.kv_cache_usage)
            ):
                best = r
        return best

    def describe(self, provider: str) -> str:
        """One line for route_reason: the replica a request would go to, or why none."""
        states = self.replicas.get(provider)
        if not states:
            return ""
        if len(states) == 1:
            return states[0].reason
        chosen = self.pick(provider)
        free = sum(r.available for r in states)
        if chosen is not None:
            index = states.index(chosen) + 1
            return f"replica {index}/{len(states)} ({free} free): {chosen.reason}"
        return "no replica free: " + "; ".join(f"{i}: {r.reason}" for i, r in enumerate(states, 1))

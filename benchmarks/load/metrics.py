"""Statistics of one load point, exactly as vLLM's benchmark defines them — pure.

Follows `calculate_metrics` in `vllm/benchmarks/serve.py` (vllm-project/vllm @009e6d4a; the
same code as `vllm bench serve` 0.33.0), over the results of
`benchmarks.common.request`:

- TTFT per successful streamed request; E2EL (`latency`) per successful request.
- TPOT = (E2EL − TTFT) / (output_tokens − 1), only for requests with more than one output token
  ("Time per Output Token (excl. 1st token)"); for goodput a request with ≤ 1 token has TPOT 0.
- ITL = every inter-chunk gap of every successful request, pooled (chunk-weighted).
- request_throughput = completed / duration; output_throughput = Σ output tokens / duration;
  total_token_throughput = (Σ prompt tokens of successful requests + Σ output) / duration.
- goodput = requests meeting every given SLO (`slo ≥ value`, inclusive) / duration.
- max_output_tokens_per_s: chunk arrival times (start + TTFT + cumulative ITL) in 1-s bins from
  the earliest start; max_concurrent_requests: the exact peak of overlapping [start, end).
- mean, median, population std; percentiles are `benchmarks.common.stats.percentile` (NumPy's
  default linear interpolation).

Token counts are the server's `usage` (prompt and completion tokens); a request whose server
reported none counts its content chunks instead and is tallied in `usage_missing`. Two
deliberate differences: non-streamed requests have no TTFT/TPOT/ITL, so those statistics are
`None` when nothing was streamed (vLLM reports 0); and `slo_attainment` (good / all requests,
failures included) is added, since a capacity decision needs the fraction, not only the rate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.common.result import RequestResult
from benchmarks.common.stats import percentile

DEFAULT_PERCENTILES: tuple[float, ...] = (90.0, 99.0)


@dataclass(frozen=True, slots=True)
class Slo:
    """Service-level objectives in milliseconds (vLLM's `--goodput ttft:… tpot:… e2el:…`)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2el_ms: float | None = None

    @property
    def empty(self) -> bool:
        return self.ttft_ms is None and self.tpot_ms is None and self.e2el_ms is None

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True, slots=True)
class Stat:
    """One latency metric in milliseconds."""

    mean: float
    median: float
    std: float
    percentiles: dict[str, float]  # "p90" → ms

    def p(self, q: float) -> float:
        return self.percentiles[f"p{q:g}"]


@dataclass(frozen=True, slots=True)
class BenchmarkSummary:
    completed: int
    failed: int
    duration_s: float
    total_input: int
    total_output: int
    total_cached_input: int
    request_throughput: float
    request_goodput: float | None
    output_throughput: float
    total_token_throughput: float
    slo_attainment: float | None
    ttft: Stat | None
    tpot: Stat | None
    itl: Stat | None
    e2el: Stat | None
    max_output_tokens_per_s: float
    max_concurrent_requests: int
    mean_queue_ms: float
    usage_missing: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def mean_input_tokens(self) -> float:
        return self.total_input / self.completed if self.completed else 0.0

    @property
    def mean_output_tokens(self) -> float:
        return self.total_output / self.completed if self.completed else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean_input_tokens"] = self.mean_input_tokens
        d["mean_output_tokens"] = self.mean_output_tokens
        return d


def stat(values_s: Sequence[float], percentiles: Iterable[float]) -> Stat | None:
    """mean/median/std/percentiles of values in seconds, reported in milliseconds."""
    if not values_s:
        return None
    n = len(values_s)
    mean = math.fsum(values_s) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in values_s) / n)  # np.std: population
    return Stat(
        mean=mean * 1000,
        median=percentile(values_s, 50.0) * 1000,
        std=std * 1000,
        percentiles={f"p{q:g}": percentile(values_s, q) * 1000 for q in percentiles},
    )


def _output_tokens(r: RequestResult) -> int:
    if r.usage_reported:
        return r.output_tokens
    return max(r.chunks - 1, 1) if r.streamed else 1  # content chunks after the role chunk


def _peaks(results: Sequence[RequestResult]) -> tuple[float, int]:
    """vLLM's max_output_tokens_per_s (1-s bins of chunk times) and peak concurrency."""
    ok = [r for r in results if r.success]
    if not ok:
        return 0.0, 0
    t0 = min(r.start_time for r in ok)
    bins: Counter[int] = Counter()
    for r in ok:
        if not r.streamed:
            continue
        t = r.start_time + r.ttft
        bins[int(t - t0)] += 1
        for gap in r.itl:
            t += gap
            bins[int(t - t0)] += 1
    events = sorted([(r.start_time, 1) for r in ok] + [(r.start_time + r.latency, -1) for r in ok])
    running = peak = 0
    for _, delta in events:  # departures sort before arrivals at the same instant: [start, end)
        running += delta
        peak = max(peak, running)
    return float(max(bins.values(), default=0)), peak


def _is_good(slo: Slo, ttft: float, tpot: float, e2el: float) -> bool:
    checks = ((slo.ttft_ms, ttft), (slo.tpot_ms, tpot), (slo.e2el_ms, e2el))
    return all(limit / 1000.0 >= value for limit, value in checks if limit is not None)


def summarize(
    results: Sequence[RequestResult],
    duration_s: float,
    slo: Slo | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> BenchmarkSummary:
    """vLLM's `calculate_metrics` over measured results and the point's duration."""
    ttfts: list[float] = []
    tpots: list[float] = []
    itls: list[float] = []
    e2els: list[float] = []
    total_input = total_output = cached = completed = good = usage_missing = 0
    errors: Counter[str] = Counter()
    for r in results:
        if not r.success:
            errors[r.error.splitlines()[0][:120] if r.error else "unknown error"] += 1
            continue
        completed += 1
        out = _output_tokens(r)
        usage_missing += not r.usage_reported
        total_output += out
        total_input += r.prompt_len
        cached += r.cached_tokens
        e2els.append(r.latency)
        tpot = 0.0
        if r.streamed:
            ttfts.append(r.ttft)
            itls.extend(r.itl)
            if out > 1:
                tpot = (r.latency - r.ttft) / (out - 1)
                tpots.append(tpot)
        if slo is not None and not slo.empty and _is_good(slo, r.ttft, tpot, r.latency):
            good += 1
    dur = duration_s if duration_s > 0 else float("nan")
    with_slo = slo is not None and not slo.empty
    peak_tok_s, peak_running = _peaks(results)
    return BenchmarkSummary(
        completed=completed,
        failed=len(results) - completed,
        duration_s=duration_s,
        total_input=total_input,
        total_output=total_output,
        total_cached_input=cached,
        request_throughput=completed / dur,
        request_goodput=good / dur if with_slo else None,
        output_throughput=total_output / dur,
        total_token_throughput=(total_input + total_output) / dur,
        slo_attainment=(good / len(results) if results else 0.0) if with_slo else None,
        ttft=stat(ttfts, percentiles),
        tpot=stat(tpots, percentiles),
        itl=stat(itls, percentiles),
        e2el=stat(e2els, percentiles),
        max_output_tokens_per_s=peak_tok_s,
        max_concurrent_requests=peak_running,
        mean_queue_ms=(
            math.fsum(r.queue_time for r in results) / len(results) * 1000 if results else 0.0
        ),
        usage_missing=usage_missing,
        errors=dict(errors.most_common(10)),
    )

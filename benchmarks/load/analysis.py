"""From measured points to decisions: SLO verdicts, the best point, API comparison — pure.

Everything here works on plain data (the summaries of `benchmarks.load.metrics` and the run record
that `benchmarks.load.run` writes as JSON), so `gateway bench calibrate` can re-read an old run
from the database and decide with the same code.

- A point is *within the SLO* when it completed requests and at least `attainment` of all its
  requests (failures count against it) met every SLO — vLLM's goodput test per request,
  DistServe's attainment per point. Default 0.99: "p99 within the SLO".
- The *best point* is the within-SLO point with the highest output throughput (on ties, the
  lower load); with no SLO every point qualifies.
- Calibration takes the best point's output and total tokens/s and, as capacity, its
  concurrency (a closed-loop point) or the peak concurrency measured there (a rate point).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from benchmarks.load.economics import (
    Gpu,
    TokenMix,
    api_usd_per_mtok_output,
    api_usd_per_mtok_total,
    break_even,
    gpu_usd_per_mtok,
)
from benchmarks.load.metrics import BenchmarkSummary
from gateway.core import PER_MTOK, Price

DEFAULT_ATTAINMENT = 0.99


def within_slo(summary: Mapping[str, Any], attainment: float) -> bool:
    """`summary` is `BenchmarkSummary.as_dict()`; no SLO given means every point qualifies."""
    if not summary.get("completed"):
        return False
    got = summary.get("slo_attainment")
    return True if got is None else float(got) >= attainment


def best_point(points: Sequence[Mapping[str, Any]], attainment: float) -> int | None:
    """Index of the within-SLO point with the most output tokens/s (first on ties)."""
    best: int | None = None
    for i, p in enumerate(points):
        s = p["summary"]
        if not within_slo(s, attainment):
            continue
        if best is None or s["output_throughput"] > points[best]["summary"]["output_throughput"]:
            best = i
    return best


def point_costs(gpu: Gpu | None, summary: BenchmarkSummary) -> dict[str, float | None]:
    if gpu is None:
        return {"gpu_usd_per_mtok_output": None, "gpu_usd_per_mtok_total": None}
    out = gpu_usd_per_mtok(gpu, summary.output_throughput)
    total = gpu_usd_per_mtok(gpu, summary.total_token_throughput)
    return {"gpu_usd_per_mtok_output": _f(out), "gpu_usd_per_mtok_total": _f(total)}


def _f(x: Decimal | None) -> float | None:
    return None if x is None else float(x)


def _per_mtok(x: Decimal | None) -> float | None:
    return None if x is None else float(x * PER_MTOK)


def compare_apis(
    apis: Mapping[str, Price],
    mix: TokenMix,
    gpu: Gpu | None,
    best: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """Each API on the run's token mix, with and without prompt caching, and the break-even."""
    rows = []
    req_tput = best["summary"]["request_throughput"] if best else None
    modes = (False, True) if mix.cached_input > 0 else (False,)
    for name, price in apis.items():
        for caching in modes:
            row: dict[str, Any] = {
                "api": name,
                "caching": caching,
                "input_per_mtok": _per_mtok(price.input),
                "output_per_mtok": _per_mtok(price.output),
                "cache_read_per_mtok": _per_mtok(price.cache_read),
                "usd_per_mtok_output": _f(api_usd_per_mtok_output(mix, price, caching)),
                "usd_per_mtok_total": _f(api_usd_per_mtok_total(mix, price, caching)),
            }
            if gpu is not None:
                be = break_even(gpu, mix, name, price, req_tput, caching)
                row.update(
                    usd_per_request=float(be.api_usd_per_request),
                    break_even_requests_per_month=_f(be.requests_per_month),
                    break_even_output_tokens_per_month=_f(be.output_tokens_per_month),
                    break_even_total_tokens_per_month=_f(be.total_tokens_per_month),
                    utilisation_needed=_f(be.utilisation_needed),
                    gpu_cheaper_at_best_point=be.feasible,
                )
            rows.append(row)
    return rows


@dataclass(frozen=True, slots=True)
class CalibrationChoice:
    point: int
    max_concurrency: int | None
    output_tokens_per_s: float
    total_tokens_per_s: float


def choose_calibration(run: Mapping[str, Any], attainment: float) -> CalibrationChoice | None:
    """The capacity a run supports within its SLO (None when no point met it)."""
    points = run["points"]
    i = best_point(points, attainment)
    if i is None:
        return None
    p = points[i]
    s = p["summary"]
    concurrency = p["shape"].get("concurrency")
    if p["shape"].get("rate") is not None:  # a rate point: what was actually in flight
        concurrency = s.get("max_concurrent_requests") or concurrency
    return CalibrationChoice(
        i, concurrency, float(s["output_throughput"]), float(s["total_token_throughput"])
    )

"""The policy benchmark's figures: from per-request records to a priced day — pure.

How a replayed day becomes a real one (the cost accounting, stated once):

- **Requests and API spend.** Hour `h` was replayed for `hour_s` seconds at its real rate, so
  each replayed request stands for `3600 / hour_s` real ones: API spend, tokens and request
  counts are multiplied by that factor, hour by hour (the Poisson sample of each hour is what
  it is; its noise is in the figures).
- **Output tokens.** Replayed outputs are `1 / output_scale` of the real ones
  (`traffic.py`), so every row's output tokens and output cost are multiplied back
  by `output_scale`; prompts are replayed at full length.
- **Prices.** API rows carry the ledger's own cost (litellm's table or the config's published
  rates, cache reads at the cache-read rate). The ledger prices a self-hosted row at the GPU's
  amortised rate, `hourly_usd × count / 3600 / throughput_tokens_per_s` a token.
- **Two views of the GPU.** *Amortised* (what the ledger says): the local rows' amortised cost,
  i.e. only the share of the GPU the traffic used at its calibrated throughput. *Rented*: the
  GPU is paid `hourly_usd × count` for every hour of the day, busy or idle, plus the API spend.
  The rented view is the bill; the amortised view is what the same traffic would cost if the
  idle hours were sold or shared.
- **Costs per 1M tokens** divide a view's total by the represented tokens (prompt + output,
  real lengths) of the requests that succeeded.

TTFT and latency are the client's (`benchmarks.common.request`, vLLM's definitions: from just
before the POST to the first / the last SSE event with `choices`); percentiles are
`benchmarks.common.stats` (NumPy's linear interpolation). SLO attainment counts a request within
the SLO when it succeeded with TTFT ≤ the route's `slo.ttft_p95_ms`; failed requests count as
misses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from benchmarks.common.stats import percentile_or_none

SECONDS_PER_HOUR = 3600
# H100 $/h for the sensitivity line (shared/reference/ECONOMICS.md §5.2): RunPod Community
# PCIe, the demo config's figure, RunPod Community SXM, Lambda 8× / RunPod Secure SXM
GPU_PRICES = (1.99, 2.49, 2.69, 3.99)


@dataclass(frozen=True, slots=True)
class Record:
    """One replayed request: what the client saw, joined with its ledger row."""

    index: int
    hour: int
    workload: str
    ok: bool
    ttft_s: float | None = None
    latency_s: float | None = None  # E2EL: to the last chunk with choices (vLLM's latency)
    provider: str | None = None
    local: bool = False  # served by a self-hosted (gpu:) provider
    prompt_tokens: int = 0
    completion_tokens: int = 0  # replayed
    input_usd: Decimal = Decimal(0)
    output_usd: Decimal = Decimal(0)  # for the replayed output
    error: str | None = None
    below_bar: bool = False  # served by a model whose true agreement on the task is below the bar
    gate: str = ""  # the quality gate on the chosen model: "explore", "proven" or "" (none)

    def to_json(self) -> dict[str, Any]:
        return {
            "i": self.index,
            "h": self.hour,
            "w": self.workload,
            "ok": self.ok,
            "ttft": self.ttft_s,
            "lat": self.latency_s,
            "p": self.provider,
            "local": self.local,
            "pt": self.prompt_tokens,
            "ct": self.completion_tokens,
            "in": str(self.input_usd),
            "out": str(self.output_usd),
            "err": self.error,
            "bb": self.below_bar,
            "g": self.gate,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Record:
        return cls(
            d["i"],
            d["h"],
            d["w"],
            d["ok"],
            d["ttft"],
            d.get("lat"),
            d["p"],
            d["local"],
            d["pt"],
            d["ct"],
            Decimal(d["in"]),
            Decimal(d["out"]),
            d["err"],
            d.get("bb", False),
            d.get("g", ""),
        )


@dataclass(frozen=True, slots=True)
class Day:
    """How the replay maps onto a real day."""

    hour_s: float  # replay seconds per simulated hour
    output_scale: int  # real output tokens per replayed token
    hours: tuple[int, ...]  # the hours replayed (all 24 for a day)
    rates: tuple[float, ...]  # real requests/s of each hour 0–23
    slo_ms: float
    gpu_usd_per_hour: float  # hourly_usd × count
    capacity_rps: float  # one GPU's measured capacity under the mix

    @property
    def scale(self) -> float:
        """Real seconds per replay second."""
        return SECONDS_PER_HOUR / self.hour_s

    @property
    def peak_hours(self) -> tuple[int, ...]:
        """Replayed hours whose offered rate is above the GPU's capacity."""
        return tuple(h for h in self.hours if self.rates[h] > self.capacity_rps)


def represented_usd(r: Record, day: Day) -> Decimal:
    """A row's cost at real output length, per replayed request (not yet × day.scale)."""
    return r.input_usd + r.output_usd * day.output_scale


def represented_tokens(r: Record, day: Day) -> int:
    return r.prompt_tokens + r.completion_tokens * day.output_scale


def slo_attainment(records: Sequence[Record], slo_ms: float) -> float | None:
    if not records:
        return None
    hit = sum(1 for r in records if r.ok and r.ttft_s is not None and r.ttft_s * 1000 <= slo_ms)
    return hit / len(records)


def _ttft_ms(records: Iterable[Record]) -> list[float]:
    return [r.ttft_s * 1000 for r in records if r.ok and r.ttft_s is not None]


def tpot_ms(r: Record, output_scale: int) -> float | None:
    """Time per real output token after the first (vLLM's TPOT): the replayed stream's gaps
    stand for `output_scale` real tokens each."""
    if not r.ok or r.ttft_s is None or r.latency_s is None or r.completion_tokens < 2:
        return None
    return (r.latency_s - r.ttft_s) * 1000 / ((r.completion_tokens - 1) * output_scale)


def peak_phase(records: Sequence[Record], slo_ms: float) -> dict[str, Any]:
    """The sustained-peak phase: TTFT only. Requests still running when it was cut off count
    as they stand: within the SLO if their first token came in time, else a miss (they had
    waited longer than the SLO when they were cancelled)."""
    ttft = [r.ttft_s * 1000 for r in records if r.ttft_s is not None]
    within = sum(1 for t in ttft if t <= slo_ms)
    return {
        "requests": len(records),
        "no_first_token": len(records) - len(ttft),
        "share_local": sum(r.local for r in records) / len(records) if records else None,
        "ttft_p50_ms": percentile_or_none(ttft, 50),
        "ttft_p95_ms": percentile_or_none(ttft, 95),
        "ttft_p99_ms": percentile_or_none(ttft, 99),
        "slo_attainment": within / len(records) if records else None,
    }


def hourly(records: Sequence[Record], day: Day) -> list[dict[str, Any]]:
    """Per replayed hour: offered rate, requests, share local, TTFT p95, SLO attainment, API $."""
    out = []
    for h in day.hours:
        rs = [r for r in records if r.hour == h]
        ok = [r for r in rs if r.ok]
        api = sum((represented_usd(r, day) for r in rs if not r.local), Decimal(0))
        out.append(
            {
                "hour": h,
                "rate_rps": day.rates[h],
                "requests": len(rs),
                "errors": len(rs) - len(ok),
                "share_local": sum(r.local for r in ok) / len(ok) if ok else None,
                "ttft_p95_ms": percentile_or_none(_ttft_ms(rs), 95),
                "slo_attainment": slo_attainment(rs, day.slo_ms),
                "api_usd": float(api * Decimal(day.scale)),
            }
        )
    return out


def summarize(
    records: Sequence[Record],
    day: Day,
    *,
    uses_gpu: bool,
    shadow: Sequence[Record] = (),
) -> dict[str, Any]:
    """One policy's day: costs in both views (the shadow calls' spend in them, and on a line
    of its own), tokens, share local, TTFT, SLO, errors, and the share of requests a model
    below the quality bar answered — in all, and where the gate had decided (not exploring)."""
    ok = [r for r in records if r.ok]
    scale = Decimal(day.scale)
    # exploration pairs are needed once (face value); the steady sample scales with traffic
    explore_usd = sum((represented_usd(r, day) for r in shadow if r.gate == "explore"), Decimal(0))
    sample_usd = sum((represented_usd(r, day) for r in shadow if r.gate != "explore"), Decimal(0))
    shadow_usd = explore_usd + sample_usd * scale
    api = sum((represented_usd(r, day) for r in records if not r.local), Decimal(0)) * scale
    api += shadow_usd
    amortised = sum((represented_usd(r, day) for r in records if r.local), Decimal(0)) * scale
    rented = Decimal(str(day.gpu_usd_per_hour)) * len(day.hours) if uses_gpu else Decimal(0)
    tokens = sum(represented_tokens(r, day) for r in ok) * day.scale
    ttft = _ttft_ms(records)
    tpot = [t for t in (tpot_ms(r, day.output_scale) for r in records) if t is not None]
    peak = [r for r in records if r.hour in day.peak_hours]
    total_amortised, total_rented = api + amortised, api + rented

    def per_mtok(usd: Decimal) -> float | None:
        return float(usd) / tokens * 1e6 if tokens else None

    return {
        "requests": len(records),
        "requests_day": len(records) * day.scale,
        "errors": len(records) - len(ok),
        "share_local": sum(r.local for r in ok) / len(ok) if ok else None,
        "ttft_p50_ms": percentile_or_none(ttft, 50),
        "ttft_p95_ms": percentile_or_none(ttft, 95),
        "ttft_p99_ms": percentile_or_none(ttft, 99),
        "tpot_p50_ms": percentile_or_none(tpot, 50),
        "tpot_p95_ms": percentile_or_none(tpot, 95),
        "slo_attainment": slo_attainment(records, day.slo_ms),
        "peak_slo_attainment": slo_attainment(peak, day.slo_ms),
        "peak_ttft_p95_ms": percentile_or_none(_ttft_ms(peak), 95),
        "api_usd": float(api),
        "local_amortised_usd": float(amortised),
        "gpu_rented_usd": float(rented),
        "total_amortised_usd": float(total_amortised),
        "total_rented_usd": float(total_rented),
        "tokens": tokens,
        "usd_per_mtok_amortised": per_mtok(total_amortised),
        "usd_per_mtok_rented": per_mtok(total_rented),
        "shadow_calls": len(shadow),
        "shadow_usd": float(shadow_usd),
        "shadow_explore_calls": sum(r.gate == "explore" for r in shadow),
        "shadow_explore_usd": float(explore_usd),
        "shadow_sample_usd": float(sample_usd * scale),
        "below_bar": sum(r.below_bar for r in ok) / len(ok) if ok else None,
        "below_bar_decided": (
            sum(r.below_bar and r.gate != "explore" for r in ok) / len(ok) if ok else None
        ),
        "explored": sum(r.gate == "explore" for r in ok) / len(ok) if ok else None,
        "hourly": hourly(records, day),
    }


def _saving(cost: float, baseline: float) -> float | None:
    return 1 - cost / baseline if baseline else None


def compare(
    summaries: Mapping[str, Mapping[str, Any]], records: Mapping[str, Sequence[Record]], day: Day
) -> dict[str, Any]:
    """Savings against all-API, and what would move local-first's (GPU price, volume).

    `value_served_locally`: what all-API paid for exactly the requests local-first served on
    the GPU (same schedule, joined by request index) — the most the GPU can save that day.
    """
    out: dict[str, Any] = {}
    base = summaries.get("all-api")
    if base is None:
        return out
    all_api = base["total_rented_usd"]
    for name in ("local-first", "all-local", "local-first-gated"):
        s = summaries.get(name)
        if s is not None:
            out[f"{name}_saving_rented"] = _saving(s["total_rented_usd"], all_api)
            out[f"{name}_saving_amortised"] = _saving(s["total_amortised_usd"], all_api)
    lf = summaries.get("local-first")
    if lf is None or "local-first" not in records:
        return out
    local = {r.index for r in records["local-first"] if r.local}
    value = sum(
        (represented_usd(r, day) for r in records["all-api"] if r.index in local), Decimal(0)
    ) * Decimal(day.scale)
    hours = len(day.hours)
    ok_api = [r for r in records["all-api"] if r.ok]
    per_request = float(base["api_usd"]) / (len(ok_api) * day.scale) if ok_api else 0.0
    full_day_value = day.capacity_rps * SECONDS_PER_HOUR * hours * per_request
    out.update(
        {
            "value_served_locally_usd": float(value),
            # GPU $/h (whole pool) at which local-first would cost half of all-API this day
            "gpu_usd_per_hour_for_50pct": (0.5 * all_api - lf["api_usd"]) / hours,
            "gpu_usd_per_hour_break_even": (all_api - lf["api_usd"]) / hours,
            "all_api_usd_per_request": per_request,
            # the best case: traffic exactly filling the GPU every hour, nothing spilled
            "max_saving_gpu_full_all_day": (
                1 - day.gpu_usd_per_hour * hours / full_day_value if full_day_value else None
            ),
            # local-first's saving (rented) at other GPU prices, same traffic and spill
            "saving_at_gpu_usd_per_hour": {
                str(p): 1 - (lf["api_usd"] + p * hours) / all_api for p in GPU_PRICES
            },
        }
    )
    return out

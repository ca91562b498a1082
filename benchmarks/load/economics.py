"""What a measured GPU point costs per token, next to the same workload at each API — pure.

All money is `Decimal` (rule R5); throughputs come in as floats and are converted once.
Formulas (shared/reference/ECONOMICS.md §6, "Amortisation model"):

    GPU $/1M output tokens = hourly × count / (output tok/s × 3600) × 1e6      (100 % busy)
    GPU $/1M total tokens  = hourly × count / (total tok/s × 3600) × 1e6
    API $ per request      = uncached in × input + cached in × cache read + out × output
    API $/1M output tokens = API $ per request / output tokens per request × 1e6
                             (the blended figure of ECONOMICS.md's worked example: the API also
                             bills the prompt, so this is comparable with the GPU's $/1M output)
    monthly GPU cost       = hourly × count × 730 h                          (always on)
    break-even requests    = monthly GPU cost / API $ per request            (per month)
    utilisation needed     = break-even requests / (request throughput × 3600 × 730)

The token mix is the run's measured one (the server's usage). "With caching" bills the
workload's shared prefix at the API's cache-read rate on every request — the steady state of a
busy cache. Not modelled: cache-write surcharges (one write per cache lifetime), minimum
cacheable prompt sizes, and storage fees for explicit caches. A GPU point beats an API exactly
when its $/1M total tokens is below the API's for the same mix; more GPUs at the same point
change the break-even volume but not the utilisation needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gateway.core import Price

HOURS_PER_MONTH = Decimal(730)
SECONDS_PER_HOUR = Decimal(3600)
MTOK = Decimal(1_000_000)


def _d(x: float | int | str | Decimal) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


@dataclass(frozen=True, slots=True)
class Gpu:
    hourly_usd: Decimal
    count: int = 1
    name: str = "GPU"

    @classmethod
    def of(cls, hourly_usd: float | str | Decimal, count: int = 1, name: str = "GPU") -> Gpu:
        return cls(_d(hourly_usd), count, name)

    @property
    def pool_hourly_usd(self) -> Decimal:
        return self.hourly_usd * self.count

    @property
    def monthly_usd(self) -> Decimal:
        return self.pool_hourly_usd * HOURS_PER_MONTH


@dataclass(frozen=True, slots=True)
class TokenMix:
    """Mean tokens per request; `cached_input` is what a prompt cache would serve."""

    input: Decimal
    output: Decimal
    cached_input: Decimal = Decimal(0)

    @classmethod
    def of(cls, input: float, output: float, shared_prefix_fraction: float = 0.0) -> TokenMix:
        i = _d(input)
        return cls(i, _d(output), i * _d(shared_prefix_fraction))

    @property
    def total(self) -> Decimal:
        return self.input + self.output


def gpu_usd_per_mtok(gpu: Gpu, tokens_per_s: float) -> Decimal | None:
    """The pool's $ per 1M tokens when it serves `tokens_per_s` around the clock."""
    tps = _d(tokens_per_s)
    if tps <= 0:
        return None
    return gpu.pool_hourly_usd / (tps * SECONDS_PER_HOUR) * MTOK


def api_usd_per_request(mix: TokenMix, price: Price, caching: bool = False) -> Decimal:
    """One request of the mix at an API, with the shared prefix cached or not (exact)."""
    # the same arithmetic as gateway.pricing.cost.cost(), on a fractional (mean) request
    cached = mix.cached_input if caching else Decimal(0)
    read = price.input if price.cache_read is None else price.cache_read
    return (mix.input - cached) * price.input + cached * read + mix.output * price.output


def api_usd_per_mtok_output(mix: TokenMix, price: Price, caching: bool = False) -> Decimal | None:
    if mix.output <= 0:
        return None
    return api_usd_per_request(mix, price, caching) / mix.output * MTOK


def api_usd_per_mtok_total(mix: TokenMix, price: Price, caching: bool = False) -> Decimal | None:
    if mix.total <= 0:
        return None
    return api_usd_per_request(mix, price, caching) / mix.total * MTOK


@dataclass(frozen=True, slots=True)
class BreakEven:
    """The monthly volume at which the always-on GPU pool costs what the API would."""

    api: str
    caching: bool
    api_usd_per_request: Decimal
    requests_per_month: Decimal | None  # None: the API costs nothing for this mix
    output_tokens_per_month: Decimal | None
    total_tokens_per_month: Decimal | None
    utilisation_needed: Decimal | None  # of the point's capacity; > 1 means never at this SLO

    @property
    def feasible(self) -> bool:
        return self.utilisation_needed is not None and self.utilisation_needed <= 1


def break_even(
    gpu: Gpu,
    mix: TokenMix,
    api: str,
    price: Price,
    request_throughput: float | None,
    caching: bool = False,
) -> BreakEven:
    per_request = api_usd_per_request(mix, price, caching)
    if per_request <= 0:
        return BreakEven(api, caching, per_request, None, None, None, None)
    requests = gpu.monthly_usd / per_request
    # the measured point is the whole pool that was benchmarked (gpu.count GPUs behind one URL)
    capacity = (
        _d(request_throughput) * SECONDS_PER_HOUR * HOURS_PER_MONTH
        if request_throughput
        else Decimal(0)
    )
    return BreakEven(
        api=api,
        caching=caching,
        api_usd_per_request=per_request,
        requests_per_month=requests,
        output_tokens_per_month=requests * mix.output,
        total_tokens_per_month=requests * mix.total,
        utilisation_needed=requests / capacity if capacity > 0 else None,
    )

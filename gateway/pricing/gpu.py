"""Self-hosted GPUs as a per-token cost — pure.

An owned GPU pool is a fixed cost: `hourly_usd × count` whether it is busy or idle. Spread over
the tokens it serves at its calibrated throughput (input + output tokens a second within the
SLO, from `gateway bench calibrate` or `gpu.throughput_tokens_per_s`), that is its amortised
price per token — what finance sees in the ledger. For routing, `marginal` mode treats the pool
as already paid while it has headroom (a request there costs nothing extra), `amortized` charges
the same share the ledger does. See shared/reference/ECONOMICS.md §6 (break-even arithmetic).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from gateway.core import Price

SECONDS_PER_HOUR = Decimal(3600)
# a per-token rate to 1e-15 USD: exact sums afterwards, far below the ledger's 1e-12 precision
RATE_QUANTUM = Decimal("1e-15")
CostMode = Literal["marginal", "amortized"]


def amortized_per_token(hourly_usd: float, count: int, tokens_per_s: float) -> Decimal:
    """USD per token when the pool serves `tokens_per_s` (input + output) around the clock."""
    pool = Decimal(str(hourly_usd)) * count
    return (pool / SECONDS_PER_HOUR / Decimal(str(tokens_per_s))).quantize(RATE_QUANTUM)


def amortized_price(hourly_usd: float, count: int, tokens_per_s: float) -> Price:
    rate = amortized_per_token(hourly_usd, count, tokens_per_s)
    return Price(input=rate, output=rate, cache_read=rate, cache_write=rate, source="gpu")


def routing_cost(amortized_usd: Decimal, mode: CostMode, has_headroom: bool) -> Decimal:
    """What a policy should weigh for one request on the pool."""
    if mode == "marginal" and has_headroom:
        return Decimal(0)
    return amortized_usd

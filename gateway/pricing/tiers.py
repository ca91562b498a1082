"""Prices that change with the size of a request's prompt (long-context tiers) — pure.

Some providers charge every token of a request at a higher rate once its prompt passes a
threshold: Gemini 1.5 Flash above 128k prompt tokens, Claude Sonnet 4 above 200k (litellm's
`input_cost_per_token_above_128k_tokens` and friends; shared/reference/ECONOMICS.md §5.1). The
tier is chosen per request from its whole prompt (cached tokens included), so sums of tokens can
be priced exactly only within one tier: `tier_floors` says where the tiers start, so an
aggregation can keep the requests of different tiers apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.core import Price
from gateway.pricing.table import price_from_entry


@dataclass(frozen=True, slots=True)
class TieredPrice:
    """`base` up to the first threshold; `tiers[i]` = (threshold, price) applies to requests
    whose prompt has more than `threshold` tokens (thresholds ascending)."""

    base: Price
    tiers: tuple[tuple[int, Price], ...] = ()

    def for_prompt(self, prompt_tokens: int | Decimal) -> Price:
        chosen = self.base
        for threshold, price in self.tiers:
            if prompt_tokens > threshold:
                chosen = price
        return chosen

    @property
    def thresholds(self) -> tuple[int, ...]:
        return tuple(t for t, _ in self.tiers)


def tier_floors(prices: Iterable[TieredPrice]) -> tuple[int, ...]:
    """Every threshold any of `prices` has, ascending: bucket i of an aggregation holds the
    requests whose prompt is above floors[i-1] and at most floors[i]."""
    return tuple(sorted({t for p in prices for t in p.thresholds}))


def bucket_prompt(bucket: int, floors: tuple[int, ...]) -> int:
    """A prompt size inside `bucket`: enough to choose the tier every request there has."""
    return 0 if bucket == 0 else floors[bucket - 1] + 1


_ABOVE = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|cache_creation_input_token_cost)_above_(\d+)k_tokens$"
)
_FIELD = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_write",
}


def tiered_from_entry(entry: Mapping[str, Any]) -> TieredPrice | None:
    """A litellm price-table entry with its `…_above_<N>k_tokens` tiers (N × 1,000 tokens).

    A tier names only the rates that change; the others keep the base rate."""
    base = price_from_entry(entry)
    if base is None:
        return None
    above: dict[int, dict[str, Decimal]] = {}
    for key, value in entry.items():
        m = _ABOVE.match(key)
        if m and value is not None:
            above.setdefault(int(m.group(2)) * 1000, {})[_FIELD[m.group(1)]] = Decimal(str(value))
    tiers = []
    for threshold in sorted(above):
        rates = above[threshold]
        tiers.append(
            (
                threshold,
                Price(
                    input=rates.get("input", base.input),
                    output=rates.get("output", base.output),
                    cache_read=rates.get("cache_read", base.cache_read),
                    cache_write=rates.get("cache_write", base.cache_write),
                    source=base.source,
                ),
            )
        )
    return TieredPrice(base, tuple(tiers))

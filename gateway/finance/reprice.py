"""Recorded traffic re-priced at other prices: another model, another price list — pure.

Each `Slice` is a sum of requests that share a price (same served model, same long-context
tier), and cost is linear in tokens, so the sums price exactly: the result equals pricing each
request on its own and adding up. The model that served a request keeps its recorded output;
another model is assumed to write `output_ratio` times as many tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from gateway.core import Price, Usage
from gateway.finance.whatif_lines import Groups
from gateway.finance.whatif_query import Slice, TokenSums
from gateway.pricing.cost import cost
from gateway.pricing.tiers import TieredPrice, bucket_prompt

ONE = Decimal(1)


def sums_cost(tokens: TokenSums, price: Price, output_ratio: Decimal = ONE) -> Decimal:
    """What `tokens` cost at `price`, the output scaled by `output_ratio` (exact)."""
    usage = Usage(
        tokens.prompt, tokens.completion, tokens.cached, tokens.cache_write, tokens.reasoning
    )
    c = cost(usage, price)
    return c.input_usd + c.output_usd * output_ratio


def slice_cost(
    s: Slice, price: TieredPrice, floors: tuple[int, ...], output_ratio: Decimal = ONE
) -> Decimal:
    return sums_cost(s.tokens, price.for_prompt(bucket_prompt(s.bucket, floors)), output_ratio)


def reprice(
    slices: Iterable[Slice],
    groups: Groups,
    floors: tuple[int, ...],
    name_of: Callable[[Slice], str],
    price_of: Callable[[str], TieredPrice | None],
    ratio_of: Callable[[str], Decimal],
) -> set[str]:
    """Add every slice's actual and re-priced cost to `groups`; a served model `price_of`
    does not know keeps its recorded cost. Returns those models' names."""
    kept: set[str] = set()
    for s in slices:
        name = name_of(s)
        key = groups.key(s, name, s.provider)
        groups.actual(key, s.tokens.requests, s.actual_usd)
        price = price_of(name)
        if price is None:
            kept.add(name)
            groups.whatif(key, s.tokens.requests, s.actual_usd)
        else:
            groups.whatif(key, s.tokens.requests, slice_cost(s, price, floors, ratio_of(name)))
    return kept

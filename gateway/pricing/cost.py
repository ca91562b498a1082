"""Cost of one request from the usage its provider reported — pure, exact (Decimal).

Token semantics follow OpenAI's usage object, which every adapter normalises to:
`prompt_tokens` counts the whole prompt, of which `cached_prompt_tokens` were read from the
provider's prompt cache and `cache_write_tokens` were written to it (Anthropic's
cache_creation_input_tokens); `completion_tokens` includes any `reasoning_tokens`.
See shared/reference/ECONOMICS.md §7.4 (normalisation rules for the ledger).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gateway.core import Price, Usage


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    input_usd: Decimal
    output_usd: Decimal

    @property
    def total_usd(self) -> Decimal:
        return self.input_usd + self.output_usd


def cost(usage: Usage, price: Price) -> CostBreakdown:
    cached = max(0, usage.cached_prompt_tokens)
    written = max(0, usage.cache_write_tokens)
    uncached = max(0, usage.prompt_tokens - cached - written)
    read_rate = price.input if price.cache_read is None else price.cache_read
    write_rate = price.input if price.cache_write is None else price.cache_write
    input_usd = uncached * price.input + cached * read_rate + written * write_rate
    output_usd = max(0, usage.completion_tokens) * price.output
    return CostBreakdown(input_usd, output_usd)

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

ZERO = Decimal(0)
PER_MTOK = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token. Cache rates fall back to the input rate when a provider has none."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    source: str = "table"  # "table" (litellm) or "config" (an override)

    @classmethod
    def per_mtok(
        cls,
        input: float | str | Decimal,
        output: float | str | Decimal,
        cache_read: float | str | Decimal | None = None,
        cache_write: float | str | Decimal | None = None,
        source: str = "config",
    ) -> Price:
        def d(x: float | str | Decimal | None) -> Decimal | None:
            return None if x is None else Decimal(str(x)) / PER_MTOK

        return cls(d(input) or ZERO, d(output) or ZERO, d(cache_read), d(cache_write), source)


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

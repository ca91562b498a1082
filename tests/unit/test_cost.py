from decimal import Decimal

from gateway.core import Price, Usage
from gateway.pricing.cost import cost

HAIKU = Price.per_mtok("0.80", "4.00", cache_read="0.08", cache_write="1.00")


def test_plain_input_and_output_priced_exactly() -> None:
    c = cost(Usage(prompt_tokens=1000, completion_tokens=500), Price.per_mtok("0.15", "0.60"))
    assert c.input_usd == Decimal("0.00015")
    assert c.output_usd == Decimal("0.0003")
    assert c.total_usd == Decimal("0.00045")


def test_cached_and_written_tokens_use_their_own_rates() -> None:
    # 5,000-token system prompt read from cache, 200 fresh tokens, 5 output tokens
    u = Usage(prompt_tokens=5200, completion_tokens=5, cached_prompt_tokens=5000)
    c = cost(u, HAIKU)
    assert (
        c.input_usd
        == Decimal(5000) * Decimal("0.08") / 10**6 + Decimal(200) * Decimal("0.8") / 10**6
    )
    w = cost(Usage(prompt_tokens=5200, completion_tokens=5, cache_write_tokens=5000), HAIKU)
    assert (
        w.input_usd
        == Decimal(5000) * Decimal("1.00") / 10**6 + Decimal(200) * Decimal("0.8") / 10**6
    )


def test_caching_more_than_halves_the_seed_workload() -> None:
    """The review's arithmetic: a 5,000-token shared system prompt, caching on vs off."""
    no_cache = cost(Usage(prompt_tokens=5200, completion_tokens=5), HAIKU).total_usd
    cached = cost(
        Usage(prompt_tokens=5200, completion_tokens=5, cached_prompt_tokens=5000), HAIKU
    ).total_usd
    assert cached < no_cache / 2


def test_missing_cache_rates_fall_back_to_input_rate() -> None:
    p = Price.per_mtok(1, 2)
    assert (
        cost(Usage(prompt_tokens=10, cached_prompt_tokens=10), p).input_usd == Decimal(10) / 10**6
    )


def test_zero_usage_costs_zero() -> None:
    assert cost(Usage(), HAIKU).total_usd == 0

"""Long-context price tiers (pricing/tiers.py): litellm's `_above_<N>k_tokens` entries, the
tier each prompt size gets, and the buckets an aggregation keeps apart."""

from __future__ import annotations

from decimal import Decimal

from gateway.core import Price
from gateway.pricing.tiers import TieredPrice, bucket_prompt, tier_floors, tiered_from_entry

# litellm's gemini/gemini-1.5-flash entry as 1.79.0 ships it (shared/reference/ECONOMICS.md §5.1)
GEMINI_15_FLASH = {
    "input_cost_per_token": 7.5e-08,
    "output_cost_per_token": 3e-07,
    "input_cost_per_token_above_128k_tokens": 1.5e-07,
    "output_cost_per_token_above_128k_tokens": 6e-07,
    "max_input_tokens": 1048576,
}


def test_a_litellm_entry_with_a_tier() -> None:
    p = tiered_from_entry(GEMINI_15_FLASH)
    assert p is not None
    assert p.thresholds == (128_000,)
    assert p.for_prompt(128_000).input == Decimal("7.5e-08")
    above = p.for_prompt(128_001)
    assert (above.input, above.output) == (Decimal("1.5e-07"), Decimal("6e-07"))
    assert above.cache_read is None  # a rate the tier does not name keeps the base one


def test_an_entry_without_prices_is_none() -> None:
    assert tiered_from_entry({"max_input_tokens": 1000}) is None


def test_buckets_choose_the_same_tier_as_every_prompt_inside_them() -> None:
    a = TieredPrice(Price(Decimal(1), Decimal(1)), ((1000, Price(Decimal(2), Decimal(2))),))
    b = TieredPrice(Price(Decimal(5), Decimal(5)), ((500, Price(Decimal(7), Decimal(7))),))
    floors = tier_floors([a, b])
    assert floors == (500, 1000)
    # bucket 0: ≤ 500, bucket 1: 501..1000, bucket 2: > 1000
    for bucket, prompts in enumerate([(0, 500), (501, 1000), (1001, 10**6)]):
        rep = bucket_prompt(bucket, floors)
        for n in prompts:
            assert a.for_prompt(rep) == a.for_prompt(n)
            assert b.for_prompt(rep) == b.for_prompt(n)

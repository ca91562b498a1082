from decimal import Decimal

from gateway.core import Usage
from gateway.pricing.cost import cost
from gateway.pricing.gpu import amortized_per_token, amortized_price, routing_cost


def test_amortized_rate_is_the_pool_price_over_its_throughput() -> None:
    # one H100 at $2.49/h serving 1,500 tokens/s: 2.49 / 3600 / 1500 per token
    rate = amortized_per_token(2.49, 1, 1500)
    assert abs(rate - Decimal("2.49") / 3600 / 1500) < Decimal("1e-15")
    assert abs(amortized_per_token(2.49, 2, 1500) - 2 * rate) <= Decimal("1e-15")
    # ≈ $0.46 per 1M tokens
    assert round(rate * 10**6, 4) == Decimal("0.4611")


def test_ledger_cost_of_a_local_request_is_amortized() -> None:
    price = amortized_price(2.49, 1, 1500)
    c = cost(Usage(prompt_tokens=1000, completion_tokens=500), price)
    assert c.total_usd == 1500 * amortized_per_token(2.49, 1, 1500)


def test_marginal_mode_is_free_only_with_headroom() -> None:
    a = Decimal("0.001")
    assert routing_cost(a, "marginal", has_headroom=True) == 0
    assert routing_cost(a, "marginal", has_headroom=False) == a
    assert routing_cost(a, "amortized", has_headroom=True) == a

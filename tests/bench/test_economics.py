"""$ per 1M tokens, API prices on a token mix, break-even volumes — exact Decimal arithmetic."""

from decimal import Decimal
from typing import Any

from benchmarks.load.analysis import best_point, choose_calibration, compare_apis
from benchmarks.load.economics import (
    Gpu,
    TokenMix,
    api_usd_per_mtok_output,
    api_usd_per_mtok_total,
    api_usd_per_request,
    break_even,
    gpu_usd_per_mtok,
)
from gateway.core import Price, Usage
from gateway.pricing.cost import cost

HAIKU = Price.per_mtok("0.80", "4.00", "0.08", "1.00")
MIX = TokenMix.of(1000, 500, shared_prefix_fraction=0.8)


def test_gpu_cost_per_million_tokens() -> None:
    gpu = Gpu.of("3.60")
    assert gpu_usd_per_mtok(gpu, 1000) == Decimal(1)  # $3.60/h ÷ 3.6M tokens/h
    assert gpu_usd_per_mtok(Gpu.of("3.60", count=2), 1000) == Decimal(2)
    assert gpu_usd_per_mtok(gpu, 0) is None
    assert Gpu.of("2.49").monthly_usd == Decimal("1817.70")  # × 730 h


def test_api_price_of_the_mix_with_and_without_caching() -> None:
    assert api_usd_per_request(MIX, HAIKU) == Decimal("0.0028")  # 1000 × 0.8e-6 + 500 × 4e-6
    # the same as the ledger's own cost function on that request
    assert api_usd_per_request(MIX, HAIKU) == cost(Usage(1000, 500), HAIKU).total_usd
    # 800 cached tokens at the read rate: 200 × 0.8e-6 + 800 × 0.08e-6 + 500 × 4e-6
    assert api_usd_per_request(MIX, HAIKU, caching=True) == Decimal("0.002224")
    assert api_usd_per_mtok_output(MIX, HAIKU) == Decimal("5.6")
    assert api_usd_per_mtok_total(MIX, HAIKU, caching=True) == Decimal("0.002224") / 1500 * 10**6
    # a price without a cache rate bills cached tokens at the input rate
    plain = Price.per_mtok("0.80", "4.00")
    assert api_usd_per_request(MIX, plain, caching=True) == Decimal("0.0028")


def test_break_even_volume_and_utilisation() -> None:
    be = break_even(Gpu.of("3.60"), MIX, "haiku", HAIKU, request_throughput=1.0)
    # $3.60 × 730 h = $2,628 a month ÷ $0.0028 a request
    assert be.requests_per_month == Decimal(2628) / Decimal("0.0028")
    assert be.output_tokens_per_month == be.requests_per_month * 500
    assert be.total_tokens_per_month == be.requests_per_month * 1500
    # capacity at 1 req/s = 2,628,000 requests a month → 1 / 2.8 of it
    assert be.utilisation_needed is not None
    assert round(be.utilisation_needed, 20) == round(Decimal(1) / Decimal("2.8"), 20)
    assert be.feasible
    assert not break_even(Gpu.of("3.60"), MIX, "h", HAIKU, request_throughput=0.25).feasible
    free = break_even(Gpu.of(1), MIX, "free", Price.per_mtok(0, 0), 1.0)
    assert free.requests_per_month is None and not free.feasible


def _point(label: str, conc: int, out_tps: float, attainment: float | None) -> dict[str, Any]:
    return {
        "label": label,
        "shape": {"concurrency": conc, "rate": None},
        "summary": {
            "completed": 10,
            "output_throughput": out_tps,
            "total_token_throughput": out_tps * 3,
            "request_throughput": 1.0,
            "slo_attainment": attainment,
            "max_concurrent_requests": conc,
        },
    }


def test_best_point_and_calibration_choice() -> None:
    points = [
        _point("c=1", 1, 100, 1.0),
        _point("c=8", 8, 700, 0.995),
        _point("c=32", 32, 1300, 0.5),
    ]
    assert best_point(points, 0.99) == 1
    assert best_point(points, 0.4) == 2
    assert best_point(points, 1.0) == 0
    choice = choose_calibration({"points": points}, 0.99)
    assert choice is not None
    assert (choice.max_concurrency, choice.output_tokens_per_s, choice.total_tokens_per_s) == (
        8,
        700.0,
        2100.0,
    )
    assert choose_calibration({"points": [_point("c=1", 1, 1, 0.0)]}, 0.99) is None


def test_compare_apis_rows() -> None:
    rows = compare_apis(
        {"haiku": HAIKU}, MIX, Gpu.of("3.60"), {"summary": {"request_throughput": 1.0}}
    )
    assert [(r["api"], r["caching"]) for r in rows] == [("haiku", False), ("haiku", True)]
    assert rows[0]["usd_per_mtok_output"] == 5.6
    assert rows[0]["input_per_mtok"] == 0.8 and rows[0]["cache_read_per_mtok"] == 0.08
    assert rows[1]["usd_per_request"] == 0.002224
    no_prefix = compare_apis({"haiku": HAIKU}, TokenMix.of(1000, 500), None, None)
    assert len(no_prefix) == 1 and "break_even_requests_per_month" not in no_prefix[0]

"""The GPU fleet's true cost on the seeded ledger (tests/finance_support.py), worked out by hand.

2 GPUs × $2.00/h × 48 h (2 and 3 November, both over) = $192.00. The local pool served
r1 (1,000 + 500) and r3 (3,000 + 1,000) = 5,500 tokens: $192 / 5,500 × 1M = $34,909.090909
per 1M. The ledger recorded $0.003 for them: $0.545455 per 1M. Capacity 1,000 tokens/s ×
3,600 × 48 = 172.8M tokens: utilisation 5,500 / 172.8M = 0.0000318.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from gateway.finance.gpu import gpu_report
from gateway.finance.period import parse_period
from gateway.ledger.calibration import Calibration, record_calibration
from gateway.ledger.db import create_engine
from gateway.ledger.tables import bench_runs_table
from gateway.pricing.table import build_price_table
from tests.finance_support import finance_config

NOW = datetime(2026, 11, 10, tzinfo=UTC)


async def gpu(url: str, until: str = "2026-11-03", now: datetime = NOW) -> dict[str, Any]:
    config = finance_config(url)
    engine = create_engine(url)
    try:
        period = parse_period("2026-11-02", until, "UTC")
        return await gpu_report(engine, config, build_price_table(config), period, now=now)
    finally:
        await engine.dispose()


async def test_effective_cost_and_utilisation_known_answer(seeded_url: str) -> None:
    rep = await gpu(seeded_url)
    (p,) = rep["providers"]
    assert (p["provider"], p["gpus"], p["hourly_usd"]) == ("local", 2, "2.00")
    assert (p["gpu_hours"], p["cost_usd"], p["tokens"]) == (96.0, "192.00", 5500)
    assert p["effective_usd_per_1m"] == "34909.090909"
    assert p["amortised_usd_per_1m"] == "0.545455"
    assert p["utilisation"] == round(5500 / (1000 * 3600 * 48), 6)
    hours = {h["hour"]: h for h in p["by_hour"]}
    assert len(hours) == 24
    assert hours[10]["tokens"] == 1500 and hours[23]["tokens"] == 4000
    assert hours[10]["utilisation"] == round(1500 / (1000 * 3600 * 2), 6)
    assert hours[5]["tokens"] == 0 and hours[5]["utilisation"] == 0.0  # idle, still paid
    apis = {a["model"]: a for a in rep["apis"]}
    assert set(apis) == {"mini", "ref"}  # the self-hosted model is not an API
    assert apis["ref"] == {
        "model": "ref",
        "provider": "api",
        "input_usd_per_1m": "4",
        "output_usd_per_1m": "8",
        "cached_input_usd_per_1m": "1",
    }


async def test_only_the_hours_that_have_passed_are_paid(seeded_url: str) -> None:
    # asked on 3 November at 12:00: 36 hours of the period have passed
    rep = await gpu(seeded_url, now=datetime(2026, 11, 3, 12, tzinfo=UTC))
    (p,) = rep["providers"]
    assert (p["gpu_hours"], p["cost_usd"]) == (72.0, "144.00")


def test_a_calibration_replaces_the_configured_throughput(tmp_path: Any) -> None:
    from gateway.ledger.migrate import upgrade
    from tests.finance_support import seed

    url = f"sqlite+aiosqlite:///{tmp_path / 'cal.db'}"
    upgrade(url)

    async def go() -> dict[str, Any]:
        await seed(url)
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(
                bench_runs_table.insert().values(
                    id="run1",
                    created_at=NOW,
                    command="gateway bench calibrate",
                    target_url="http://x",
                    workload="chat",
                    settings={},
                    results={},
                    versions={},
                )
            )
        await record_calibration(engine, Calibration("local", "run1", 16, 500.0, 2000.0))
        await engine.dispose()
        return await gpu(url)

    (p,) = asyncio.run(go())["providers"]
    assert p["throughput_tokens_per_s"] == 2000.0
    assert p["utilisation"] == round(5500 / (2000 * 3600 * 48), 6)

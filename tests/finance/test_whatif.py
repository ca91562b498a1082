"""`gateway whatif` on a seeded ledger (tests/finance/whatif_seed.py), SQLite and PostgreSQL,
against answers computed by hand there and below."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from gateway.config import ConfigError
from gateway.finance.period import Period, parse_period
from gateway.finance.whatif import Scenario, WhatIfReport, whatif
from gateway.ledger.db import create_engine
from tests.finance.whatif_seed import SINCE, UNTIL, make_config, seed, write_config

D = Decimal


def run(db_url: str, scenario: Scenario, **cfg: object) -> WhatIfReport:
    async def go() -> WhatIfReport:
        engine = create_engine(db_url)
        try:
            return await whatif(engine, make_config(db_url, **cfg), scenario)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def by_key(r: WhatIfReport) -> dict[tuple[str, ...], tuple[Decimal, Decimal]]:
    return {x.key: (x.actual_usd, x.whatif_usd) for x in r.lines}


BASE = Scenario(period=Period(SINCE, UNTIL, ZoneInfo("UTC")))
ACTUAL = D("0.0012") + D("0.096") + D("0.005175") + D("0.0045")


def test_model_reprices_every_request_at_that_models_rates(db_url: str) -> None:
    seed(db_url)
    r = run(db_url, replace(BASE, model="cheap"))
    # R1 stays 0.0012; R2 3800×1e-6 + 1000×2e-6 = 0.0058; R3 500×1 + 1000×0.5 + 500×1 (no
    # write rate: input) + 100×2 → 0.0017; R6 1000×1 + 100×2 → 0.0012
    assert by_key(r) == {
        ("cheap",): (D("0.0012"), D("0.0012")),
        ("dear",): (D("0.009675"), D("0.0029")),
        ("local-m",): (D("0.096"), D("0.0058")),
    }
    assert r.total.requests == 4  # R4 (refused) and R5 (another day) are not in it
    # PostgreSQL answers from the hourly rollup, SQLite from the rows: the same sums
    assert r.source == ("rollup" if db_url.startswith("postgresql") else "raw")
    assert (r.total.actual_usd, r.total.whatif_usd) == (ACTUAL, D("0.0099"))


def test_model_on_the_gpu_is_priced_at_its_amortised_rate(db_url: str) -> None:
    seed(db_url)
    r = run(db_url, replace(BASE, model="local-m"))
    # every token at $2e-5: R1 1200, R2 4800, R3 2100, R6 1100 tokens
    assert r.total.whatif_usd == D("0.024") + D("0.096") + D("0.042") + D("0.022")
    assert any("self-hosted" in n and "--gpus" in n for n in r.notes)


def test_output_ratio_scales_only_other_models_output(db_url: str) -> None:
    seed(db_url)
    r = run(db_url, replace(BASE, model="cheap", output_ratio=D("1.5"), group_by=("team",)))
    # team a: R1 (cheap itself: 0.0012) + R3 0.0015 + 150×2e-6 = 0.0018
    # team b: R2 0.0038 + 1500×2e-6 = 0.0068; R6 0.001 + 150×2e-6 = 0.0013
    assert by_key(r) == {
        ("a",): (D("0.006375"), D("0.003")),
        ("b",): (D("0.1005"), D("0.0081")),
    }
    assert any("× 1.5" in n for n in r.notes)
    assert any("not replayed" in n for n in r.notes)


def test_price_file_with_a_long_context_tier(db_url: str, tmp_path: Path) -> None:
    seed(db_url)
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        yaml.safe_dump(
            {
                "models": {
                    "cheap": {"input_per_mtok": 2, "output_per_mtok": 4, "cache_read_per_mtok": 1},
                    "dear": {
                        "input_per_mtok": 3,
                        "output_per_mtok": 15,
                        "cache_read_per_mtok": 0.3,
                        "cache_write_per_mtok": 3.75,
                        "above": [
                            {
                                "prompt_tokens": 1500,
                                "input_per_mtok": 6,
                                "output_per_mtok": 22.5,
                                "cache_read_per_mtok": 0.6,
                                "cache_write_per_mtok": 7.5,
                            }
                        ],
                    },
                }
            }
        )
    )
    r = run(db_url, replace(BASE, price_file=prices, group_by=("model", "team")))
    # R3 (2000 > 1500): 500×6 + 1000×0.6 + 500×7.5 + 100×22.5 = 0.0096; R6 (1000) stays
    # at the base rates, 0.0045; R1 doubles; local-m is not in the file: kept
    assert by_key(r) == {
        ("cheap", "a"): (D("0.0012"), D("0.0024")),
        ("dear", "a"): (D("0.005175"), D("0.0096")),
        ("dear", "b"): (D("0.0045"), D("0.0045")),
        ("local-m", "b"): (D("0.096"), D("0.096")),
    }
    assert any("local-m" in n and "recorded cost" in n for n in r.notes)


def test_price_file_in_litellms_format(db_url: str, tmp_path: Path) -> None:
    seed(db_url)
    prices = tmp_path / "litellm.json"
    prices.write_text(
        '{"dear-2026": {"input_cost_per_token": 1e-6, "output_cost_per_token": 5e-6,'
        ' "cache_read_input_token_cost": 1e-7, "cache_creation_input_token_cost": 1.25e-6,'
        ' "input_cost_per_token_above_1k_tokens": 2e-6}}'
    )
    r = run(db_url, replace(BASE, price_file=prices))
    # R3 (2000 > 1000: input 2e-6, the rest unchanged): 500×2 + 1000×0.1 + 500×1.25 + 100×5
    # = 0.002225; R6 (1000, not above): 1000×1 + 100×5 = 0.0015
    assert by_key(r)[("dear",)] == (D("0.009675"), D("0.003725"))


def test_gpu_count_replay_spills_what_does_not_fit(db_url: str) -> None:
    seed(db_url)
    r = run(db_url, replace(BASE, gpus=1, group_by=("model",)))
    # minute 10:00 asks the pool for R1 1200 + R2 4800 = 6000 tokens; it serves 3000: half of
    # each stays local (at $2e-5 a token), half spills to `cheap`, local-first's next choice
    assert by_key(r) == {
        ("cheap",): (D("0.0012"), D("0.0006") + D("0.0029")),
        ("dear",): (D("0.009675"), D("0.009675")),
        ("local-m",): (D("0.096"), D("0.012") + D("0.048")),
    }
    (pool,) = r.pools
    assert (pool.gpus, pool.tokens_per_minute, pool.capacity_source) == (1, D(3000), "config")
    u = pool.use
    assert (u.demand_tokens, u.fitted_tokens, u.spilled_tokens, u.over_tokens) == (
        D(6000),
        D(3000),
        D(3000),
        D(0),
    )
    assert (u.minutes, u.minutes_full) == (1, 1)
    assert r.spills["cheap"].requests == 1 and r.spills["cheap"].usd == D("0.0035")
    assert r.fleet is not None
    assert r.fleet.hours == 24 and r.fleet.actual_gpu_usd == r.fleet.whatif_gpu_usd == D("86.4")
    assert r.fleet.actual_api_usd == D("0.010875")
    assert r.fleet.whatif_api_usd == D("0.0035") + D("0.009675")


@pytest.mark.parametrize(
    ("gpus", "local", "cheap", "whatif_api"),
    [
        # two GPUs: 6000 tokens a minute, everything of `auto` fits
        (2, D("0.024") + D("0.096"), D(0), D("0.009675")),
        # none: everything spills (R1 to its own model, R2 3800×1 + 1000×2 = 0.0058)
        (0, D(0), D("0.0012") + D("0.0058"), D("0.0070") + D("0.009675")),
    ],
)
def test_gpu_count_replay_at_other_sizes(
    db_url: str, gpus: int, local: Decimal, cheap: Decimal, whatif_api: Decimal
) -> None:
    seed(db_url)
    r = run(db_url, replace(BASE, gpus=gpus))
    got = by_key(r)
    assert got.get(("local-m",), (D("0.096"), D(0)))[1] == local
    assert got[("cheap",)][1] == cheap
    assert r.fleet is not None
    assert r.fleet.whatif_gpu_usd == D("86.4") * gpus
    assert r.fleet.whatif_api_usd == whatif_api


def test_policy_replays_another_configs_routes(db_url: str, tmp_path: Path) -> None:
    seed(db_url)
    other = write_config(
        tmp_path / "other.yaml",
        db_url,
        routes=[{"name": "auto", "policy": "ordered", "candidates": ["dear", "cheap"]}],
    )
    r = run(db_url, replace(BASE, policy=other))
    # `auto` now sends everything to `dear`: R1 600×3 + 400×0.3 + 200×15 = 0.00492,
    # R2 3800×3 + 1000×15 = 0.0264; the pinned R3 and R6 do not change
    assert by_key(r) == {
        ("cheap",): (D("0.0012"), D(0)),
        ("dear",): (D("0.009675"), D("0.00492") + D("0.0264") + D("0.009675")),
        ("local-m",): (D("0.096"), D(0)),
    }
    assert r.total.whatif_requests == 4


def test_replay_takes_capacity_from_the_newest_calibration(db_url: str) -> None:
    seed(db_url, calibrated_tps=100)  # 6000 tokens a minute, and $1e-5 a token
    r = run(db_url, replace(BASE, gpus=1))
    assert r.pools[0].capacity_source == "calibration run1"
    assert r.pools[0].use.spilled_tokens == 0
    assert by_key(r)[("local-m",)] == (D("0.096"), D("0.012") + D("0.048"))


def test_group_by_day_and_route(db_url: str) -> None:
    seed(db_url)
    r = run(db_url, replace(BASE, model="dear", group_by=("day", "route")))
    assert [x.key for x in r.lines] == [("2026-11-02", "auto"), ("2026-11-02", "dear")]


def test_days_are_the_time_zones_days(db_url: str) -> None:
    seed(db_url)
    # UTC+14: 10:00 UTC on the 2nd is 00:00 on the 3rd there, and that local day holds R1-R6
    period = parse_period("2026-11-03", "2026-11-03", "Pacific/Kiritimati")
    r = run(db_url, Scenario(period, group_by=("day",), model="cheap"))
    assert [(x.key, x.requests, x.whatif_usd) for x in r.lines] == [
        (("2026-11-03",), 4, D("0.0099"))
    ]


def test_questions_that_cannot_be_answered() -> None:
    with pytest.raises(ConfigError, match="one of --model"):
        run("sqlite+aiosqlite://", BASE)
    with pytest.raises(ConfigError, match="unknown"):
        run("sqlite+aiosqlite://", replace(BASE, model="cheap", group_by=("colour",)))
    with pytest.raises(ConfigError, match="not a configured model"):
        run("sqlite+aiosqlite://", replace(BASE, model="no-such-model-anywhere"))

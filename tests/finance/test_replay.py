"""The minute-by-minute replay (finance/replay.py) on hand-made slices: spill chains across
two pools, a pinned pool with nowhere to spill, minutes that do not share capacity."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config import parse_config
from gateway.finance.period import Period
from gateway.finance.replay import Replay, Replayer
from gateway.finance.whatif import Scenario, replay_plans, served_names, sized_pools
from gateway.finance.whatif_lines import Groups
from gateway.finance.whatif_query import Slice, TokenSums

D = Decimal
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 2, 10, 1, tzinfo=UTC)


def config() -> Any:
    gpu = {"name": "L4", "hourly_usd": 0.6}
    return parse_config(
        {
            "providers": [
                # 120 and 60 tokens a minute
                {
                    "name": "p1",
                    "kind": "vllm",
                    "api_base": "http://x/v1",
                    "gpu": {**gpu, "throughput_tokens_per_s": 2},
                },
                {
                    "name": "p2",
                    "kind": "vllm",
                    "api_base": "http://y/v1",
                    "gpu": {**gpu, "throughput_tokens_per_s": 1},
                },
                {"name": "api", "kind": "openai", "api_base": "http://z/v1"},
            ],
            "models": [
                {"name": "m1", "provider": "p1"},
                {"name": "m2", "provider": "p2"},
                {
                    "name": "a",
                    "provider": "api",
                    "price": {"input_per_mtok": 1, "output_per_mtok": 1},
                },
            ],
            "routes": [{"name": "r", "policy": "ordered", "candidates": ["m1", "m2", "a"]}],
        },
        source="test",
        environ={},
    )


def ds(*xs: int) -> tuple[Decimal, ...]:
    return tuple(D(x) for x in xs)


def slice_(requested: str, minute: datetime, tokens: int, requests: int = 1) -> Slice:
    return Slice(
        keys=(),
        provider="api",
        upstream_model="a",
        bucket=0,
        tokens=TokenSums(requests=requests, prompt=tokens),
        actual_usd=D(tokens) / 1_000_000,
        max_prompt=tokens,
        requested=requested,
        minute=minute,
    )


def replay(*slices: Slice) -> Replay:
    cfg = config()
    s = Scenario(period=Period(T0, T1, ZoneInfo("UTC")))
    rcfg, pools = sized_pools(
        cfg, s, {p: (D(p_tps), "config") for p, p_tps in (("p1", 2), ("p2", 1))}
    )
    groups = Groups(("model",))
    return Replayer(replay_plans(rcfg), pools, groups, (), served_names(cfg), D(1)).run(slices)


def test_a_spill_chain_through_two_pools_to_an_api() -> None:
    out = replay(slice_("r", T0, 240))
    p1, p2 = out.pools["p1"], out.pools["p2"]
    assert (p1.demand_tokens, p1.fitted_tokens, p1.spilled_tokens) == ds(240, 120, 120)
    assert (p2.demand_tokens, p2.fitted_tokens, p2.spilled_tokens) == ds(120, 60, 60)
    assert out.spills["a"].requests == D("0.25") and out.spills["a"].tokens == 60
    lines = {x.key: x.whatif_requests for x in out.groups.lines()}
    assert lines == {("a",): D("0.25"), ("m1",): D("0.5"), ("m2",): D("0.25")}


def test_a_pinned_pool_keeps_what_it_cannot_fit_as_over_capacity() -> None:
    out = replay(slice_("m2", T0, 90))
    p2 = out.pools["p2"]
    assert (p2.fitted_tokens, p2.spilled_tokens, p2.over_tokens) == ds(60, 0, 30)
    assert (p2.minutes, p2.minutes_full) == (1, 1)
    assert {x.key: x.whatif_requests for x in out.groups.lines()}[("m2",)] == 1


def test_each_minute_has_its_own_capacity_and_requests_share_it_evenly() -> None:
    out = replay(slice_("r", T0, 80), slice_("r", T0, 70, requests=2), slice_("r", T1, 120))
    p1 = out.pools["p1"]
    # minute 0: 150 asked of 120 → each slice keeps 0.8 on p1, 30 tokens go on to p2 (fits);
    # minute 1: 120 asked, all fit
    assert (p1.demand_tokens, p1.fitted_tokens, p1.spilled_tokens) == ds(270, 240, 30)
    assert (p1.minutes, p1.minutes_full) == (2, 1) and p1.peak_minute_tokens == 150
    assert out.pools["p2"].fitted_tokens == 30
    lines = {x.key: x.whatif_requests for x in out.groups.lines()}
    assert lines == {("a",): 0, ("m1",): D("3.4"), ("m2",): D("0.6")}
    assert not out.spills


def test_names_the_replayed_config_does_not_serve_are_kept() -> None:
    out = replay(slice_("gone", T0, 100))
    assert out.kept == {"gone": 1}
    (line,) = out.groups.lines()
    assert line.whatif_usd == line.actual_usd == D("0.0001")

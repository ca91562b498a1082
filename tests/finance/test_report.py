"""The usage report on a seeded ledger (tests/finance_support.py), against totals worked out
by hand, on SQLite and PostgreSQL, through both of PostgreSQL's sources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from gateway.errors import InvalidRequest
from gateway.finance.period import parse_group_by, parse_period
from gateway.finance.report import usage_report
from gateway.ledger.db import create_engine
from gateway.ledger.rollup import BOUNDS_MS
from gateway.pricing.table import build_price_table
from tests.finance_support import finance_config


async def report(
    url: str, group_by: str, since: str = "2026-11-02", until: str = "2026-11-03", tz: str = "UTC"
) -> dict[str, Any]:
    config = finance_config(url)
    engine = create_engine(url)
    try:
        return await usage_report(
            engine,
            config,
            build_price_table(config),
            parse_period(since, until, tz),
            parse_group_by(group_by),
        )
    finally:
        await engine.dispose()


def by(rows: Sequence[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    out = {}
    for r in rows:
        k = r[keys[0]] if len(keys) == 1 else tuple(r[x] for x in keys)
        out[k] = r
    return out


def bucket_of(ms: float) -> tuple[float, float]:
    lo = 0.0
    for b in BOUNDS_MS:
        if ms < b:
            return lo, b
        lo = b
    return lo, float("inf")


async def test_totals_match_the_hand_computed_ones(seeded_url: str) -> None:
    rep = await report(seeded_url, "")
    t = rep["totals"]
    assert (t["requests"], t["errors"]) == (5, 2)
    assert (t["prompt_tokens"], t["cached_prompt_tokens"], t["cache_write_tokens"]) == (
        6000,
        1200,
        100,
    )
    assert (t["completion_tokens"], t["reasoning_tokens"]) == (2500, 50)
    assert (t["cost_usd"], t["reference_cost_usd"], t["saving_usd"]) == (
        "0.0065",
        "0.031",
        "0.0245",
    )
    # latencies 1, 100, 250, 400, 1000: p50 is the 2.5th value, in 250's bucket
    lo, hi = bucket_of(250)
    assert lo <= t["latency_p50_ms"] <= hi
    lo, hi = bucket_of(1000)
    assert lo <= t["latency_p95_ms"] <= hi
    lo, hi = bucket_of(50)  # TTFTs 20 and 50
    assert lo <= t["ttft_p95_ms"] <= hi
    assert rep["rows"] == [{**t}]  # no grouping: one row, the totals
    assert rep["group_by"] == [] and rep["reference_model"] == "ref"
    assert rep["since"] == "2026-11-02T00:00:00+00:00"
    assert rep["until"] == "2026-11-04T00:00:00+00:00"


async def test_by_day_in_utc_and_in_a_zone_behind_it(seeded_url: str) -> None:
    days = by((await report(seeded_url, "day"))["rows"], "day")
    assert days["2026-11-02"]["requests"] == 3 and days["2026-11-02"]["cost_usd"] == "0.0065"
    assert days["2026-11-03"]["requests"] == 2 and days["2026-11-03"]["errors"] == 2
    # New York is UTC-5 after 1 November 2026: every row falls on its 2 November
    ny = await report(seeded_url, "day", "2026-11-02", "2026-11-02", "America/New_York")
    assert [(r["day"], r["requests"]) for r in ny["rows"]] == [("2026-11-02", 5)]
    assert ny["since"] == "2026-11-02T05:00:00+00:00"


async def test_a_half_hour_zone_reads_the_raw_rows(seeded_url: str) -> None:
    # Kolkata is UTC+5:30: r3 (23:30 UTC) is 05:00 on 3 November there
    rep = await report(seeded_url, "day", "2026-11-02", "2026-11-03", "Asia/Kolkata")
    assert rep["source"] == "raw"
    days = by(rep["rows"], "day")
    assert days["2026-11-02"]["requests"] == 2
    assert days["2026-11-03"]["requests"] == 3
    assert days["2026-11-03"]["cost_usd"] == "0.002"


async def test_by_team_and_key_with_unattributed(seeded_url: str) -> None:
    teams = by((await report(seeded_url, "team"))["rows"], "team")
    assert {k: (v["requests"], v["cost_usd"]) for k, v in teams.items()} == {
        "a": (2, "0.0045"),
        "b": (2, "0.002"),
        "unattributed": (1, "0.00"),
    }
    keys = by((await report(seeded_url, "team,api_key"))["rows"], "team", "api_key")
    assert set(keys) == {("a", "k1"), ("b", "k2"), ("unattributed", "unattributed")}
    assert keys[("b", "k2")]["errors"] == 1


async def test_savings_per_provider_and_the_local_flag(seeded_url: str) -> None:
    rows = by((await report(seeded_url, "provider"))["rows"], "provider")
    local, api, none = rows["local"], rows["api"], rows[None]
    assert local["local"] is True and api["local"] is False and none["local"] is False
    assert (local["cost_usd"], local["reference_cost_usd"], local["saving_usd"]) == (
        "0.003",
        "0.0275",
        "0.0245",
    )
    assert (api["cost_usd"], api["reference_cost_usd"], api["saving_usd"]) == (
        "0.0035",
        "0.0035",
        "0.00",
    )
    assert none["requests"] == 1 and none["latency_p50_ms"] is not None


async def test_by_model_route_endpoint(seeded_url: str) -> None:
    rows = by((await report(seeded_url, "model,route"))["rows"], "model", "route")
    assert set(rows) == {
        ("llama-up", "auto"),
        ("llama-up", "llama"),
        ("mini-up", "mini"),
        ("mini-up", "auto"),
        (None, "bad"),
    }
    eps = by((await report(seeded_url, "endpoint"))["rows"], "endpoint")
    assert (eps["chat"]["requests"], eps["messages"]["requests"]) == (4, 1)
    assert eps["messages"]["ttft_p50_ms"] is not None and eps["chat"]["ttft_p50_ms"] is not None


async def test_hours_week_and_month_labels(seeded_url: str) -> None:
    hours = [r["hour"] for r in (await report(seeded_url, "hour"))["rows"]]
    assert hours == [
        "2026-11-02T10:00:00+00:00",
        "2026-11-02T23:00:00+00:00",
        "2026-11-03T01:00:00+00:00",
        "2026-11-03T02:00:00+00:00",
    ]
    berlin = await report(seeded_url, "hour", tz="Europe/Berlin")
    assert berlin["rows"][0]["hour"] == "2026-11-02T11:00:00+01:00"
    weeks = (await report(seeded_url, "week"))["rows"]
    assert [(w["week"], w["requests"]) for w in weeks] == [("2026-11-02", 5)]  # a Monday
    months = (await report(seeded_url, "month", "2026-10-01", "2026-11-30"))["rows"]
    assert [(m["month"], m["requests"]) for m in months] == [("2026-11", 5)]


async def test_the_period_bounds_are_honoured(seeded_url: str) -> None:
    rep = await report(seeded_url, "", "2026-11-03", "2026-11-03")
    assert rep["totals"]["requests"] == 2
    rep = await report(seeded_url, "", "2026-11-02T10:30:00+00:00", "2026-11-03T01:00:00+00:00")
    assert rep["totals"]["requests"] == 2  # r2 and r3; r4 at 01:00 is the exclusive end
    empty = await report(seeded_url, "day", "2026-12-01", "2026-12-02")
    assert empty["rows"] == [] and empty["totals"]["requests"] == 0
    assert empty["totals"]["latency_p50_ms"] is None and empty["totals"]["cost_usd"] == "0.00"


@pytest.mark.parametrize(
    ("since", "until", "group_by", "param"),
    [
        ("", None, "", "since"),
        ("yesterday", None, "", "since"),
        ("2026-11-02", "2026-11-01", "", "until"),
        ("2026-11-02", None, "day,colour", "group_by"),
        ("2026-11-02", None, "day,month", "group_by"),
    ],
)
def test_bad_parameters_name_themselves(
    since: str, until: str | None, group_by: str, param: str
) -> None:
    with pytest.raises(InvalidRequest) as e:
        parse_period(since, until)
        parse_group_by(group_by)
    assert e.value.param == param


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(InvalidRequest) as e:
        parse_period("2026-11-02", None, "Mars/Olympus")
    assert e.value.param == "tz"

"""The policy benchmark's pure parts: the day's schedule and bodies, the token-scaled simulator
profiles, the cost accounting and the report."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from benchmarks.common.result import RequestResult
from benchmarks.policy_day import report as policy_day_report
from benchmarks.policy_day.measure import window_point
from benchmarks.policy_day.sim import scaled_profiles
from benchmarks.policy_day.stats import Day, Record, compare, summarize
from benchmarks.policy_day.traffic import (
    DAY_SHAPE,
    DEFAULT_MIX,
    WORKLOADS,
    Arrival,
    body,
    check_scale,
    mean_output_tokens,
    parse_mix,
    schedule,
)
from gateway.simulator.profiles import PROFILES, aggregate_output_tok_s, request_latency_s
from gateway.simulator.tokens import count_chat_tokens

# --- traffic ---------------------------------------------------------------------------------


def test_schedule_is_seeded_and_follows_the_hourly_rates() -> None:
    a = schedule(10.0, 20.0, DEFAULT_MIX, seed=3)
    assert a == schedule(10.0, 20.0, DEFAULT_MIX, seed=3)
    assert a != schedule(10.0, 20.0, DEFAULT_MIX, seed=4)
    assert [x.index for x in a] == list(range(len(a)))
    assert all(x.hour * 20.0 <= x.t < (x.hour + 1) * 20.0 for x in a)
    expected = sum(10.0 * s * 20.0 for s in DAY_SHAPE)
    assert abs(len(a) - expected) < 4 * expected**0.5  # Poisson: within 4 standard deviations
    peak = sum(1 for x in a if x.hour == 12)
    trough = sum(1 for x in a if x.hour == 3)
    assert peak > 3 * trough


def test_schedule_replays_chosen_hours_back_to_back_with_the_mix() -> None:
    a = schedule(50.0, 10.0, {"chat": 0.5, "extraction": 0.5}, hours=[12, 13])
    assert {x.hour for x in a} == {12, 13}
    assert all((0 <= x.t < 10) if x.hour == 12 else (10 <= x.t < 20) for x in a)
    assert {x.workload for x in a} == {"chat", "extraction"}


def test_mix_parsing_and_mean_output() -> None:
    assert parse_mix("chat=1,extraction=3") == {"chat": 0.25, "extraction": 0.75}
    with pytest.raises(ValueError, match="unknown workload"):
        parse_mix("poetry=1")
    with pytest.raises(ValueError, match="not all 0"):
        parse_mix("chat=0")
    assert mean_output_tokens(DEFAULT_MIX) == pytest.approx(0.6 * 5 + 0.2 * 300 + 0.2 * 500)


def test_output_scale_must_divide_outputs_into_at_most_128_replayed_tokens() -> None:
    check_scale(5)
    with pytest.raises(ValueError, match="do not divide"):
        check_scale(3)
    with pytest.raises(ValueError, match="> 128"):
        check_scale(1)


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_bodies_have_the_workload_lengths_the_simulator_counts(name: str) -> None:
    w = WORKLOADS[name]
    b1 = body(Arrival(7, 0.0, 0, name), "day-api", 5)
    b2 = body(Arrival(8, 0.0, 0, name), "day-api", 5)
    assert count_chat_tokens(b1["messages"]) == w.prompt_tokens
    assert b1["max_tokens"] == w.output_tokens // 5 and b1["ignore_eos"] is True
    assert b1["stream"] and b1["stream_options"] == {"include_usage": True}
    assert b1["messages"][0] == b2["messages"][0]  # the system prompt is shared
    assert b1["messages"][1] != b2["messages"][1]  # the user's text is each request's own
    assert ("response_format" in b1) == w.json


# --- the token-scaled simulator ----------------------------------------------------------------


def test_scaled_profiles_keep_real_time_and_the_real_decode_ceiling() -> None:
    k = 5
    stock, scaled = PROFILES["llama-3.1-8b-h100"], scaled_profiles(k)["llama-3.1-8b-h100"]
    assert scaled.ttft_base_s == stock.ttft_base_s and scaled.max_num_seqs == stock.max_num_seqs
    for running in (1, 16, 64, 256):
        real = request_latency_s(stock, 2000, 500, running)
        replayed = request_latency_s(scaled, 2000, 100, running)
        assert replayed == pytest.approx(
            real - (k - 1) * max(stock.tpot_base_s, running / stock.decode_ceiling_tok_s)
        )
    assert aggregate_output_tok_s(scaled, 64, 100, 100) * k == pytest.approx(
        aggregate_output_tok_s(stock, 64, 100, 500), rel=0.02
    )
    assert set(scaled_profiles(k)) == set(PROFILES)


# --- accounting ------------------------------------------------------------------------------


def _day(rates: tuple[float, ...] = tuple([1.0] * 24)) -> Day:
    return Day(
        hour_s=4.0,
        output_scale=5,
        hours=(11, 12),
        rates=rates,
        slo_ms=800.0,
        gpu_usd_per_hour=2.0,
        capacity_rps=5.0,
    )


def _rec(
    i: int,
    hour: int,
    *,
    local: bool,
    ttft: float | None = 0.1,
    ok: bool = True,
    usd_in: str = "0.001",
    usd_out: str = "0.0001",
) -> Record:
    return Record(
        i,
        hour,
        "chat",
        ok,
        ttft if ok else None,
        (ttft or 0) + 4.95 if ok else None,
        "local-llama" if local else "gemini",
        local and ok,
        500,
        100,
        Decimal(usd_in),
        Decimal(usd_out),
        None if ok else "HTTP 502",
    )


def test_summary_scales_a_replayed_hour_to_a_real_one_and_rents_the_gpu_all_day() -> None:
    day = _day(rates=tuple(10.0 if h == 12 else 1.0 for h in range(24)))
    records = [
        _rec(0, 11, local=True),
        _rec(1, 12, local=False, ttft=0.9),
        _rec(2, 12, local=False, ok=False),
    ]
    s = summarize(records, day, uses_gpu=True)
    per_request = 0.001 + 0.0001 * 5  # output at its real length
    assert s["api_usd"] == pytest.approx(2 * per_request * 900)  # 3600 / 4 s
    assert s["local_amortised_usd"] == pytest.approx(per_request * 900)
    assert s["gpu_rented_usd"] == pytest.approx(2.0 * 2)  # two hours replayed
    assert s["total_rented_usd"] == pytest.approx(2 * per_request * 900 + 4.0)
    assert s["tokens"] == pytest.approx(2 * (500 + 500) * 900)  # the failed request has none
    assert s["usd_per_mtok_rented"] == pytest.approx(s["total_rented_usd"] / s["tokens"] * 1e6)
    assert s["requests_day"] == pytest.approx(3 * 900)
    assert s["share_local"] == pytest.approx(0.5) and s["errors"] == 1
    assert s["slo_attainment"] == pytest.approx(1 / 3)  # one within, one late, one failed
    assert day.peak_hours == (12,) and s["peak_slo_attainment"] == 0.0
    assert [h["requests"] for h in s["hourly"]] == [1, 2]
    assert summarize(records, day, uses_gpu=False)["gpu_rented_usd"] == 0.0


def test_compare_prices_what_the_gpu_served_at_all_api_rates() -> None:
    day = _day()
    api = [_rec(i, 12, local=False, usd_in="0.002", usd_out="0") for i in range(4)]
    lf = [
        _rec(i, 12, local=i < 3, usd_in="0.002" if i == 3 else "0.0001", usd_out="0")
        for i in range(4)
    ]
    summaries = {
        "all-api": summarize(api, day, uses_gpu=False),
        "local-first": summarize(lf, day, uses_gpu=True),
    }
    c = compare(summaries, {"all-api": api, "local-first": lf}, day)
    all_api = 4 * 0.002 * 900
    assert summaries["all-api"]["total_rented_usd"] == pytest.approx(all_api)
    assert c["value_served_locally_usd"] == pytest.approx(3 * 0.002 * 900)
    rented = 0.002 * 900 + 2.0 * 2
    assert c["local-first_saving_rented"] == pytest.approx(1 - rented / all_api)
    assert c["gpu_usd_per_hour_break_even"] == pytest.approx((all_api - 0.002 * 900) / 2)
    assert c["max_saving_gpu_full_all_day"] == pytest.approx(1 - 2.0 * 2 / (5.0 * 3600 * 2 * 0.002))
    assert c["saving_at_gpu_usd_per_hour"]["1.99"] == pytest.approx(
        1 - (0.002 * 900 + 1.99 * 2) / all_api
    )


def test_report_renders_a_table_targets_and_a_plot(tmp_path: Path) -> None:
    day = _day(rates=tuple(10.0 if h == 12 else 1.0 for h in range(24)))
    records = {
        "all-api": [_rec(0, 12, local=False), _rec(1, 12, local=False)],
        "all-local": [_rec(0, 12, local=True, ttft=2.0), _rec(1, 12, local=True)],
        "local-first": [_rec(0, 12, local=True), _rec(1, 12, local=False)],
    }
    summaries = {n: summarize(r, day, uses_gpu=n != "all-api") for n, r in records.items()}
    result = {
        "meta": {
            "command": "python -m benchmarks.policy_day run",
            "date": "today",
            "machine": "2 cpu",
            "python": "3.11",
            "day": "2 h",
            "slo_ms": 800.0,
            "capacity_rps": 5.0,
        },
        "summaries": summaries,
        "comparison": compare(summaries, records, day),
    }
    md = policy_day_report.markdown(result)
    assert "| local-first |" in md and "| all-local |" in md
    assert (
        "local-first ≥ 99% within TTFT ≤ 800 ms, all-local not at the peak: local-first "
        "100.00% of the day, 100.00% at the peak; all-local 50.00% of the day, 50.00% at "
        "the peak → PASS" in md
    )
    assert "TPOT p50 ms" in md and "| 10.0 |" in md  # 4.95 s / (99 gaps × 5 real tokens)
    paths = policy_day_report.write(result, tmp_path)
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(paths[0].read_text())["summaries"]["all-api"]["errors"] == 0


def test_calibration_window_counts_streamed_tokens_and_prefills_inside_it() -> None:
    inside = RequestResult(
        success=True,
        start_time=10.0,
        ttft=0.5,
        latency=3.0,
        chunks=6,
        prompt_len=500,
        output_tokens=4,
        content_times=[10.5, 11.0, 12.0, 13.0],
    )
    early = RequestResult(
        success=True,
        start_time=5.0,
        ttft=0.1,
        latency=6.0,
        chunks=5,
        prompt_len=900,
        output_tokens=3,
        content_times=[5.1, 9.0, 11.0],
    )  # prefilled before
    failed = RequestResult(start_time=12.0, status=500, error="HTTP 500")
    p = window_point([inside, early, failed], 8, t0=10.0, seconds=4.0, output_scale=5)
    assert p["output_tok_s"] == pytest.approx(5 * 5 / 4.0)  # 4 + 1 chunks inside, × 5
    assert p["total_tok_s"] == pytest.approx(5 * 5 / 4.0 + 500 / 4.0)
    assert p["req_s"] == pytest.approx(2 / 4.0) and p["errors"] == 1
    assert p["ttft_p50_ms"] == pytest.approx(500.0)

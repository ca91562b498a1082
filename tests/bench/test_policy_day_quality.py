"""The policy benchmark's fourth policy, local-first with the quality gate: what a decision
said about the gate, the shadow calls split into exploration and the steady sample, the
below-the-bar shares and their lines in the report — pure parts."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from benchmarks.policy_day import report as policy_day_report
from benchmarks.policy_day.day import gate_of, shadow_records
from benchmarks.policy_day.policies import CONFIG, POLICIES, below_bar, day_config
from benchmarks.policy_day.sim import day_quality
from benchmarks.policy_day.stats import Day, Record, compare, summarize
from benchmarks.policy_day.traffic import WORKLOADS, system_prompt


def _day() -> Day:
    return Day(4.0, 5, (12,), tuple(1.0 for _ in range(24)), 800.0, 2.0, 5.0)


def test_the_gated_policy_and_its_tasks_match_the_simulators() -> None:
    config = day_config(CONFIG)
    assert POLICIES["local-first-gated"].model == "day-quality"
    quality = day_quality()
    for name in WORKLOADS:
        digest = hashlib.sha256(system_prompt(name).encode()).hexdigest()
        task = next(t for t in config.tasks if t.name == name)
        assert task.match.system_prompt_sha256 == digest  # the gateway's name for it
        assert quality.tasks[name].system_prompt_sha256 == (digest,)  # the simulator's
    # the stock rates against the route's bars (0.9; chat 0.75)
    assert below_bar(config, "local-llama", "extraction")  # 0.88
    assert below_bar(config, "local-llama", "chat")  # 0.70
    assert not below_bar(config, "local-llama", "classification")  # 0.96
    assert not below_bar(config, "gemini", "chat")  # 0.78
    assert not below_bar(config, "anthropic", "extraction")  # the reference: always true


def test_gate_of_reads_what_the_decision_said_of_the_chosen_model() -> None:
    chosen = "local-first: llama-3.1-8b (local-llama) est $0.000000 → chosen"
    assert gate_of(chosen + " (quality: chat llama-3.1-8b exploring, n=3 < 200 (x))") == "explore"
    proven = chosen + " (quality: chat llama vs claude-haiku agreement 0.9 [0.8, 0.95] n=300 ≥ 0.8)"
    assert gate_of(proven + "; vs gemini-flash (gemini) est $0.1") == "proven"
    # a refused candidate's note in the ineligible list is not the chosen's
    refused = chosen + "; ineligible: gpt-4o-mini (quality: chat exploring, n=1 < 2 (x))"
    assert gate_of(refused) == ""
    assert gate_of(None) == ""


def _row(shadow_of: str, usd: str = "0.001") -> dict[str, Any]:
    return {
        "shadow_of": shadow_of,
        "status_code": 200,
        "provider": "anthropic",
        "prompt_tokens": 100,
        "completion_tokens": 10,
        "input_cost_usd": usd,
        "output_cost_usd": "0",
    }


def _primary(i: int, workload: str, provider: str = "local-llama") -> Record:
    return Record(i, 12, workload, True, 0.1, 0.2, provider, provider == "local-llama")


def test_shadow_calls_split_into_exploration_and_the_steady_sample() -> None:
    primaries = {
        "a": _primary(0, "chat"),
        "b": _primary(1, "chat"),
        "c": _primary(2, "chat"),
        "d": _primary(3, "extraction"),
        "e": _primary(4, "chat", "gemini"),
    }
    rows = [_row(k) for k in ("a", "b", "c", "d", "e", "warm-up")]
    out = shadow_records(rows, primaries, min_samples=2)  # type: ignore[arg-type]
    assert [(r.workload, r.gate) for r in out] == [
        ("chat", "explore"),
        ("chat", "explore"),
        ("chat", "sample"),  # the third (chat, llama) pair
        ("extraction", "explore"),
        ("chat", "explore"),  # (chat, gemini) is a pair of its own
    ]
    s = summarize([*primaries.values()], _day(), uses_gpu=True, shadow=out)
    assert s["shadow_calls"] == 5 and s["shadow_explore_calls"] == 4
    assert s["shadow_explore_usd"] == pytest.approx(4 * 0.001)  # once: not × 900
    assert s["shadow_sample_usd"] == pytest.approx(0.001 * 900)
    assert s["shadow_usd"] == pytest.approx(4 * 0.001 + 0.001 * 900)
    assert s["api_usd"] == pytest.approx(s["shadow_usd"] + 0.0)  # primaries cost nothing here


def test_below_the_bar_shares_count_only_decided_requests_after_exploration() -> None:
    records = [
        replace(_primary(0, "extraction"), below_bar=True, gate="explore"),
        replace(_primary(1, "extraction"), below_bar=True, gate="proven"),
        replace(_primary(2, "classification"), gate="proven"),
        replace(_primary(3, "chat", "anthropic"), gate=""),
    ]
    s = summarize(records, _day(), uses_gpu=True)
    assert s["below_bar"] == pytest.approx(0.5)
    assert s["below_bar_decided"] == pytest.approx(0.25)  # the proven-yet-below one: a failure
    assert s["explored"] == pytest.approx(0.25)


def test_the_report_has_the_fourth_row_and_its_quality_lines(tmp_path: Path) -> None:
    day = _day()
    lf = [replace(_primary(i, "chat"), below_bar=True) for i in range(4)]
    gated = [replace(r, gate="proven", below_bar=False) for r in lf]
    shadow = [replace(_primary(0, "chat", "anthropic"), gate="explore", input_usd=Decimal("0.01"))]
    records = {"all-api": lf, "local-first": lf, "local-first-gated": gated}
    summaries = {
        n: summarize(r, day, uses_gpu=True, shadow=shadow if n == "local-first-gated" else ())
        for n, r in records.items()
    }
    result = {
        "meta": {
            "command": "python -m benchmarks.policy_day run",
            "date": "today",
            "machine": "2 cpu",
            "python": "3.11",
            "day": "1 h",
            "slo_ms": 800.0,
            "capacity_rps": 5.0,
            "quality_bars": "lower 95% bound ≥ 0.9 over ≥ 200 pairs",
        },
        "summaries": summaries,
        "comparison": compare(summaries, records, day),
    }
    md = policy_day_report.markdown(result)
    row = next(line for line in md.splitlines() if line.startswith("| local-first-gated |"))
    assert row.endswith("| $0.01 | 0.0% / 0.00% |")
    plain = next(line for line in md.splitlines() if line.startswith("| local-first |"))
    assert plain.endswith("| – | 100.0% / – |")
    assert (
        "- quality gate (lower 95% bound ≥ 0.9 over ≥ 200 pairs): 0.00% of requests served by a "
        "model below the bar for their task after min_samples (must be 0: PASS)" in md
    )
    assert "exploration 1 calls, $0.01" in md
    assert "local-first served 100.0% of its requests with a model below the bar" in md
    assert policy_day_report.write(result, tmp_path)[2].exists()

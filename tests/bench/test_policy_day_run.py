"""The policy day against real servers: its requests on the simulator, its command line,
and one short policy run end to end (simulator + gateway processes on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.common.request import send_streaming
from benchmarks.common.result import RequestInput
from benchmarks.policy_day.cli import parse_args
from benchmarks.policy_day.client import CANCELLED, replay, request, session
from benchmarks.policy_day.combine import build_report
from benchmarks.policy_day.day import run_policy
from benchmarks.policy_day.policies import POLICIES
from benchmarks.policy_day.sim import scaled_profiles
from benchmarks.policy_day.stats import Record
from benchmarks.policy_day.traffic import DEFAULT_MIX, WORKLOADS, Arrival, body
from gateway.simulator.app import create_app
from gateway.simulator.profiles import PROFILES
from tests.support import ServerThread


def test_command_line_defaults_and_checks() -> None:
    args = parse_args([])
    assert args.command == "run" and args.policies == list(POLICIES)
    assert args.hours == list(range(24)) and args.mix == DEFAULT_MIX
    assert parse_args(["run", "--hours", "9-11,14"]).hours == [9, 10, 11, 14]
    with pytest.raises(SystemExit):
        parse_args(["--policies", "all-gpu"])


@pytest.fixture()
def scaled_sim() -> Iterator[str]:
    sim = ServerThread(create_app("instant", profiles=scaled_profiles(5))).start()
    yield f"{sim.url}/llama-3.1-8b-h100/v1/chat/completions"
    sim.stop()


def _extraction(a: Arrival) -> dict[str, Any]:
    return body(a, "m", 5)


async def test_a_policy_day_request_on_the_scaled_simulator(scaled_sim: str) -> None:
    arrival = Arrival(0, 0.0, 12, "extraction")
    async with session(60) as s:
        r = await send_streaming(s, request(scaled_sim, arrival, _extraction))
        bad = await send_streaming(s, RequestInput(scaled_sim, b"{"))
    assert r.success and r.error == "" and r.first_token
    tpot = PROFILES["llama-3.1-8b-h100"].tpot_base_s
    assert r.latency >= 59 * 5 * tpot * 0.9  # 60 replayed tokens, each standing for 5
    assert (r.prompt_len, r.output_tokens) == (WORKLOADS["extraction"].prompt_tokens, 60)
    assert not bad.success and bad.status == 400


async def test_replay_cuts_off_what_outlives_the_drain_and_says_so(scaled_sim: str) -> None:
    """Each request streams for ~1.4 s; a 0.3 s drain cancels them. A cut-off result keeps the
    first token it had (the sustained peak counts it against the SLO) and names the cut-off."""
    arrivals = [Arrival(i, i * 0.01, 12, "extraction") for i in range(3)]
    cut = await replay(scaled_sim, arrivals, _extraction, drain_s=0.3)
    assert len(cut) == 3
    assert all(not r.success and r.error == CANCELLED for r in cut)
    assert all(r.ttft > 0 for r in cut if r.first_token)
    done = await replay(scaled_sim, arrivals[:1], _extraction, drain_s=30)
    assert done[0].success and done[0].error == ""


def test_one_policy_hour_end_to_end(tmp_path: Path) -> None:
    args = parse_args(
        [
            "run",
            "--policies",
            "local-first",
            "--hours",
            "12",
            "--hour-s",
            "1.5",
            "--peak-factor",
            "0.5",
            "--drain-s",
            "30",
            "--peak-s",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    path = run_policy("local-first", args)
    data = json.loads(path.read_text())
    records = [Record.from_json(d) for d in data["records"]]
    assert records and all(r.ok for r in records), [r.error for r in records if not r.ok]
    assert data["ledger_rows_missing"] == 0
    assert all(r.local and r.provider == "local-llama" for r in records)  # far below capacity
    assert all(r.input_usd > 0 and r.prompt_tokens > 0 for r in records)  # amortised GPU price
    result = build_report(tmp_path)
    s = result["summaries"]["local-first"]
    assert s["share_local"] == 1.0 and s["gpu_rented_usd"] == pytest.approx(2.69)
    assert s["tpot_p50_ms"] is not None and s["tpot_p50_ms"] > 4.5  # the H100 profile: 4.63 ms
    peak = s["sustained_peak"]
    assert peak["requests"] == len(data["peak"]) and peak["no_first_token"] == 0


def test_one_gated_policy_hour_end_to_end(tmp_path: Path) -> None:
    """The fourth policy: every request of a task still explored is shadowed to Claude Haiku,
    the shadow rows are read back from the ledger, and nothing below the bar is served on
    evidence (an hour at half the GPU's capacity explores: fewer than 200 pairs a task)."""
    args = parse_args(
        [
            "run",
            "--policies",
            "local-first-gated",
            "--hours",
            "12",
            "--hour-s",
            "1.5",
            "--peak-factor",
            "0.5",
            "--drain-s",
            "30",
            "--peak-s",
            "0",
            "--out",
            str(tmp_path),
        ]
    )
    path = run_policy("local-first-gated", args)
    data = json.loads(path.read_text())
    records = [Record.from_json(d) for d in data["records"]]
    assert records and all(r.ok for r in records), [r.error for r in records if not r.ok]
    assert all(r.gate == "explore" and r.local for r in records)
    assert any(r.below_bar for r in records)  # extraction and chat: the 8B is below the bar
    shadow = [Record.from_json(d) for d in data["shadow"]]
    assert shadow and all(s.gate == "explore" and s.provider == "anthropic" for s in shadow)
    s = build_report(tmp_path)["summaries"]["local-first-gated"]
    assert s["below_bar_decided"] == 0.0 and s["shadow_usd"] > 0

"""The policy benchmark against real servers: its client on the simulator, its command line,
and one short policy run end to end (simulator + gateway processes on 127.0.0.1)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import orjson
import pytest

from benchmarks.policy_day import day as policy_day
from benchmarks.policy_day.client import Outcome, send
from benchmarks.policy_day.sim import scaled_profiles
from benchmarks.policy_day.stats import Record
from benchmarks.policy_day.traffic import DEFAULT_MIX, WORKLOADS, Arrival, body
from gateway.simulator.profiles import PROFILES
from tests.support import ServerThread


def test_command_line_defaults_and_checks() -> None:
    args = policy_day.parse_args([])
    assert args.command == "run" and args.policies == list(policy_day.POLICIES)
    assert args.hours == list(range(24)) and args.mix == DEFAULT_MIX
    assert policy_day.parse_args(["run", "--hours", "9-11,14"]).hours == [9, 10, 11, 14]
    with pytest.raises(SystemExit):
        policy_day.parse_args(["--policies", "all-gpu"])


async def test_send_measures_a_stream_and_never_raises() -> None:
    from gateway.simulator.app import create_app

    sim = ServerThread(create_app("instant", profiles=scaled_profiles(5))).start()
    try:
        url = f"{sim.url}/llama-3.1-8b-h100/v1/chat/completions"
        arrival = Arrival(0, 0.0, 12, "extraction")
        async with aiohttp.ClientSession() as session:
            out = await send(session, url, orjson.dumps(body(arrival, "m", 5)), Outcome(arrival))
            refused = await send(
                session, "http://127.0.0.1:9/v1/chat/completions", b"{}", Outcome(arrival)
            )
            bad = await send(session, url, b"{", Outcome(arrival))
    finally:
        sim.stop()
    assert out.ok and out.error is None and out.ttft_s is not None
    tpot = PROFILES["llama-3.1-8b-h100"].tpot_base_s
    assert out.latency_s is not None and out.latency_s >= 59 * 5 * tpot * 0.9
    assert (out.prompt_tokens, out.completion_tokens) == (WORKLOADS["extraction"].prompt_tokens, 60)
    assert not refused.ok and refused.error and "Connect" in refused.error
    assert not bad.ok and bad.status == 400


def test_one_policy_hour_end_to_end(tmp_path: Path) -> None:
    args = policy_day.parse_args(
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
    path = policy_day.run_policy("local-first", args)
    data = json.loads(path.read_text())
    records = [Record.from_json(d) for d in data["records"]]
    assert records and all(r.ok for r in records), [r.error for r in records if not r.ok]
    assert data["ledger_rows_missing"] == 0
    assert all(r.local and r.provider == "local-llama" for r in records)  # far below capacity
    assert all(r.input_usd > 0 and r.prompt_tokens > 0 for r in records)  # amortised GPU price
    result = policy_day.build_report(tmp_path)
    s = result["summaries"]["local-first"]
    assert s["share_local"] == 1.0 and s["gpu_rented_usd"] == pytest.approx(2.69)
    assert s["tpot_p50_ms"] is not None and s["tpot_p50_ms"] > 4.5  # the H100 profile: 4.63 ms
    peak = s["sustained_peak"]
    assert peak["requests"] == len(data["peak"]) and peak["no_first_token"] == 0

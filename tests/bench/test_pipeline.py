"""The whole `gateway bench` pipeline at small scale: simulator → points → files → DB → calibration."""

import asyncio
from pathlib import Path

import httpx
import orjson
from typer.testing import CliRunner

from gateway.cli import app
from gateway.ledger.calibration import Calibration, latest_calibration
from gateway.ledger.db import create_engine

runner = CliRunner()


def _bench(sim_url: str, tmp_path: Path, *extra: str) -> tuple[int, str]:
    r = runner.invoke(
        app,
        [
            "bench",
            "run",
            "--base-url",
            f"{sim_url}/tiny-gpu",
            "--workload",
            "fixed",
            "--input-len",
            "32",
            "--output-len",
            "8",
            "--num-prompts",
            "8",
            "--quiet",
            "--duration",
            "0.4",
            "--warmup",
            "0.1",
            "--out",
            str(tmp_path / "out"),
            "--database-url",
            f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
            *extra,
        ],
    )
    return r.exit_code, r.output


def test_sweep_writes_every_file_saves_the_run_and_calibrates(sim_url: str, tmp_path: Path) -> None:
    code, out = _bench(
        sim_url,
        tmp_path,
        "--sweep",
        "concurrency=1,4",
        "--direct-url",
        f"{sim_url}/tiny-gpu",
        "--slo-ttft-ms",
        "500",
        "--slo-tpot-ms",
        "50",
        "--gpu-hourly-usd",
        "2.49",
    )
    assert code == 0, out
    (run_dir,) = (tmp_path / "out").iterdir()
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == [
        "cost_vs_load.png",
        "latency_vs_throughput.png",
        "points.csv",
        "report.md",
        "run.json",
    ]
    for png in ("cost_vs_load.png", "latency_vs_throughput.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = orjson.loads((run_dir / "run.json").read_bytes())
    assert run["run_id"] == run_dir.name
    assert run["command"].startswith("gateway bench run --base-url ")
    assert "--sweep concurrency=1,4" in run["command"] and "--quiet" in run["command"]
    assert run["versions"]["aiohttp"] and run["versions"]["python"]
    assert [p["label"] for p in run["points"]] == ["concurrency=1", "concurrency=4"]
    for p in run["points"]:
        s = p["summary"]
        assert s["completed"] > 0 and s["failed"] == 0
        assert s["total_output"] == 8 * s["completed"]  # usage, exactly max_tokens (ignore_eos)
        assert s["ttft"]["percentiles"]["p99"] > 0 and s["tpot"]["median"] > 0
        assert p["gpu_usd_per_mtok_output"] > 0 and p["within_slo"]
        assert set(p["gateway_overhead_ms"]) == {
            "ttft_median_ms",
            "ttft_p99_ms",
            "e2el_median_ms",
            "e2el_p99_ms",
        }
        assert p["client"]["cpu_fraction"] > 0
        # the simulator serves vLLM's /metrics: the server's own count of generated tokens
        assert p["server"]["generation_tokens"] >= s["total_output"]
        assert p["server"]["max_running"] >= 0  # sampled: c=1 can be caught between requests
    assert run["best_point"] in (0, 1)
    assert {a["api"] for a in run["apis"]} == {
        "claude-3.5-haiku",
        "gpt-4o-mini",
        "gemini-1.5-flash",
    }
    assert all(a["break_even_requests_per_month"] > 0 for a in run["apis"])
    csv = (run_dir / "points.csv").read_text()
    assert csv.startswith("# command: ") and csv.count("\n") == 4  # command, header, 2 points
    md = (run_dir / "report.md").read_text()
    assert "| concurrency=1" in md and "Gateway overhead" in md and "![cost_vs_load.png]" in md

    db = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    r = runner.invoke(app, ["bench", "runs", "--database-url", db])
    assert r.exit_code == 0 and run["run_id"] in r.output
    r = runner.invoke(
        app,
        ["bench", "calibrate", run["run_id"], "--provider", "local-llama", "--database-url", db],
    )
    assert r.exit_code == 0, r.output
    best = run["points"][run["best_point"]]

    async def read() -> tuple[Calibration | None, Calibration | None]:
        engine = create_engine(db)
        try:
            return (
                await latest_calibration(engine, "local-llama"),
                await latest_calibration(engine, "other"),
            )
        finally:
            await engine.dispose()

    cal, none = asyncio.run(read())
    assert none is None and cal is not None
    assert cal.run_id == run["run_id"]
    assert cal.max_concurrency == best["shape"]["concurrency"]
    assert cal.output_tokens_per_s == best["summary"]["output_throughput"]
    assert cal.total_tokens_per_s == best["summary"]["total_token_throughput"]
    assert cal.slo["ttft_ms"] == 500 and cal.slo["attainment"] == 0.99


def test_a_failing_initial_request_stops_the_run_before_measuring(
    sim_url: str, tmp_path: Path
) -> None:
    httpx.post(f"{sim_url}/sim/faults", json={"upstream": "tiny-gpu", "status": 500})
    code, out = _bench(sim_url, tmp_path, "--concurrency", "1")
    assert code == 2 and "initial test request" in out and "HTTP 500" in out
    assert "Traceback" not in out
    assert not (tmp_path / "out").exists()


def test_bad_options_are_clear_errors(sim_url: str, tmp_path: Path) -> None:
    code, out = _bench(sim_url, tmp_path, "--sweep", "speed=1,2")
    assert code == 2 and "--sweep" in out
    code, out = _bench(sim_url, tmp_path, "--api", "no-such-model-anywhere")
    assert code == 2 and "litellm" in out
    r = runner.invoke(
        app,
        [
            "bench",
            "calibrate",
            "nope",
            "--database-url",
            f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
        ],
    )
    assert r.exit_code == 2 and "no benchmark run" in r.output


def test_the_completions_endpoint_and_non_streamed_runs(sim_url: str, tmp_path: Path) -> None:
    code, out = _bench(
        sim_url,
        tmp_path,
        "--endpoint",
        "completions",
        "--no-stream",
        "--concurrency",
        "2",
        "--no-save",
    )
    assert code == 0, out
    (run_dir,) = (tmp_path / "out").iterdir()
    run = orjson.loads((run_dir / "run.json").read_bytes())
    s = run["points"][0]["summary"]
    assert s["completed"] > 0 and s["ttft"] is None and s["e2el"]["median"] > 0
    assert s["total_output"] == 8 * s["completed"]
    assert not (tmp_path / "l.db").exists()  # --no-save

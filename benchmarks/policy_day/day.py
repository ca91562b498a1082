"""The policy benchmark: one synthetic day of traffic, replayed through the real gateway against
the simulator, under three routing policies — all-API, all-local, local-first.

    python -m benchmarks.policy_day run [--policies all-api,all-local,local-first]
        [--hour-s 5] [--peak-factor 2] [--capacity-rps 29.8] [--mix classification=0.6,...]
        [--output-scale 5] [--seed 0] [--hours 0-23] [--peak-s 60] [--drain-s 120]
        [--out bench-results/policy_day]
    python -m benchmarks.policy_day report      # combine the policies' JSON: table, MD, PNG
    python -m benchmarks.policy_day calibrate   # the simulated H100's capacity under the mix
    python -m benchmarks.policy_day decide      # Router.decide microbenchmark

Method. Each policy gets a fresh simulator (`policy_day_sim.py`: the stock profiles, one token
standing for `output_scale` real ones), a fresh gateway (`gateway serve`,
`config/bench/policy_day.yaml`) and a fresh SQLite ledger, all on 127.0.0.1. One request of
each workload must succeed first (warm-up, not counted). Then the day's schedule
(`policy_day_traffic.py`: 24 hours, each `hour_s` replay seconds of Poisson arrivals at that
hour's real rate, the same seeded requests for every policy) is sent open-loop as streaming
chat requests; the client measures TTFT; the ledger gives each request's provider, tokens and
cost (joined on `x-request-id`). Once the day has drained, the peak hour's rate is held for
`peak_s` seconds (the *sustained peak*, TTFT only: requests still without a first token a
second past the SLO after the last one are cut off and count as misses). The gateway is
stopped gracefully so the ledger is complete. Each policy takes about `24 × hour_s` + drain +
`peak_s` seconds (~3–3.5 min by default): run them one by one if need be, then `report`.

Policies (one entry each, rule R3): all-API = the `day-api` route (cost policy over GPT-4o mini,
Claude Haiku 3.5 and Gemini 1.5 Flash: the cheapest eligible per request); all-local = the
`llama-3.1-8b` model pinned; local-first = the `day-local-first` route over all four.

Cost accounting (details in `policy_day_stats.py`). A replay second stands for a real second at
the same request rates, so each hour's replayed spend, tokens and requests are multiplied by
`3600 / hour_s`; replayed output tokens and their cost by `output_scale`. API requests cost
what the ledger says (published prices, cache reads at the cache-read rate). The GPU is shown
two ways: *rented* — `hourly_usd × count × 24` for the day, busy or idle (the bill: this is
the view the targets use) — and *amortised* — the ledger's price of the local rows at the
GPU's calibrated throughput, i.e. only the share of the GPU the traffic used.

The peak is `--peak-factor` × the GPU's capacity (`calibrate` measures it: req/s at the decode
ceiling under the mix with `max_in_flight` concurrent requests). Compressed time understates
what an overloaded GPU does: a real peak hour piles its excess up for 3,600 s, the replay for
`hour_s` — hence the sustained peak, which starts from a drained GPU (the kindest start for
all-local, so its queue there is still a lower bound of the real one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks.common.procs import Proc, free_port, gateway_cmd
from benchmarks.policy_day import report
from benchmarks.policy_day.client import Outcome, replay, send
from benchmarks.policy_day.stats import Day, Record, compare, peak_phase, summarize
from benchmarks.policy_day.traffic import (
    DAY_SHAPE,
    DEFAULT_MIX,
    WORKLOADS,
    Arrival,
    body,
    check_scale,
    hour_rates,
    parse_mix,
    schedule,
)
from gateway.config import GatewayConfig, load_config

CONFIG = Path(__file__).resolve().parents[2] / "config" / "bench" / "policy_day.yaml"
# Measured by `calibrate` under DEFAULT_MIX (README "Routing benchmark"): from 24 concurrent
# requests the simulated H100 streams its 5,100 output tok/s ceiling, 4,854 / 163 = 29.8 req/s.
CAPACITY_RPS = 29.8
LOCAL_FIRST_ROUTE = "day-local-first"
PEAK_GRACE_S = 1.0  # after the last peak request: past the SLO, a missing first token is a miss


@dataclass(frozen=True, slots=True)
class Policy:
    model: str  # what the client sends
    uses_gpu: bool  # the day pays for the GPU


POLICIES: dict[str, Policy] = {
    "all-api": Policy("day-api", uses_gpu=False),
    "all-local": Policy("llama-3.1-8b", uses_gpu=True),
    "local-first": Policy(LOCAL_FIRST_ROUTE, uses_gpu=True),
}


def _config(path: Path) -> GatewayConfig:
    return load_config(path, environ={"POLICY_DAY_SIM": "http://127.0.0.1:1"})


def _slo_ms(config: GatewayConfig) -> float:
    route = next(r for r in config.routes if r.name == LOCAL_FIRST_ROUTE)
    return float(route.slo.ttft_p95_ms or 0)


def peak_schedule(args: argparse.Namespace) -> list[Arrival]:
    """The peak hour's rate held for `peak_s` seconds (its own seeded draw)."""
    hour = DAY_SHAPE.index(max(DAY_SHAPE))
    return schedule(
        args.peak_factor * args.capacity_rps,
        args.peak_s,
        args.mix,
        seed=args.seed + 1,
        hours=[hour],
    )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "hour_s": args.hour_s,
        "peak_rps": args.peak_factor * args.capacity_rps,
        "peak_s": args.peak_s,
        "capacity_rps": args.capacity_rps,
        "mix": args.mix,
        "output_scale": args.output_scale,
        "seed": args.seed,
        "hours": args.hours,
        "config": str(args.config),
    }


def _meta() -> dict[str, Any]:
    return {
        "command": " ".join(["python", "-m", "benchmarks.policy_day", *sys.argv[1:]]),
        "gateway": version("llm-cost-gateway"),
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} cpu, {platform.machine()}",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


# --- one policy's day ------------------------------------------------------------------------


def read_ledger(db: Path) -> dict[str, sqlite3.Row]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute(
            "select id, provider, status_code, prompt_tokens, completion_tokens, "
            "input_cost_usd, output_cost_usd, route_reason from requests"
        )
        return {r["id"]: r for r in rows}
    finally:
        con.close()


def to_record(o: Outcome, row: sqlite3.Row | None, local_providers: set[str]) -> Record:
    provider = (row["provider"] if row is not None else None) or o.provider
    return Record(
        index=o.arrival.index,
        hour=o.arrival.hour,
        workload=o.arrival.workload,
        ok=o.ok,
        ttft_s=o.ttft_s,
        latency_s=o.latency_s,
        provider=provider,
        local=o.status == 200 and provider in local_providers,
        prompt_tokens=row["prompt_tokens"] if row is not None else 0,
        completion_tokens=row["completion_tokens"] if row is not None else 0,
        input_usd=Decimal(row["input_cost_usd"]) if row is not None else Decimal(0),
        output_usd=Decimal(row["output_cost_usd"]) if row is not None else Decimal(0),
        error=o.error,
    )


async def _warm_up(url: str, model: str, scale: int) -> None:
    """One request of each workload must succeed before the day starts (not counted)."""
    import aiohttp
    import orjson

    async with aiohttp.ClientSession() as session:
        for i, name in enumerate(WORKLOADS):
            warm = Arrival(-1 - i, 0.0, 0, name)
            out = await send(session, url, orjson.dumps(body(warm, model, scale)), Outcome(warm))
            if not out.ok:
                raise SystemExit(f"warm-up {name} request to {model} failed: {out.error}")


def run_policy(name: str, args: argparse.Namespace) -> Path:
    policy, settings = POLICIES[name], _settings(args)
    config = _config(args.config)
    local = {p.name for p in config.providers if p.self_hosted}
    arrivals = schedule(
        settings["peak_rps"], args.hour_s, args.mix, seed=args.seed, hours=args.hours
    )
    work = Path(tempfile.mkdtemp(prefix="gw-policy-day-"))
    sim_port, gw_port = free_port(), free_port()
    sim_url, gw_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{gw_port}"
    url = f"{gw_url}/v1/chat/completions"
    print(
        f"{name}: {len(arrivals)} requests over {len(args.hours)} hours × {args.hour_s:g} s "
        f"(peak {settings['peak_rps']:.1f} req/s); logs in {work} until it ends",
        flush=True,
    )
    sim = Proc(
        [
            sys.executable,
            "-m",
            "benchmarks.policy_day.sim",
            "--port",
            str(sim_port),
            "--output-scale",
            str(args.output_scale),
        ],
        f"{sim_url}/health",
        work / "sim.log",
    )
    try:
        gw = Proc(
            gateway_cmd("serve", "--config", str(args.config), "--port", str(gw_port)),
            f"{gw_url}/health",
            work / "gw.log",
            env={
                "POLICY_DAY_SIM": sim_url,
                "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'ledger.db'}",
            },
        )
        try:
            asyncio.run(_warm_up(url, policy.model, args.output_scale))

            def progress(hour: int, in_flight: int) -> None:
                print(
                    f"  hour {hour:2d}: {settings['peak_rps'] * DAY_SHAPE[hour]:5.1f} req/s, "
                    f"{in_flight} in flight",
                    flush=True,
                )

            outcomes = asyncio.run(
                replay(
                    url,
                    arrivals,
                    lambda a: body(a, policy.model, args.output_scale),
                    drain_s=args.drain_s,
                    progress=progress,
                )
            )
            peak: list[Outcome] = []
            if args.peak_s > 0:
                print(
                    f"  sustained peak: {settings['peak_rps']:.1f} req/s for {args.peak_s:g} s",
                    flush=True,
                )
                peak = asyncio.run(
                    replay(
                        url,
                        peak_schedule(args),
                        lambda a: body(a, policy.model, args.output_scale),
                        drain_s=_slo_ms(config) / 1000 + PEAK_GRACE_S,
                    )
                )
        finally:
            gw.stop()
    finally:
        sim.stop()
    rows = read_ledger(work / "ledger.db")
    records = [to_record(o, rows.get(o.request_id or ""), local) for o in outcomes]
    missing = sum(1 for o in outcomes if o.request_id and o.request_id not in rows)
    reasons: dict[str, str] = {}  # one route_reason per provider, for the report
    for o in outcomes:
        row = rows.get(o.request_id or "")
        if row is not None and row["provider"] not in reasons:
            reasons[row["provider"]] = row["route_reason"]
    args.out.mkdir(parents=True, exist_ok=True)
    path: Path = args.out / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "policy": name,
                "model": policy.model,
                "settings": settings,
                "meta": _meta(),
                "ledger_rows_missing": missing,
                "route_reasons": reasons,
                "records": [r.to_json() for r in records],
                "peak": [to_record(o, None, local).to_json() for o in peak],
            }
        )
    )
    shutil.move(work / "ledger.db", args.out / f"{name}.ledger.db")  # for sqlite3 queries
    shutil.rmtree(work, ignore_errors=True)
    errors = [r.error for r in records if not r.ok]
    print(
        f"{name}: {len(records) - len(errors)} ok, {len(errors)} failed"
        + (f" (first: {errors[0]})" if errors else "")
        + f"; wrote {path}",
        flush=True,
    )
    return path


# --- combining the policies ------------------------------------------------------------------


def build_report(out: Path) -> dict[str, Any]:
    runs = {}
    for name in POLICIES:
        p = out / f"{name}.json"
        if p.exists():
            runs[name] = json.loads(p.read_text())
    if not runs:
        raise SystemExit(f"no policy results in {out}: run `python -m benchmarks.policy_day run`")
    newest = max(runs.values(), key=lambda r: str(r["meta"]["date"]))["settings"]
    for name in [n for n, r in runs.items() if r["settings"] != newest]:
        print(f"skipping {name}: run with other settings ({runs.pop(name)['settings']})")
    config = _config(Path(newest["config"]))
    gpu = next(p.gpu for p in config.providers if p.gpu is not None)
    day = Day(
        hour_s=newest["hour_s"],
        output_scale=newest["output_scale"],
        hours=tuple(newest["hours"]),
        rates=tuple(hour_rates(newest["peak_rps"])),
        slo_ms=_slo_ms(config),
        gpu_usd_per_hour=gpu.hourly_usd * gpu.count,
        capacity_rps=newest["capacity_rps"],
    )
    records = {n: [Record.from_json(d) for d in r["records"]] for n, r in runs.items()}
    summaries = {n: summarize(records[n], day, uses_gpu=POLICIES[n].uses_gpu) for n in records}
    for n, r in runs.items():
        if r.get("peak"):
            summaries[n]["sustained_peak"] = peak_phase(
                [Record.from_json(d) for d in r["peak"]], day.slo_ms
            )
    mix = ", ".join(f"{k} {v:.0%}" for k, v in newest["mix"].items())
    result: dict[str, Any] = {
        "meta": {
            **_meta(),
            "runs": {n: r["meta"]["command"] for n, r in runs.items()},
            "settings": newest,
            "slo_ms": day.slo_ms,
            "capacity_rps": day.capacity_rps,
            "day": f"{len(day.hours)} h × {day.hour_s:g} s replayed (1 replay s = 1 real s "
            f"at the hour's rate); peak {newest['peak_rps']:.1f} req/s "
            f"= {newest['peak_rps'] / day.capacity_rps:.1f}× one H100's "
            f"{day.capacity_rps:.1f}; mix {mix}; outputs replayed at 1/"
            f"{day.output_scale}; H100 ${gpu.hourly_usd}/h × {gpu.count}",
            "peak": f"{newest['peak_rps']:.1f} req/s (the peak hour's rate) held for "
            f"{newest.get('peak_s', 0):g} s after the day, from a drained GPU (the "
            f"kindest start for all-local); requests without a first token "
            f"{PEAK_GRACE_S:g} s past the SLO after the last one are cut off "
            f"and count as misses",
        },
        "summaries": summaries,
        "comparison": compare(summaries, records, day),
        "ledger_rows_missing": {n: r["ledger_rows_missing"] for n, r in runs.items()},
        "route_reasons": {n: r.get("route_reasons", {}) for n, r in runs.items()},
    }
    decide = out / "decide.json"
    if decide.exists():
        result["decide"] = json.loads(decide.read_text())
    return result


def cmd_report(args: argparse.Namespace) -> None:
    result = build_report(args.out)
    paths = report.write(result, args.out)
    print(report.markdown(result))
    print("wrote " + ", ".join(map(str, paths)))


# --- command line ----------------------------------------------------------------------------


def _hours(text: str) -> list[int]:
    out: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    if not out or any(not 0 <= h < len(DAY_SHAPE) for h in out):
        raise argparse.ArgumentTypeError(f"hours must be within 0-23: {text!r}")
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.policy_day", description=(__doc__ or "").split("\n\n")[0]
    )
    ap.add_argument(
        "command", choices=["run", "report", "calibrate", "decide"], nargs="?", default="run"
    )
    ap.add_argument(
        "--policies", type=lambda s: [p for p in s.split(",") if p], default=list(POLICIES)
    )
    ap.add_argument("--hour-s", type=float, default=5.0, help="replay seconds per hour")
    ap.add_argument(
        "--peak-factor", type=float, default=2.0, help="peak rate as a multiple of --capacity-rps"
    )
    ap.add_argument("--capacity-rps", type=float, default=CAPACITY_RPS)
    ap.add_argument("--mix", type=parse_mix, default=DEFAULT_MIX)
    ap.add_argument("--output-scale", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hours", type=_hours, default=list(range(len(DAY_SHAPE))))
    ap.add_argument("--drain-s", type=float, default=120.0)
    ap.add_argument(
        "--peak-s",
        type=float,
        default=60.0,
        help="then hold the peak rate this long (TTFT only; 0: skip)",
    )
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--out", type=Path, default=Path("bench-results/policy_day"))
    ap.add_argument(
        "--conc",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[8, 16, 24, 32, 40, 48, 64],
        help="calibrate: concurrencies",
    )
    ap.add_argument("--seconds", type=float, default=15.0, help="calibrate: measured window")
    ap.add_argument("--warmup-s", type=float, default=8.0, help="calibrate: warm-up")
    ap.add_argument("--n", type=int, default=3000, help="decide: calls per variant")
    args = ap.parse_args(argv)
    unknown = [p for p in args.policies if p not in POLICIES]
    if unknown:
        ap.error(f"unknown policies {unknown} (known: {', '.join(POLICIES)})")
    try:
        check_scale(args.output_scale)
    except ValueError as e:
        ap.error(str(e))
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command in ("calibrate", "decide"):
        from benchmarks.policy_day import measure

        (measure.calibrate if args.command == "calibrate" else measure.decide)(args)
    else:
        if args.command == "run":
            for name in args.policies:
                run_policy(name, args)
        cmd_report(args)

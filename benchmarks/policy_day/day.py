"""One policy's day: a fresh simulator, gateway and ledger; the day replayed, then the peak held.

The method is in the package docstring (`benchmarks/policy_day/__init__.py`). What comes out is
`<out>/<policy>.json` (every request's record, joined with its ledger row on `x-request-id`) and
`<out>/<policy>.ledger.db` (the SQLite ledger itself, for queries).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.common.procs import Proc, free_port, gateway_cmd
from benchmarks.common.request import send_streaming
from benchmarks.common.result import RequestResult
from benchmarks.policy_day.client import replay, request, session
from benchmarks.policy_day.policies import (
    PEAK_GRACE_S,
    POLICIES,
    below_bar,
    day_config,
    run_meta,
    slo_ms,
)
from benchmarks.policy_day.stats import Record
from benchmarks.policy_day.traffic import DAY_SHAPE, WORKLOADS, Arrival, body, schedule
from gateway.config import GatewayConfig


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


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """What a day was run with: runs are combined only when these match."""
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


def read_ledger(db: Path) -> dict[str, sqlite3.Row]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute(
            "select id, provider, status_code, prompt_tokens, completion_tokens, "
            "input_cost_usd, output_cost_usd, route_reason, shadow, shadow_of from requests "
            "order by created_at"
        )
        return {r["id"]: r for r in rows}
    finally:
        con.close()


def gate_of(reason: str | None) -> str:
    """What the quality gate said of the chosen model in a `route_reason`: "explore" (served
    while its task is explored), "proven" (served on evidence) or "" (not gated)."""
    chosen = (reason or "").partition("→ chosen")[2].split("; ", 1)[0]
    if "(quality:" not in chosen:
        return ""
    return "explore" if " exploring, " in chosen else "proven"


def to_record(
    a: Arrival,
    r: RequestResult,
    row: sqlite3.Row | None,
    local_providers: set[str],
    config: GatewayConfig | None = None,
) -> Record:
    """What the client measured for arrival `a`, joined with its ledger row (if it has one);
    with `config`, whether the model that answered is below the quality bar for the task."""
    provider = (row["provider"] if row is not None else None) or r.provider
    served = r.status == 200 and config is not None
    return Record(
        index=a.index,
        hour=a.hour,
        workload=a.workload,
        ok=r.success,
        ttft_s=r.ttft if r.first_token else None,
        latency_s=r.latency if r.success else None,
        provider=provider,
        local=r.status == 200 and provider in local_providers,
        prompt_tokens=row["prompt_tokens"] if row is not None else 0,
        completion_tokens=row["completion_tokens"] if row is not None else 0,
        input_usd=Decimal(row["input_cost_usd"]) if row is not None else Decimal(0),
        output_usd=Decimal(row["output_cost_usd"]) if row is not None else Decimal(0),
        error=r.error or None,
        below_bar=served and config is not None and below_bar(config, provider, a.workload),
        gate=gate_of(row["route_reason"]) if row is not None else "",
    )


def shadow_records(
    rows: Iterable[sqlite3.Row], primaries: Mapping[str, Record], min_samples: int
) -> list[Record]:
    """The day's shadow calls (of the day's requests: not the warm-up's or the peak's), oldest
    first, priced like requests. The first `min_samples` of each (task, primary model) are the
    exploration (`gate` "explore"): pairs needed once, however long the day; the rest are the
    steady sample ("sample"), which grows with the traffic."""
    seen: dict[tuple[str, str | None], int] = {}
    out = []
    for row in rows:
        primary = primaries.get(row["shadow_of"] or "")
        if primary is None:
            continue
        key = (primary.workload, primary.provider)
        seen[key] = seen.get(key, 0) + 1
        out.append(shadow_record(row, primary, seen[key] <= min_samples))
    return out


def shadow_record(row: sqlite3.Row, primary: Record, explore: bool) -> Record:
    """A shadow call's ledger row, priced like a request's, under its primary's index."""
    return Record(
        index=primary.index,
        hour=primary.hour,
        workload=primary.workload,
        gate="explore" if explore else "sample",
        ok=row["status_code"] == 200,
        provider=row["provider"],
        prompt_tokens=row["prompt_tokens"] or 0,
        completion_tokens=row["completion_tokens"] or 0,
        input_usd=Decimal(row["input_cost_usd"] or 0),
        output_usd=Decimal(row["output_cost_usd"] or 0),
    )


async def warm_up(url: str, model: str, scale: int) -> None:
    """One request of each workload must succeed before the day starts (not counted)."""
    async with session(300.0) as s:
        for i, name in enumerate(WORKLOADS):
            warm = Arrival(-1 - i, 0.0, 0, name)
            r = await send_streaming(s, request(url, warm, lambda a: body(a, model, scale)))
            if not r.success:
                raise SystemExit(f"warm-up {name} request to {model} failed: {r.error}")


@contextlib.contextmanager
def servers(args: argparse.Namespace, work: Path) -> Iterator[str]:
    """A fresh token-scaled simulator and a gateway with its own SQLite ledger in `work`; yields
    the gateway's URL. The gateway is stopped gracefully, so its ledger is complete after."""
    sim_port, gw_port = free_port(), free_port()
    sim_url, gw_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{gw_port}"
    sim_cmd = [sys.executable, "-m", "benchmarks.policy_day.sim", "--port", str(sim_port)]
    sim = Proc(
        [*sim_cmd, "--output-scale", str(args.output_scale)], f"{sim_url}/health", work / "sim.log"
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
            yield gw_url
        finally:
            gw.stop()
    finally:
        sim.stop()


def run_policy(name: str, args: argparse.Namespace) -> Path:
    """Replay the day (then the sustained peak) under one policy; write `<out>/<name>.json`."""
    policy, run = POLICIES[name], settings(args)
    config = day_config(args.config)
    arrivals = schedule(run["peak_rps"], args.hour_s, args.mix, seed=args.seed, hours=args.hours)
    peak_arrivals = peak_schedule(args) if args.peak_s > 0 else []
    work = Path(tempfile.mkdtemp(prefix="gw-policy-day-"))
    print(
        f"{name}: {len(arrivals)} requests over {len(args.hours)} hours × {args.hour_s:g} s "
        f"(peak {run['peak_rps']:.1f} req/s); logs in {work} until it ends",
        flush=True,
    )

    def bodies(a: Arrival) -> dict[str, Any]:
        return body(a, policy.model, args.output_scale)

    def progress(hour: int, in_flight: int) -> None:
        rate = run["peak_rps"] * DAY_SHAPE[hour]
        print(f"  hour {hour:2d}: {rate:5.1f} req/s, {in_flight} in flight", flush=True)

    with servers(args, work) as gw_url:
        url = f"{gw_url}/v1/chat/completions"
        asyncio.run(warm_up(url, policy.model, args.output_scale))
        results = asyncio.run(
            replay(url, arrivals, bodies, drain_s=args.drain_s, progress=progress)
        )
        peak: list[RequestResult] = []
        if peak_arrivals:
            print(
                f"  sustained peak: {run['peak_rps']:.1f} req/s for {args.peak_s:g} s", flush=True
            )
            drain_s = slo_ms(config) / 1000 + PEAK_GRACE_S
            peak = asyncio.run(replay(url, peak_arrivals, bodies, drain_s=drain_s))
    local = {p.name for p in config.providers if p.self_hosted}
    rows = read_ledger(work / "ledger.db")
    records = [
        to_record(a, r, rows.get(r.request_id or ""), local, config)
        for a, r in zip(arrivals, results, strict=True)
    ]
    by_id = {r.request_id: rec for r, rec in zip(results, records, strict=True) if r.request_id}
    gate = next((r.quality for r in config.routes if r.name == policy.model), None)
    shadow = shadow_records(
        (row for row in rows.values() if row["shadow"]),
        by_id,
        gate.min_samples if gate is not None else 0,
    )
    reasons: dict[str, str] = {}  # one route_reason per provider, for the report
    for r in results:
        row = rows.get(r.request_id or "")
        if row is not None and row["provider"] not in reasons:
            reasons[row["provider"]] = row["route_reason"]
    args.out.mkdir(parents=True, exist_ok=True)
    path: Path = args.out / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "policy": name,
                "model": policy.model,
                "settings": run,
                "meta": run_meta(),
                "ledger_rows_missing": sum(
                    1 for r in results if r.request_id and r.request_id not in rows
                ),
                "route_reasons": reasons,
                "records": [r.to_json() for r in records],
                "shadow": [r.to_json() for r in shadow],
                "peak": [
                    to_record(a, r, None, local).to_json()
                    for a, r in zip(peak_arrivals, peak, strict=True)
                ],
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

"""What the gateway adds on top of its upstream: the gateway against the zero-delay simulator
versus the simulator directly, in the same run, under the same load.

    python -m benchmarks.overhead [--conc 1,10,50] [--duration 5] [--repeats 3]
                                  [--stream-conc 1,10,50] [--database-url URL] [--workers N]

Method (after shared/bench/gwbench): wrk (closed loop, keep-alive, one thread) POSTs a small chat
request at each concurrency, first straight to the simulator, then through the gateway,
interleaved, `--repeats` times; figures are medians over the repeats. Streaming: an aiohttp
client measures time to first token against the simulator's `realistic-small` profile (50 ms to
the first token, 5 ms a token), direct and through the gateway. The gateway runs its full
production path (ledger writes, metrics). At the end the gateway is stopped gracefully and the
ledger's rows are counted against the requests the simulator received from it: none may be lost.
Everything listens on 127.0.0.1 and every phase has a fixed duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.common.procs import (
    Proc,
    cpu_seconds,
    free_port,
    gateway_cmd,
    peak_rss_mib,
    tree_pids,
)
from benchmarks.common.stats import median
from benchmarks.overhead.streams import stream_loop

HERE = Path(__file__).parent
BODY = {
    "model": "{model}",
    "messages": [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Summarise why an LLM gateway should add almost no latency."},
    ],
}


def _body(model: str, **extra: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(BODY).replace("{model}", model)), **extra}


def wrk(url: str, body: dict[str, Any], conc: int, duration: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(HERE / "wrk_post.lua"),
            url,
        ],
        env={**os.environ, "BENCH_BODY": json.dumps(body)},
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    r: dict[str, Any] = json.loads(line[len("BENCH_JSON ") :])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def count_rows(database_url: str) -> int:
    from sqlalchemy import func, select

    from gateway.ledger.db import create_engine
    from gateway.ledger.tables import requests_table

    async def run() -> int:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                q = select(func.count()).select_from(requests_table)
                return int((await conn.execute(q)).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def lost_rows(database_url: str, sim_url: str, timeout_s: float = 20.0) -> int:
    """Requests the simulator received from the gateway minus rows in its ledger, once the
    writer has caught up (it flushes every 100 ms; wait for the counts to meet)."""
    deadline = time.monotonic() + timeout_s
    while True:
        received = sum(_requests_by_upstream(_get_json(f"{sim_url}/sim/stats")).values())
        rows = count_rows(database_url)
        if rows >= received or time.monotonic() > deadline:
            return received - rows
        time.sleep(0.2)


def write_config(path: Path, sim: str, database_url: str) -> None:
    path.write_text(f"""database_url: {database_url}
log_level: warning
providers:
  - name: sim-instant
    kind: openai
    api_base: {sim}/instant/v1
    api_key: sk-bench
  - name: sim-delayed
    kind: openai
    api_base: {sim}/realistic-small/v1
    api_key: sk-bench
models:
  - name: bench-instant
    provider: sim-instant
    upstream_model: gpt-4o-mini
  - name: bench-delayed
    provider: sim-delayed
    upstream_model: gpt-4o-mini
routes:
  - name: bench-auto
    policy: cost
    candidates: [bench-instant, bench-delayed]
""")


def _median(xs: list[float]) -> float:
    return median(xs) if xs else float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="gw-overhead-"))
    sim_port, direct_port, gw_port = free_port(), free_port(), free_port()
    sim_url, gw_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{gw_port}"
    direct_url = f"http://127.0.0.1:{direct_port}"
    db_url = args.database_url or f"sqlite+aiosqlite:///{work / 'ledger.db'}"
    cfg = work / "gw.yaml"
    write_config(cfg, sim_url, db_url)
    if args.database_url:
        subprocess.run(gateway_cmd("db", "upgrade", "--config", str(cfg)), check=True)
    # Two identical simulators: one behind the gateway, one for the direct runs, so the requests
    # the gateway forwarded can be counted exactly against its ledger.
    sim = Proc(
        gateway_cmd("simulate", "--port", str(sim_port), "--profile", "instant"),
        f"{sim_url}/health",
        work / "sim.log",
    )
    sim_direct = Proc(
        gateway_cmd("simulate", "--port", str(direct_port), "--profile", "instant"),
        f"{direct_url}/health",
        work / "sim-direct.log",
    )
    gw = Proc(
        gateway_cmd(
            "serve", "--config", str(cfg), "--port", str(gw_port), "--workers", str(args.workers)
        ),
        f"{gw_url}/health",
        work / "gw.log",
        env={"GATEWAY_DATABASE_URL": ""},
    )
    result: dict[str, Any] = {"cold_start_s": gw.cold_start_s, "nonstream": {}, "stream": {}}
    try:
        direct, proxy = f"{direct_url}/v1/chat/completions", f"{gw_url}/v1/chat/completions"
        wrk(proxy, _body("bench-instant"), 10, 1)  # warm-up: pools, caches
        raw: dict[int, list[dict[str, Any]]] = {c: [] for c in args.conc}
        for rep in range(args.repeats):
            for c in args.conc:
                d = wrk(direct, _body("gpt-4o-mini"), c, args.direct_duration)
                cpu0 = sum(cpu_seconds(p) for p in tree_pids(gw.p.pid))
                p = wrk(proxy, _body("bench-instant"), c, args.duration)
                cpu = (sum(cpu_seconds(p_) for p_ in tree_pids(gw.p.pid)) - cpu0) / args.duration
                lost = lost_rows(db_url, sim_url)
                raw[c].append({"direct": d, "proxy": p, "gateway_cpu": cpu, "lost_rows": lost})
                print(
                    f"  rep{rep} c={c:<3} direct {d['rps']:8.0f} rps "
                    f"p50 {d['p50_us'] / 1000:.3f} ms"
                    f" | gateway {p['rps']:7.0f} rps p50 {p['p50_us'] / 1000:.3f} p99 "
                    f"{p['p99_us'] / 1000:.3f} ms err {p['errors'] + p['non2xx']} "
                    f"cpu {cpu * 100:.0f}% lost rows {lost}",
                    flush=True,
                )
                time.sleep(0.5)
        # Routing's own cost: the same upstream through a two-candidate `cost` route vs pinned.
        result["routing"] = {}
        for c in args.route_conc:
            pinned, routed = [], []
            for _ in range(args.repeats):
                pinned.append(wrk(proxy, _body("bench-instant"), c, args.direct_duration))
                routed.append(wrk(proxy, _body("bench-auto"), c, args.direct_duration))
            added = _median(
                [(r["p50_us"] - p["p50_us"]) / 1000 for p, r in zip(pinned, routed, strict=True)]
            )
            result["routing"][c] = {
                "pinned_p50_ms": _median([p["p50_us"] / 1000 for p in pinned]),
                "route_p50_ms": _median([r["p50_us"] / 1000 for r in routed]),
                "added_p50_ms": added,
                "pinned_rps": _median([p["rps"] for p in pinned]),
                "route_rps": _median([r["rps"] for r in routed]),
            }
            print(
                f"  route c={c:<3} pinned p50 {result['routing'][c]['pinned_p50_ms']:.3f} ms"
                f" | route p50 {result['routing'][c]['route_p50_ms']:.3f} ms"
                f" (added {added:.3f})",
                flush=True,
            )
        for c, runs in raw.items():
            result["nonstream"][c] = {
                "direct_rps": _median([r["direct"]["rps"] for r in runs]),
                "gateway_rps": _median([r["proxy"]["rps"] for r in runs]),
                "direct_p50_ms": _median([r["direct"]["p50_us"] / 1000 for r in runs]),
                "gateway_p50_ms": _median([r["proxy"]["p50_us"] / 1000 for r in runs]),
                "added_p50_ms": _median(
                    [(r["proxy"]["p50_us"] - r["direct"]["p50_us"]) / 1000 for r in runs]
                ),
                "added_p99_ms": _median(
                    [(r["proxy"]["p99_us"] - r["direct"]["p99_us"]) / 1000 for r in runs]
                ),
                "errors": sum(r["proxy"]["errors"] + r["proxy"]["non2xx"] for r in runs),
                "gateway_cpu_pct": _median([r["gateway_cpu"] * 100 for r in runs]),
                "lost_rows": max(r["lost_rows"] for r in runs),
                "runs": runs,
            }
        for c in args.stream_conc:
            body = dict(stream=True, stream_options={"include_usage": True})
            ds, ps = [], []
            for _ in range(args.stream_repeats):
                ds.append(
                    asyncio.run(
                        stream_loop(
                            f"{direct_url}/realistic-small/v1/chat/completions",
                            _body("gpt-4o-mini", **body),
                            c,
                            args.stream_duration,
                        )
                    ).summary()
                )
                ps.append(
                    asyncio.run(
                        stream_loop(proxy, _body("bench-delayed", **body), c, args.stream_duration)
                    ).summary()
                )
            added = _median(
                [p["ttft_p50_ms"] - d["ttft_p50_ms"] for d, p in zip(ds, ps, strict=True)]
            )
            result["stream"][c] = {
                "direct_ttft_p50_ms": _median([d["ttft_p50_ms"] for d in ds]),
                "gateway_ttft_p50_ms": _median([p["ttft_p50_ms"] for p in ps]),
                "added_ttft_p50_ms": added,
                "gateway_ttft_p99_ms": _median([p["ttft_p99_ms"] for p in ps]),
                "errors": sum(p["errors"] for p in ps),
                "usage_fraction": min(p["usage_fraction"] for p in ps),
                "runs": {"direct": ds, "gateway": ps},
            }
            print(
                f"  stream c={c:<3} direct ttft p50 {result['stream'][c]['direct_ttft_p50_ms']:.2f}"
                f" | gateway {result['stream'][c]['gateway_ttft_p50_ms']:.2f} ms "
                f"(added {added:.2f}) usage {result['stream'][c]['usage_fraction']:.2f}",
                flush=True,
            )
        result["peak_rss_mib"], result["peak_rss_worker_mib"] = peak_rss_mib(gw.p.pid)
    finally:
        gw.stop()
        stats = _get_json(f"{sim_url}/sim/stats")
        sim.stop()
        sim_direct.stop()
    received = sum(_requests_by_upstream(stats).values())
    rows = count_rows(db_url)
    result["ledger"] = {"rows": rows, "upstream_requests": received, "lost": received - rows}
    result["meta"] = {
        "command": shlex.join(["python", "-m", "benchmarks.overhead", *sys.argv[1:]]),
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} cpu, {platform.machine()}",
        "database": "postgresql" if args.database_url else "sqlite",
        "workers": args.workers,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    shutil.rmtree(work, ignore_errors=True)
    return result


def _requests_by_upstream(stats: dict[str, Any]) -> dict[str, int]:
    """Chat requests the simulator received, per upstream (its /sim/stats layout)."""
    out: dict[str, int] = {}
    for name, up in stats.get("upstreams", {}).items():
        out[name or "(root)"] = int(up.get("requests", {}).get("chat", 0))
    return out


def report(r: dict[str, Any]) -> str:
    lines = [
        "| conc | direct RPS | gateway RPS | direct p50 ms | gateway p50 ms | added p50 ms "
        "| added p99 ms | errors | gateway CPU % | rows lost |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c, x in r["nonstream"].items():
        lines.append(
            f"| {c} | {x['direct_rps']:.0f} | {x['gateway_rps']:.0f} | "
            f"{x['direct_p50_ms']:.3f} | {x['gateway_p50_ms']:.3f} | "
            f"{x['added_p50_ms']:.3f} | {x['added_p99_ms']:.3f} | {x['errors']} | "
            f"{x['gateway_cpu_pct']:.0f} | {x['lost_rows']} |"
        )
    lines += [
        "",
        "| stream conc | direct TTFT p50 ms | gateway TTFT p50 ms | added TTFT p50 ms "
        "| gateway TTFT p99 ms | errors | usage chunk |",
        "|---|---|---|---|---|---|---|",
    ]
    for c, x in r["stream"].items():
        lines.append(
            f"| {c} | {x['direct_ttft_p50_ms']:.2f} | {x['gateway_ttft_p50_ms']:.2f} | "
            f"{x['added_ttft_p50_ms']:.2f} | {x['gateway_ttft_p99_ms']:.2f} | "
            f"{x['errors']} | {x['usage_fraction']:.2f} |"
        )
    if r.get("routing"):
        lines += [
            "",
            "| route conc | pinned p50 ms | route p50 ms | routing added p50 ms "
            "| pinned RPS | route RPS |",
            "|---|---|---|---|---|---|",
        ]
        for c, x in r["routing"].items():
            lines.append(
                f"| {c} | {x['pinned_p50_ms']:.3f} | {x['route_p50_ms']:.3f} | "
                f"{x['added_p50_ms']:.3f} | {x['pinned_rps']:.0f} | "
                f"{x['route_rps']:.0f} |"
            )
    led = r["ledger"]
    lines += [
        "",
        f"ledger: {led['rows']} rows for {led['upstream_requests']} upstream requests "
        f"(lost: {led['lost']}); peak RSS {r.get('peak_rss_mib', 0):.0f} MiB "
        f"(largest worker {r.get('peak_rss_worker_mib', 0):.0f} MiB); "
        f"cold start {r['cold_start_s']:.2f} s; {r['meta']['database']}, "
        f"{r['meta']['workers']} worker(s)",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.overhead", description=__doc__.split("\n\n")[0]
    )

    def ints(s: str) -> list[int]:
        return [int(x) for x in s.split(",") if x]

    ap.add_argument("--conc", type=ints, default=[1, 10, 50])
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--direct-duration", type=float, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--stream-conc", type=ints, default=[1, 10, 50])
    ap.add_argument(
        "--route-conc",
        type=ints,
        default=[1, 10],
        help="concurrencies at which a route is compared with a pinned model",
    )
    ap.add_argument("--stream-duration", type=float, default=4)
    ap.add_argument("--stream-repeats", type=int, default=3)
    ap.add_argument("--database-url", default=None, help="ledger database (default: a temp SQLite)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench-results/overhead.json"))
    args = ap.parse_args()
    r = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2, default=str))
    print(report(r))
    print(f"\nwrote {args.out}")
    if r["ledger"]["lost"] != 0:
        sys.exit("ledger rows lost!")

"""What the policy benchmark measures besides the day: the simulated H100's capacity under the
mix (`calibrate`, which sets the config's `max_in_flight`, `max_concurrency` and
`throughput_tokens_per_s`) and the routing overhead (`decide`: a Router.decide microbenchmark).

Both are commands of `python -m benchmarks.policy_day`; see the package docstring.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common.procs import Proc, free_port
from benchmarks.common.result import RequestResult
from benchmarks.common.stats import percentile_or_none
from benchmarks.policy_day.client import capacity_loop
from benchmarks.policy_day.policies import (
    GATED_ROUTE,
    LOCAL_FIRST_ROUTE,
    day_config,
    run_meta,
    slo_ms,
)
from benchmarks.policy_day.sim import scaled_profiles
from benchmarks.policy_day.traffic import WORKLOADS, Arrival, body, mean_output_tokens


def window_point(
    results: Sequence[RequestResult], concurrency: int, t0: float, seconds: float, output_scale: int
) -> dict[str, Any]:
    """A closed loop's throughput and TTFT in the window [t0, t0 + seconds) — pure.

    Output: the content chunks streamed inside the window (one replayed token each, × scale).
    Prompts: counted when their first token came (prefill done) inside the window. Requests:
    those that finished inside it. TTFT: of the requests whose first token came inside it.
    """
    t1 = t0 + seconds
    tokens = sum(t0 <= t < t1 for r in results for t in r.content_times or ())
    started = [r for r in results if r.success and t0 <= r.start_time + r.ttft < t1]
    done = [r for r in results if r.success and t0 <= r.start_time + r.latency < t1]
    ttft = [r.ttft * 1000 for r in started]
    output_tok_s = tokens * output_scale / seconds
    return {
        "concurrency": concurrency,
        "requests": len(done),
        "req_s": len(done) / seconds,
        "output_tok_s": output_tok_s,
        "total_tok_s": output_tok_s + sum(r.prompt_len for r in started) / seconds,
        "ttft_p50_ms": percentile_or_none(ttft, 50),
        "ttft_p95_ms": percentile_or_none(ttft, 95),
        "ttft_p99_ms": percentile_or_none(ttft, 99),
        "errors": sum(1 for r in results if not r.success),
    }


def calibrate(args: argparse.Namespace) -> None:
    """Closed loops straight to the simulated vLLM at rising concurrency: real output tok/s,
    prompt + output tok/s, req/s and TTFT, in a window after a warm-up."""
    profile = scaled_profiles(args.output_scale)["llama-3.1-8b-h100"]
    slo = slo_ms(day_config(args.config))
    names, weights = list(args.mix), list(args.mix.values())
    work = Path(tempfile.mkdtemp(prefix="gw-policy-cal-"))
    port = free_port()
    sim = Proc(
        [
            sys.executable,
            "-m",
            "benchmarks.policy_day.sim",
            "--port",
            str(port),
            "--output-scale",
            str(args.output_scale),
        ],
        f"http://127.0.0.1:{port}/health",
        work / "sim.log",
    )
    url = f"http://127.0.0.1:{port}/llama-3.1-8b-h100/v1/chat/completions"

    def make(i: int) -> Arrival:
        return Arrival(i, 0.0, 0, random.Random(i).choices(names, weights)[0])

    points = []
    try:
        for c in args.conc:
            results, _ = asyncio.run(
                capacity_loop(
                    url,
                    make,
                    lambda a: body(a, profile.served_model, args.output_scale),
                    c,
                    args.warmup_s + args.seconds,
                    seed=c,
                )
            )
            t0 = min(r.start_time for r in results) + args.warmup_s
            point = window_point(results, c, t0, args.seconds, args.output_scale)
            points.append(point)
            print(
                f"  c={c:3d}: {point['req_s']:5.2f} req/s, {point['output_tok_s']:6.0f} output "
                f"tok/s, {point['total_tok_s']:7.0f} prompt+output tok/s, TTFT p50/p95/p99 "
                f"{point['ttft_p50_ms']:.0f}/{point['ttft_p95_ms']:.0f}/"
                f"{point['ttft_p99_ms']:.0f} ms, {point['errors']} errors",
                flush=True,
            )
    finally:
        sim.stop()
        shutil.rmtree(work, ignore_errors=True)
    best = max(p["output_tok_s"] for p in points)
    chosen = next(
        p for p in points if p["output_tok_s"] >= 0.95 * best and (p["ttft_p95_ms"] or 0) <= slo
    )
    per_request = mean_output_tokens(args.mix)
    analytic = profile.decode_ceiling_tok_s * args.output_scale / per_request
    capacity = chosen["output_tok_s"] / per_request  # steadier than completions in a window
    result = {
        "meta": run_meta(),
        "points": points,
        "chosen": chosen,
        "capacity_rps": capacity,
        "analytic_capacity_rps": analytic,
        "mix": args.mix,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibrate.json").write_text(json.dumps(result, indent=2))
    print(
        f"capacity: max_in_flight / max_concurrency {chosen['concurrency']} (the first point "
        f"within 5% of the best {best:.0f} output tok/s and TTFT p95 ≤ {slo:.0f} ms): "
        f"{capacity:.2f} req/s (output tok/s / {per_request:.0f} output tokens a request; "
        f"analytic: the decode ceiling / the same, {analytic:.2f}), throughput_tokens_per_s "
        f"{chosen['total_tok_s']:.0f}; wrote {args.out / 'calibrate.json'}"
    )


# --- routing overhead: Router.decide ---------------------------------------------------------


def decide(args: argparse.Namespace) -> None:
    """Time Router.decide on the 4-candidate local-first route, with live capacity (a monitor
    fed a vLLM /metrics page), against a pinned model; fresh request bodies every call."""
    import orjson

    from gateway.core import ClientRequest
    from gateway.pricing.table import build_price_table
    from gateway.quality.evidence import Evidence
    from gateway.routing.capacity import CapacityMonitor
    from gateway.routing.router import Router
    from gateway.simulator.profiles import PROFILES
    from gateway.simulator.upstream import Upstream

    config = day_config(args.config)
    pool = next(p for p in config.providers if p.self_hosted)
    monitor = CapacityMonitor(config.providers)
    monitor.ingest(
        pool.name,
        pool.api_base,
        Upstream("bench", PROFILES["llama-3.1-8b-h100"]).metrics_text().decode(),
    )
    for _ in range(4):
        monitor.acquire(pool.name, pool.api_base)
    # the gated route's evidence: every cheap model proven on every task (each candidate's
    # verdict is then a lookup and a comparison, as on a day past its exploration)
    evidence = Evidence()
    for task in WORKLOADS:
        for model in ("llama-3.1-8b", "gpt-4o-mini", "gemini-flash"):
            for _ in range(300):
                evidence.add(task, model, "claude-haiku", 1.0, True)
    router = Router(
        config,
        build_price_table(config),
        capacity=monitor.snapshot,
        evidence=evidence,
        boost=lambda task, rate, challenger: None,
    )

    def timed(model: str, dirty: bool) -> list[float]:
        raws = [
            orjson.dumps(body(Arrival(i, 0.0, 0, w), model, args.output_scale))
            for i, w in enumerate(list(WORKLOADS) * (args.n // len(WORKLOADS)))
        ]
        times = []
        for raw in raws:
            req = ClientRequest("chat", orjson.loads(raw), model, stream=True, include_usage=True)
            if dirty:  # a request came back since: the snapshot is rebuilt in decide
                monitor.acquire(pool.name, pool.api_base)
                monitor.release(pool.name, pool.api_base)
            t = time.perf_counter_ns()
            router.decide(req)
            times.append((time.perf_counter_ns() - t) / 1000)
        return times[len(times) // 10 :]  # the first tenth warms up

    out = {}
    for label, model, dirty in (
        ("pinned", "llama-3.1-8b", False),
        ("local-first", LOCAL_FIRST_ROUTE, False),
        ("local-first, snapshot rebuilt", LOCAL_FIRST_ROUTE, True),
        ("local-first + quality gate", GATED_ROUTE, False),
    ):
        t = timed(model, dirty)
        out[label] = {
            "p50_us": percentile_or_none(t, 50),
            "p99_us": percentile_or_none(t, 99),
            "n": len(t),
        }
    p50 = {label: t["p50_us"] or 0.0 for label, t in out.items()}
    added = p50["local-first, snapshot rebuilt"] - p50["pinned"]
    line = (
        f"p50 {out['local-first']['p50_us']:.1f} µs (p99 {out['local-first']['p99_us']:.1f}); "
        f"{out['local-first, snapshot rebuilt']['p50_us']:.1f} µs with the capacity "
        f"snapshot rebuilt; pinned {out['pinned']['p50_us']:.1f} µs → added p50 "
        f"{added / 1000:.3f} ms (target ≤ 0.5 ms: {'PASS' if added <= 500 else 'FAIL'}); "
        f"with the quality gate (3 cheap candidates + the reference) "
        f"{out['local-first + quality gate']['p50_us']:.1f} µs "
        f"(p99 {out['local-first + quality gate']['p99_us']:.1f})"
    )
    result = {"meta": run_meta(), "timings": out, "added_p50_us": added, "line": line}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "decide.json").write_text(json.dumps(result, indent=2))
    print(f"Router.decide: {line}")

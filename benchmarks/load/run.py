"""Orchestration of `gateway bench run`: workload → test request → points → files and database.

    gateway bench run --base-url http://127.0.0.1:8001/llama-3.1-8b-h100/v1 --workload chat \\
        --sweep concurrency=1,2,4,8,16,32,64 --duration 20 --slo-ttft-ms 500 --slo-tpot-ms 50 \\
        --gpu-hourly-usd 2.49

For every point (a concurrency, or a request rate) the load runs for the warm-up plus the
measured window (or request count), against `--base-url` and, when `--direct-url` is given,
first against that one too, so the gateway's added latency is the difference at the same load.
One initial request must succeed before anything is measured (vLLM's rule). The run is written
to `--out/<run id>/` as JSON, CSV, Markdown and PNG, and into the ledger database's
`bench_runs`; `gateway bench calibrate RUN_ID --provider NAME` turns it into capacity figures.
"""

from __future__ import annotations

import asyncio
import math
import platform
import secrets
import sys
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import aiohttp

from benchmarks.common.request import send
from benchmarks.common.result import RequestInput
from benchmarks.load.analysis import best_point, compare_apis, point_costs
from benchmarks.load.economics import TokenMix
from benchmarks.load.loadgen import LoadShape, PointRun, run_fast, run_point
from benchmarks.load.metrics import BenchmarkSummary, summarize
from benchmarks.load.options import (
    DEFAULT_APIS,
    BenchConfig,
    BenchError,
    config_from_options,
    default_db_url,
    resolve_apis,
)
from benchmarks.load.progress import Progress
from benchmarks.load.server_metrics import ServerWatch
from benchmarks.load.targets import build_inputs, discover_model, openai_base, server_version
from benchmarks.load.tokenizer import load_tokenizer
from benchmarks.load.workloads import Workload, build_workload

__all__ = [
    "DEFAULT_APIS",
    "BenchConfig",
    "BenchError",
    "default_db_url",
    "execute",
    "run_bench",
    "run_from_options",
]


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in ("llm-cost-gateway", "aiohttp", "tiktoken", "matplotlib", "rich", "uvloop"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _shape_dict(shape: LoadShape) -> dict[str, Any]:
    return {
        "concurrency": shape.concurrency,
        "rate": None if math.isinf(shape.rate) else shape.rate,
        "burstiness": shape.burstiness,
    }


def _point_record(
    shape: LoadShape, run: PointRun, summary: BenchmarkSummary, cfg: BenchConfig
) -> dict[str, Any]:
    client = run.client
    return {
        "label": shape.label,
        "shape": _shape_dict(shape),
        "summary": summary.as_dict(),
        "warmup_requests": run.warmup,
        "cancelled_at_end": run.cancelled,
        "client": {
            "cpu_s": client.cpu_s,
            "wall_s": client.wall_s,
            "cpu_fraction": client.cpu_fraction,
            "loop_lag_p99_ms": client.loop_lag_p99_ms,
            "loop_lag_max_ms": client.loop_lag_max_ms,
            "chunks_per_s": (
                sum(r.chunks for r in run.results) / run.duration_s if run.duration_s > 0 else 0.0
            ),
            "saturated": client.saturated,
        },
        **point_costs(cfg.gpu, summary),
    }


def _overhead(target: dict[str, Any], direct: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for metric in ("ttft", "e2el"):
        a, b = target["summary"][metric], direct["summary"][metric]
        for key, label in (("median", "median"), ("p99", "p99")):
            if a is None or b is None:
                out[f"{metric}_{label}_ms"] = None
                continue
            va = a["median"] if key == "median" else a["percentiles"]["p99"]
            vb = b["median"] if key == "median" else b["percentiles"]["p99"]
            out[f"{metric}_{label}_ms"] = va - vb
    return out


async def _measure(
    session: aiohttp.ClientSession,
    base: str,
    inputs: list[RequestInput],
    shape: LoadShape,
    cfg: BenchConfig,
    progress: Progress,
    label: str,
) -> tuple[PointRun, BenchmarkSummary, dict[str, float] | None]:
    w = cfg.window
    expected_s = (w.warmup_s + w.duration_s) if w.duration_s is not None else None
    expected_n = (w.num_requests or 0) + w.warmup_requests if w.num_requests else None
    progress.start_point(label, expected_s, expected_n)
    watch = ServerWatch(session, base)
    await watch.start()

    async def ticker() -> None:
        while True:
            progress.tick()
            await asyncio.sleep(0.5)

    ticking = asyncio.ensure_future(ticker())
    try:
        run = await run_point(
            session, inputs, shape, w, seed=cfg.seed, on_result=progress.on_result
        )
    finally:
        ticking.cancel()
        server = await watch.stop()
    s = summarize(run.results, run.duration_s, cfg.slo)
    progress.end_point(
        f"{label}: {s.completed} ok, {s.failed} failed, "
        f"{s.request_throughput:.1f} req/s, {s.output_throughput:.0f} tok/s out"
    )
    return run, s, server


async def execute(cfg: BenchConfig, progress: Progress) -> dict[str, Any]:
    """Run every point; returns the run record (also what the JSON file holds)."""
    created = datetime.now(UTC)
    tok = load_tokenizer(cfg.tokenizer)
    try:
        workload = build_workload(cfg.workload, tok)
    except (ValueError, OSError) as e:
        raise BenchError(str(e)) from None
    base = openai_base(cfg.base_url)
    headers = {"content-type": "application/json"}
    if cfg.api_key:
        headers["authorization"] = f"Bearer {cfg.api_key}"
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=cfg.timeout_s)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:
        model = cfg.model or await discover_model(session, base)
        inputs = build_inputs(workload, base, cfg.endpoint, model, cfg.stream, cfg.ignore_eos)
        direct_inputs: list[RequestInput] | None = None
        dbase = ""
        if cfg.direct_url:
            dbase = openai_base(cfg.direct_url)
            dmodel = cfg.direct_model or await discover_model(session, dbase)
            direct_inputs = build_inputs(
                workload, dbase, cfg.endpoint, dmodel, cfg.stream, cfg.ignore_eos
            )
        for name, inp in (("target", inputs[0]),) + (
            (("direct", direct_inputs[0]),) if direct_inputs else ()
        ):
            test = await send(session, inp)
            if not test.success:
                raise BenchError(
                    f"the initial test request to the {name} failed, so nothing "
                    f"was measured ({inp.url}): {test.error}"
                )
        server = await server_version(session, base)
        points: list[dict[str, Any]] = []
        for shape in cfg.shapes:
            record_direct = None
            if direct_inputs is not None:
                drun, dsummary, dserver = await _measure(
                    session, dbase, direct_inputs, shape, cfg, progress, f"{shape.label} (direct)"
                )
                record_direct = _point_record(shape, drun, dsummary, cfg)
                record_direct["server"] = dserver
            run, summary, seen = await _measure(
                session, base, inputs, shape, cfg, progress, shape.label
            )
            record = _point_record(shape, run, summary, cfg)
            record["server"] = seen
            if record_direct is not None:
                record["direct"] = record_direct
                record["gateway_overhead_ms"] = _overhead(record, record_direct)
            points.append(record)
    return assemble(cfg, created, workload, model, server, points)


def assemble(
    cfg: BenchConfig,
    created: datetime,
    workload: Workload,
    model: str,
    server: str | None,
    points: list[dict[str, Any]],
) -> dict[str, Any]:
    from benchmarks.load.analysis import within_slo

    for p in points:
        p["within_slo"] = within_slo(p["summary"], cfg.attainment)
    best = best_point(points, cfg.attainment)
    ref = points[best] if best is not None else (points[-1] if points else None)
    mix_src = ref["summary"] if ref else None
    mix = TokenMix.of(
        mix_src["mean_input_tokens"] if mix_src else workload.mean_prompt_tokens,
        mix_src["mean_output_tokens"] if mix_src else workload.mean_output_tokens,
        workload.shared_prefix_fraction,
    )
    apis = compare_apis(
        resolve_apis(cfg.apis), mix, cfg.gpu, points[best] if best is not None else None
    )
    warnings = [
        f"{p['label']}: the load generator was saturated (CPU "
        f"{p['client']['cpu_fraction']:.0%} of a core, loop lag p99 "
        f"{p['client']['loop_lag_p99_ms']:.0f} ms) — its figures understate the server"
        for p in points
        if p["client"]["saturated"]
    ]
    short = [
        p["label"]
        for p in points
        if cfg.window.duration_s
        and p["summary"]["e2el"]
        and cfg.window.duration_s < 3 * p["summary"]["e2el"]["median"] / 1000
    ]
    if short:
        warnings.append(
            f"{', '.join(short)}: the window is shorter than 3× the median E2E "
            "latency, so few requests finish inside it and the throughput is noisy; "
            "use a longer --duration"
        )
    if not workload.tokenizer_exact:
        warnings.append(
            "no tokenizer could be loaded: prompts were sized at 4 characters a "
            "token (token counts in the results still come from the server)"
        )
    if best is None and points:
        warnings.append("no point met the SLO: nothing to calibrate from this run")
    return {
        "run_id": new_run_id(created),
        "created_at": created.isoformat(),
        "label": cfg.label,
        "command": cfg.command,
        "target_url": openai_base(cfg.base_url),
        "direct_url": openai_base(cfg.direct_url) if cfg.direct_url else None,
        "model": model,
        "server_version": server,
        "endpoint": cfg.endpoint,
        "stream": cfg.stream,
        "ignore_eos": cfg.ignore_eos,
        "workload": {
            "name": workload.name,
            "description": workload.description,
            "tokenizer": workload.tokenizer,
            "tokenizer_exact": workload.tokenizer_exact,
            "num_prompts": len(workload.samples),
            "target_mean_prompt_tokens": workload.mean_prompt_tokens,
            "target_mean_output_tokens": workload.mean_output_tokens,
            "shared_prefix_fraction": workload.shared_prefix_fraction,
            "settings": workload.settings,
        },
        "settings": {
            "sweep": cfg.sweep,
            "window": {
                "duration_s": cfg.window.duration_s,
                "num_requests": cfg.window.num_requests,
                "warmup_s": cfg.window.warmup_s,
                "warmup_requests": cfg.window.warmup_requests,
            },
            "slo": cfg.slo.as_dict(),
            "slo_attainment": cfg.attainment,
            "gpu": (
                {
                    "name": cfg.gpu.name,
                    "count": cfg.gpu.count,
                    "hourly_usd": float(cfg.gpu.hourly_usd),
                }
                if cfg.gpu
                else None
            ),
            "apis": list(cfg.apis),
            "timeout_s": cfg.timeout_s,
            "seed": cfg.seed,
        },
        "versions": versions(),
        "points": points,
        "best_point": best,
        "token_mix": {
            "input": float(mix.input),
            "output": float(mix.output),
            "cached_input": float(mix.cached_input),
        },
        "apis": apis,
        "warnings": warnings,
    }


def run_bench(cfg: BenchConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Blocking entry point: runs on uvloop when it is installed."""
    progress = progress or Progress()
    try:
        return run_fast(execute(cfg, progress))
    finally:
        progress.close()


def run_from_options(o: dict[str, Any], command: str) -> dict[str, Any]:
    """Run, then print the tables and write the files and the database row."""
    from rich.console import Console

    from benchmarks.load.report import LiveProgress, print_tables, write_files

    cfg = config_from_options(o, command)
    resolve_apis(cfg.apis)  # a bad --api fails now, not after the measurements
    console = Console(stderr=True)
    record = run_bench(cfg, None if o["quiet"] else LiveProgress(console))
    out_dir = cfg.out_dir / record["run_id"]
    paths = write_files(record, out_dir)
    out = Console()
    print_tables(record, out if out.is_terminal else Console(width=200))
    if cfg.db_url:
        from benchmarks.load.store import save_run
        from gateway.ledger.db import redact_url

        save_run(cfg.db_url, record)
        console.print(f"saved as run {record['run_id']} in {redact_url(cfg.db_url)}")
    console.print("files: " + ", ".join(str(p) for p in paths))
    return record

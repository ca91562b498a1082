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
import os
import platform
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.analysis import DEFAULT_ATTAINMENT, best_point, compare_apis, point_costs
from benchmarks.economics import Gpu, TokenMix
from benchmarks.loadgen import (
    REQUEST_FUNCS,
    LoadShape,
    PointRun,
    RequestInput,
    RequestResult,
    Window,
    run_fast,
    run_point,
)
from benchmarks.metrics import BenchmarkSummary, Slo, summarize
from benchmarks.server_metrics import ServerWatch
from benchmarks.tokenizer import load_tokenizer
from benchmarks.workloads import Sample, Workload, WorkloadSpec, build_workload
from gateway.pricing.cost import Price

# Hosted APIs to compare with, by default: the three the project's users weigh. Haiku 3.5 and
# Gemini 1.5 Flash are no longer in litellm's table, so their published rates are given here
# (USD per 1M: input/output/cache read/cache write; shared/reference/ECONOMICS.md §5.1).
DEFAULT_APIS = (
    "claude-3.5-haiku=0.80/4.00/0.08/1.00",
    "gpt-4o-mini",
    "gemini-1.5-flash=0.075/0.30/0.01875",
)


class BenchError(Exception):
    """A benchmark that cannot run as asked (bad option, unreachable target, failed test)."""


@dataclass(frozen=True)
class BenchConfig:
    base_url: str
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    shapes: tuple[LoadShape, ...] = (LoadShape(concurrency=1),)
    sweep: str | None = None  # "concurrency" | "rate" | None
    window: Window = field(default_factory=Window)
    model: str | None = None
    direct_url: str | None = None
    direct_model: str | None = None
    endpoint: str = "chat"
    stream: bool = True
    ignore_eos: bool = True
    tokenizer: str = "auto"
    slo: Slo = field(default_factory=Slo)
    attainment: float = DEFAULT_ATTAINMENT
    gpu: Gpu | None = None
    apis: tuple[str, ...] = DEFAULT_APIS
    out_dir: Path = Path("bench-results")
    db_url: str | None = None
    timeout_s: float = 600.0
    seed: int = 0
    label: str | None = None
    command: str = ""
    api_key: str | None = None  # sent as a bearer token; never written anywhere


def parse_sweep(spec: str) -> tuple[str, tuple[float, ...]]:
    """`concurrency=1,2,4` or `rate=1,2,inf` → ("concurrency", (1, 2, 4))."""
    var, _, values = spec.partition("=")
    var = {"c": "concurrency", "concurrency": "concurrency", "rate": "rate",
           "request-rate": "rate", "qps": "rate"}.get(var.strip().lower(), "")
    if not var or not values:
        raise BenchError(f"--sweep {spec!r}: use concurrency=1,2,4 or rate=1,2,4")
    try:
        nums = tuple(float(v) for v in values.split(",") if v.strip())
    except ValueError:
        raise BenchError(f"--sweep {spec!r}: the values must be numbers (or inf)") from None
    if not nums or any(n <= 0 for n in nums):
        raise BenchError(f"--sweep {spec!r}: the values must be positive")
    return var, nums


def make_shapes(
    sweep: str | None, concurrency: int | None, rate: float, burstiness: float
) -> tuple[str | None, tuple[LoadShape, ...]]:
    """The points: one shape, or one per sweep value (the other knob stays as given)."""
    try:
        if sweep is None:
            return None, (LoadShape(concurrency or (None if math.isfinite(rate) else 1), rate,
                                    burstiness),)
        var, values = parse_sweep(sweep)
        if var == "concurrency":
            return var, tuple(LoadShape(int(v), rate, burstiness) for v in values)
        return var, tuple(LoadShape(concurrency, v, burstiness) for v in values)
    except ValueError as e:
        raise BenchError(str(e)) from None


def parse_api(spec: str, table: dict[str, Any] | None = None) -> tuple[str, Price]:
    """`name=in/out[/cache_read[/cache_write]]` (USD per 1M) or a litellm price-table key."""
    from gateway.pricing.table import load_litellm_entries, price_from_entry

    name, eq, rates = spec.partition("=")
    if eq:
        try:
            parts = [float(x) for x in rates.split("/")]
        except ValueError:
            raise BenchError(f"--api {spec!r}: rates must be numbers: in/out[/read[/write]]"
                             ) from None
        if len(parts) < 2 or len(parts) > 4 or any(x < 0 for x in parts):
            raise BenchError(f"--api {spec!r}: give in/out[/cache_read[/cache_write]] per 1M")
        read = parts[2] if len(parts) > 2 else None
        write = parts[3] if len(parts) > 3 else None
        return name.strip(), Price.per_mtok(parts[0], parts[1], read, write, source="option")
    entries = table if table is not None else load_litellm_entries([spec])
    price = price_from_entry(entries[spec]) if spec in entries else None
    if price is None:
        raise BenchError(f"--api {spec!r}: not in litellm's price table; give its rates as "
                         f"{spec}=IN/OUT[/CACHE_READ[/CACHE_WRITE]] (USD per 1M tokens)")
    return spec, price


def resolve_apis(specs: Sequence[str]) -> dict[str, Price]:
    from gateway.pricing.table import load_litellm_entries

    keys = [s for s in specs if "=" not in s]
    table = load_litellm_entries(keys) if keys else {}
    return dict(parse_api(s, table) for s in specs)


def openai_base(url: str) -> str:
    """The OpenAI base URL (…/v1): `http://host:8000` and `http://host:8000/v1` both work."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


ENDPOINT_PATHS = {"chat": "/chat/completions", "completions": "/completions"}


def request_body(sample: Sample, endpoint: str, model: str, stream: bool,
                 ignore_eos: bool) -> dict[str, Any]:
    """vLLM's openai-chat / openai-completions payloads (endpoint_request_func.py)."""
    if endpoint == "chat":
        body: dict[str, Any] = {"model": model, "messages": sample.chat_messages(),
                                "max_completion_tokens": sample.output_tokens}
    else:
        body = {"model": model, "prompt": sample.prompt, "max_tokens": sample.output_tokens}
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}
    if ignore_eos:
        body["ignore_eos"] = True  # vLLM's sampling extension: exactly max_tokens come out
    return body


def build_inputs(workload: Workload, base: str, endpoint: str, model: str, stream: bool,
                 ignore_eos: bool) -> list[RequestInput]:
    if endpoint not in ENDPOINT_PATHS:
        raise BenchError(f"unknown endpoint {endpoint!r}; use {' or '.join(ENDPOINT_PATHS)}")
    url = base + ENDPOINT_PATHS[endpoint]
    return [RequestInput(url, orjson.dumps(request_body(s, endpoint, model, stream, ignore_eos)),
                         s.prompt_tokens, s.output_tokens, stream) for s in workload.samples]


async def discover_model(session: aiohttp.ClientSession, base: str) -> str:
    """The first model the server lists (vLLM bench's default)."""
    try:
        async with session.get(base + "/models") as r:
            data = await r.json(content_type=None) if r.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        raise BenchError(f"cannot list models at {base}/models: {type(e).__name__}: {e}") from None
    if not isinstance(data, dict) or not data.get("data"):
        raise BenchError(f"{base}/models lists no model; pass --model")
    return str(data["data"][0]["id"])


async def server_version(session: aiohttp.ClientSession, base: str) -> str | None:
    """vLLM serves GET /version at its root; other servers may not."""
    try:
        async with session.get(base.removesuffix("/v1") + "/version") as r:
            if r.status == 200:
                data = await r.json(content_type=None)
                return str(data.get("version")) if isinstance(data, dict) else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return None


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0],
                                  "platform": platform.platform()}
    for dist in ("llm-cost-gateway", "aiohttp", "tiktoken", "matplotlib", "rich", "uvloop"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class Progress:
    """What the live display needs; `benchmarks.report.LiveProgress` implements it with rich."""

    def start_point(self, label: str, expected_s: float | None, expected_n: int | None) -> None:
        pass

    def on_result(self, result: RequestResult, measured: bool) -> None:
        pass

    def tick(self) -> None:
        """Called twice a second while a point runs (redraw here, not per result)."""

    def end_point(self, line: str) -> None:
        pass

    def close(self) -> None:
        pass


def _shape_dict(shape: LoadShape) -> dict[str, Any]:
    return {"concurrency": shape.concurrency,
            "rate": None if math.isinf(shape.rate) else shape.rate,
            "burstiness": shape.burstiness}


def _point_record(shape: LoadShape, run: PointRun, summary: BenchmarkSummary,
                  cfg: BenchConfig) -> dict[str, Any]:
    client = run.client
    return {
        "label": shape.label,
        "shape": _shape_dict(shape),
        "summary": summary.as_dict(),
        "warmup_requests": run.warmup,
        "cancelled_at_end": run.cancelled,
        "client": {"cpu_s": client.cpu_s, "wall_s": client.wall_s,
                   "cpu_fraction": client.cpu_fraction,
                   "loop_lag_p99_ms": client.loop_lag_p99_ms,
                   "loop_lag_max_ms": client.loop_lag_max_ms,
                   "chunks_per_s": (sum(r.chunks for r in run.results) / run.duration_s
                                    if run.duration_s > 0 else 0.0),
                   "saturated": client.saturated},
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


async def _measure(session: aiohttp.ClientSession, base: str, inputs: list[RequestInput],
                   shape: LoadShape, cfg: BenchConfig, progress: Progress,
                   label: str) -> tuple[PointRun, BenchmarkSummary, dict[str, float] | None]:
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
        run = await run_point(session, inputs, shape, w, seed=cfg.seed,
                              on_result=progress.on_result)
    finally:
        ticking.cancel()
        server = await watch.stop()
    s = summarize(run.results, run.duration_s, cfg.slo)
    progress.end_point(f"{label}: {s.completed} ok, {s.failed} failed, "
                       f"{s.request_throughput:.1f} req/s, {s.output_throughput:.0f} tok/s out")
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
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     headers=headers) as session:
        model = cfg.model or await discover_model(session, base)
        inputs = build_inputs(workload, base, cfg.endpoint, model, cfg.stream, cfg.ignore_eos)
        direct_inputs: list[RequestInput] | None = None
        dbase = ""
        if cfg.direct_url:
            dbase = openai_base(cfg.direct_url)
            dmodel = cfg.direct_model or await discover_model(session, dbase)
            direct_inputs = build_inputs(workload, dbase, cfg.endpoint, dmodel, cfg.stream,
                                         cfg.ignore_eos)
        for name, inp in (("target", inputs[0]),) + (
                (("direct", direct_inputs[0]),) if direct_inputs else ()):
            test = await REQUEST_FUNCS[inp.stream](session, inp)
            if not test.success:
                raise BenchError(f"the initial test request to the {name} failed, so nothing "
                                 f"was measured ({inp.url}): {test.error}")
        server = await server_version(session, base)
        points: list[dict[str, Any]] = []
        for shape in cfg.shapes:
            record_direct = None
            if direct_inputs is not None:
                drun, dsummary, dserver = await _measure(
                    session, dbase, direct_inputs, shape, cfg, progress, f"{shape.label} (direct)")
                record_direct = _point_record(shape, drun, dsummary, cfg)
                record_direct["server"] = dserver
            run, summary, seen = await _measure(session, base, inputs, shape, cfg, progress,
                                                shape.label)
            record = _point_record(shape, run, summary, cfg)
            record["server"] = seen
            if record_direct is not None:
                record["direct"] = record_direct
                record["gateway_overhead_ms"] = _overhead(record, record_direct)
            points.append(record)
    return assemble(cfg, created, workload, model, server, points)


def assemble(cfg: BenchConfig, created: datetime, workload: Workload, model: str,
             server: str | None, points: list[dict[str, Any]]) -> dict[str, Any]:
    from benchmarks.analysis import within_slo

    for p in points:
        p["within_slo"] = within_slo(p["summary"], cfg.attainment)
    best = best_point(points, cfg.attainment)
    ref = points[best] if best is not None else (points[-1] if points else None)
    mix_src = ref["summary"] if ref else None
    mix = TokenMix.of(mix_src["mean_input_tokens"] if mix_src else workload.mean_prompt_tokens,
                      mix_src["mean_output_tokens"] if mix_src else workload.mean_output_tokens,
                      workload.shared_prefix_fraction)
    apis = compare_apis(resolve_apis(cfg.apis), mix, cfg.gpu,
                        points[best] if best is not None else None)
    warnings = [f"{p['label']}: the load generator was saturated (CPU "
                f"{p['client']['cpu_fraction']:.0%} of a core, loop lag p99 "
                f"{p['client']['loop_lag_p99_ms']:.0f} ms) — its figures understate the server"
                for p in points if p["client"]["saturated"]]
    short = [p["label"] for p in points
             if cfg.window.duration_s and p["summary"]["e2el"]
             and cfg.window.duration_s < 3 * p["summary"]["e2el"]["median"] / 1000]
    if short:
        warnings.append(f"{', '.join(short)}: the window is shorter than 3× the median E2E "
                        "latency, so few requests finish inside it and the throughput is noisy; "
                        "use a longer --duration")
    if not workload.tokenizer_exact:
        warnings.append("no tokenizer could be loaded: prompts were sized at 4 characters a "
                        "token (token counts in the results still come from the server)")
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
        "workload": {"name": workload.name, "description": workload.description,
                     "tokenizer": workload.tokenizer, "tokenizer_exact": workload.tokenizer_exact,
                     "num_prompts": len(workload.samples),
                     "target_mean_prompt_tokens": workload.mean_prompt_tokens,
                     "target_mean_output_tokens": workload.mean_output_tokens,
                     "shared_prefix_fraction": workload.shared_prefix_fraction,
                     "settings": workload.settings},
        "settings": {"sweep": cfg.sweep,
                     "window": {"duration_s": cfg.window.duration_s,
                                "num_requests": cfg.window.num_requests,
                                "warmup_s": cfg.window.warmup_s,
                                "warmup_requests": cfg.window.warmup_requests},
                     "slo": cfg.slo.as_dict(), "slo_attainment": cfg.attainment,
                     "gpu": ({"name": cfg.gpu.name, "count": cfg.gpu.count,
                              "hourly_usd": float(cfg.gpu.hourly_usd)} if cfg.gpu else None),
                     "apis": list(cfg.apis), "timeout_s": cfg.timeout_s, "seed": cfg.seed},
        "versions": versions(),
        "points": points,
        "best_point": best,
        "token_mix": {"input": float(mix.input), "output": float(mix.output),
                      "cached_input": float(mix.cached_input)},
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


def default_db_url() -> str:
    return os.environ.get("GATEWAY_DATABASE_URL", "sqlite+aiosqlite:///./gateway.db")


def config_from_options(o: dict[str, Any], command: str) -> BenchConfig:
    """`gateway bench run`'s options → BenchConfig (the CLI's whole translation)."""
    sweep, shapes = make_shapes(o["sweep"], o["concurrency"], o["request_rate"], o["burstiness"])
    try:
        window = Window(duration_s=None if o["num_requests"] else o["duration"],
                        num_requests=o["num_requests"], warmup_s=o["warmup"],
                        warmup_requests=o["warmup_requests"])
    except ValueError as e:
        raise BenchError(str(e)) from None
    gpu = (Gpu.of(o["gpu_hourly_usd"], o["gpu_count"], o["gpu_name"])
           if o["gpu_hourly_usd"] is not None else None)
    spec = WorkloadSpec(name=o["workload"], num_prompts=o["num_prompts"],
                        input_len=o["input_len"], output_len=o["output_len"],
                        range_ratio=o["range_ratio"], dist=o["dist"],
                        prefix_len=o["prefix_len"], dataset_path=o["dataset_path"],
                        seed=o["seed"])
    return BenchConfig(
        base_url=o["base_url"], workload=spec, shapes=shapes, sweep=sweep, window=window,
        model=o["model"], direct_url=o["direct_url"], direct_model=o["direct_model"],
        endpoint=o["endpoint"], stream=o["stream"], ignore_eos=o["ignore_eos"],
        tokenizer=o["tokenizer"],
        slo=Slo(o["slo_ttft_ms"], o["slo_tpot_ms"], o["slo_e2el_ms"]),
        attainment=o["slo_attainment"], gpu=gpu, apis=tuple(o["api"] or DEFAULT_APIS),
        out_dir=o["out"], db_url=(o["database_url"] or default_db_url()) if o["save"] else None,
        timeout_s=o["timeout"], seed=o["seed"], label=o["label"], command=command,
        api_key=o["api_key"],
    )


def run_from_options(o: dict[str, Any], command: str) -> dict[str, Any]:
    """Run, then print the tables and write the files and the database row."""
    from rich.console import Console

    from benchmarks.report import LiveProgress, print_tables, write_files

    cfg = config_from_options(o, command)
    resolve_apis(cfg.apis)  # a bad --api fails now, not after the measurements
    console = Console(stderr=True)
    record = run_bench(cfg, None if o["quiet"] else LiveProgress(console))
    out_dir = cfg.out_dir / record["run_id"]
    paths = write_files(record, out_dir)
    out = Console()
    print_tables(record, out if out.is_terminal else Console(width=200))
    if cfg.db_url:
        from benchmarks.store import save_run
        from gateway.ledger.db import redact_url

        save_run(cfg.db_url, record)
        console.print(f"saved as run {record['run_id']} in {redact_url(cfg.db_url)}")
    console.print("files: " + ", ".join(str(p) for p in paths))
    return record

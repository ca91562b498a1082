"""`gateway bench run`'s options: the run's configuration and how the CLI's values become it.

Pure apart from `resolve_apis`, which reads litellm's price table for the `--api` keys given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.load.analysis import DEFAULT_ATTAINMENT
from benchmarks.load.economics import Gpu
from benchmarks.load.loadgen import LoadShape, Window
from benchmarks.load.metrics import Slo
from benchmarks.load.workloads import WorkloadSpec
from gateway.core import Price

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
    var = {
        "c": "concurrency",
        "concurrency": "concurrency",
        "rate": "rate",
        "request-rate": "rate",
        "qps": "rate",
    }.get(var.strip().lower(), "")
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
            return None, (
                LoadShape(concurrency or (None if math.isfinite(rate) else 1), rate, burstiness),
            )
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
            raise BenchError(
                f"--api {spec!r}: rates must be numbers: in/out[/read[/write]]"
            ) from None
        if len(parts) < 2 or len(parts) > 4 or any(x < 0 for x in parts):
            raise BenchError(f"--api {spec!r}: give in/out[/cache_read[/cache_write]] per 1M")
        read = parts[2] if len(parts) > 2 else None
        write = parts[3] if len(parts) > 3 else None
        return name.strip(), Price.per_mtok(parts[0], parts[1], read, write, source="option")
    entries = table if table is not None else load_litellm_entries([spec])
    price = price_from_entry(entries[spec]) if spec in entries else None
    if price is None:
        raise BenchError(
            f"--api {spec!r}: not in litellm's price table; give its rates as "
            f"{spec}=IN/OUT[/CACHE_READ[/CACHE_WRITE]] (USD per 1M tokens)"
        )
    return spec, price


def resolve_apis(specs: Sequence[str]) -> dict[str, Price]:
    from gateway.pricing.table import load_litellm_entries

    keys = [s for s in specs if "=" not in s]
    table = load_litellm_entries(keys) if keys else {}
    return dict(parse_api(s, table) for s in specs)


def default_db_url() -> str:
    return os.environ.get("GATEWAY_DATABASE_URL", "sqlite+aiosqlite:///./gateway.db")


def config_from_options(o: dict[str, Any], command: str) -> BenchConfig:
    """`gateway bench run`'s options → BenchConfig (the CLI's whole translation)."""
    sweep, shapes = make_shapes(o["sweep"], o["concurrency"], o["request_rate"], o["burstiness"])
    try:
        window = Window(
            duration_s=None if o["num_requests"] else o["duration"],
            num_requests=o["num_requests"],
            warmup_s=o["warmup"],
            warmup_requests=o["warmup_requests"],
        )
    except ValueError as e:
        raise BenchError(str(e)) from None
    gpu = (
        Gpu.of(o["gpu_hourly_usd"], o["gpu_count"], o["gpu_name"])
        if o["gpu_hourly_usd"] is not None
        else None
    )
    spec = WorkloadSpec(
        name=o["workload"],
        num_prompts=o["num_prompts"],
        input_len=o["input_len"],
        output_len=o["output_len"],
        range_ratio=o["range_ratio"],
        dist=o["dist"],
        prefix_len=o["prefix_len"],
        dataset_path=o["dataset_path"],
        seed=o["seed"],
    )
    return BenchConfig(
        base_url=o["base_url"],
        workload=spec,
        shapes=shapes,
        sweep=sweep,
        window=window,
        model=o["model"],
        direct_url=o["direct_url"],
        direct_model=o["direct_model"],
        endpoint=o["endpoint"],
        stream=o["stream"],
        ignore_eos=o["ignore_eos"],
        tokenizer=o["tokenizer"],
        slo=Slo(o["slo_ttft_ms"], o["slo_tpot_ms"], o["slo_e2el_ms"]),
        attainment=o["slo_attainment"],
        gpu=gpu,
        apis=tuple(o["api"] or DEFAULT_APIS),
        out_dir=o["out"],
        db_url=(o["database_url"] or default_db_url()) if o["save"] else None,
        timeout_s=o["timeout"],
        seed=o["seed"],
        label=o["label"],
        command=command,
        api_key=o["api_key"],
    )

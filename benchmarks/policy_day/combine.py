"""The policies side by side: their days' JSON read back, summarised and compared — one dict.

Runs are combined only when they were made with the same settings (the newest run's win; the
others are named and skipped). `report.py` turns the result into Markdown, JSON and a plot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.policy_day.policies import (
    PEAK_GRACE_S,
    POLICIES,
    day_config,
    gate_config,
    run_meta,
    slo_ms,
)
from benchmarks.policy_day.stats import Day, Record, compare, peak_phase, summarize
from benchmarks.policy_day.traffic import hour_rates
from gateway.config import GatewayConfig


def _bars(config: GatewayConfig) -> str:
    q = gate_config(config)
    own = ", ".join(f"{t} {b.min_agreement}" for t, b in q.tasks.items() if b.min_agreement)
    return (
        f"lower 95% bound ≥ {q.min_agreement:g} over ≥ {q.min_samples} pairs"
        + (f", {own}" if own else "")
        + f", unknown: {q.unknown}"
    )


def build_report(out: Path) -> dict[str, Any]:
    """Every policy's `<out>/<policy>.json` of the newest settings → summaries and comparison."""
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
    config = day_config(Path(newest["config"]))
    gpu = next(p.gpu for p in config.providers if p.gpu is not None)
    day = Day(
        hour_s=newest["hour_s"],
        output_scale=newest["output_scale"],
        hours=tuple(newest["hours"]),
        rates=tuple(hour_rates(newest["peak_rps"])),
        slo_ms=slo_ms(config),
        gpu_usd_per_hour=gpu.hourly_usd * gpu.count,
        capacity_rps=newest["capacity_rps"],
    )
    records = {n: [Record.from_json(d) for d in r["records"]] for n, r in runs.items()}
    shadow = {n: [Record.from_json(d) for d in r.get("shadow", [])] for n, r in runs.items()}
    summaries = {
        n: summarize(records[n], day, uses_gpu=POLICIES[n].uses_gpu, shadow=shadow[n])
        for n in records
    }
    for n, r in runs.items():
        if r.get("peak"):
            summaries[n]["sustained_peak"] = peak_phase(
                [Record.from_json(d) for d in r["peak"]], day.slo_ms
            )
    mix = ", ".join(f"{k} {v:.0%}" for k, v in newest["mix"].items())
    result: dict[str, Any] = {
        "meta": {
            **run_meta(),
            "runs": {n: r["meta"]["command"] for n, r in runs.items()},
            "settings": newest,
            "slo_ms": day.slo_ms,
            "quality_bars": _bars(config),
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

"""The policy benchmark's outputs: a Markdown table (also printed), the JSON, the PNG plot.

Every file records the exact command and versions (rule R12). matplotlib is imported only when
the plot is drawn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ORDER = ("all-api", "all-local", "local-first", "local-first-gated")
COLOURS = {
    "all-api": "tab:blue",
    "all-local": "tab:red",
    "local-first": "tab:green",
    "local-first-gated": "tab:purple",
}


def _f(x: float | None, fmt: str = ".0f", unit: str = "") -> str:
    return "–" if x is None else f"{x:{fmt}}{unit}"


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def table(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """One Markdown row per policy."""
    lines = [
        "| policy | requests/day | cost/day, rented GPU | cost/day, ledger (amortised) "
        "| $/1M tok rented | $/1M tok amortised | served locally | TTFT p50 / p95 / p99 ms "
        "| TPOT p50 ms | within SLO (day) | within SLO (peak hours) | errors "
        "| of which shadow $/day | below the quality bar: all / after min_samples |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ORDER:
        s = summaries.get(name)
        if s is None:
            continue
        lines.append(
            f"| {name} | {s['requests_day']:,.0f} | ${s['total_rented_usd']:,.2f} "
            f"| ${s['total_amortised_usd']:,.2f} | {_f(s['usd_per_mtok_rented'], '.4f')} "
            f"| {_f(s['usd_per_mtok_amortised'], '.4f')} | {_pct(s['share_local'])} "
            f"| {_f(s['ttft_p50_ms'])} / {_f(s['ttft_p95_ms'])} / {_f(s['ttft_p99_ms'])} "
            f"| {_f(s.get('tpot_p50_ms'), '.1f')} "
            f"| {_pct(s['slo_attainment'], 2)} | {_pct(s['peak_slo_attainment'], 2)} "
            f"| {s['errors']} of {s['requests']} "
            f"| {_shadow(s)} | {_pct(s.get('below_bar'))} / {_decided(name, s)} |"
        )
    return "\n".join(lines)


def _shadow(s: Mapping[str, Any]) -> str:
    return f"${s['shadow_usd']:,.2f}" if s.get("shadow_calls") else "–"


def _decided(name: str, s: Mapping[str, Any]) -> str:
    """Only the gated policy decides on evidence; the others never explore."""
    return _pct(s.get("below_bar_decided"), 2) if name == "local-first-gated" else "–"


def quality_lines(summaries: Mapping[str, Mapping[str, Any]], bars: str) -> list[str]:
    """The gated policy against plain local-first: what the gate costs and what it prevents."""
    g, lf = summaries.get("local-first-gated"), summaries.get("local-first")
    if g is None:
        return []
    out = [
        f"- quality gate ({bars}): {_pct(g['below_bar_decided'], 2)} of requests served by a "
        f"model below the bar for their task after min_samples (must be 0: "
        f"{'PASS' if g['below_bar_decided'] == 0 else 'FAIL'}); {_pct(g['explored'])} served "
        f"while their task was explored, {_pct(g['below_bar'])} by a below-bar model in all",
        f"- shadow calls (the evidence), included in its costs above: "
        f"${g['shadow_usd']:,.2f} a represented day — exploration "
        f"{g['shadow_explore_calls']} calls, ${g['shadow_explore_usd']:,.2f} (the first "
        f"min_samples pairs of each task × model, needed once: at face value), steady "
        f"sample {g['shadow_calls'] - g['shadow_explore_calls']} calls replayed, "
        f"${g['shadow_sample_usd']:,.2f} (× 3,600 / hour_s, like all spend)",
    ]
    if lf is not None:
        out.append(
            f"- against local-first: ${g['total_rented_usd'] - lf['total_rented_usd']:+,.2f} a "
            f"day (rented GPU), served locally {_pct(g['share_local'])} vs "
            f"{_pct(lf['share_local'])}; local-first served {_pct(lf['below_bar'])} of its "
            f"requests with a model below the bar"
        )
    return out


def peak_table(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """The sustained-peak phase, one row per policy that ran it."""
    lines = [
        "| policy | requests | served locally | TTFT p50 / p95 / p99 ms | within SLO "
        "| no first token when cut off |",
        "|---|---|---|---|---|---|",
    ]
    for name in ORDER:
        p = (summaries.get(name) or {}).get("sustained_peak")
        if p:
            lines.append(
                f"| {name} | {p['requests']} | {_pct(p['share_local'])} "
                f"| {_f(p['ttft_p50_ms'])} / {_f(p['ttft_p95_ms'])} / {_f(p['ttft_p99_ms'])} "
                f"| {_pct(p['slo_attainment'], 2)} | {p['no_first_token']} |"
            )
    return "\n".join(lines) if len(lines) > 2 else ""


def targets(
    summaries: Mapping[str, Mapping[str, Any]], comparison: Mapping[str, Any], slo_ms: float
) -> list[str]:
    """The issue's targets, each with its measured figure and PASS / FAIL."""
    out = []
    saving = comparison.get("local-first_saving_rented")
    amortised = comparison.get("local-first_saving_amortised")
    if saving is not None:
        out.append(
            f"- local-first ≥ 50% cheaper than all-API (rented GPU): {_pct(saving)} "
            f"→ {'PASS' if saving >= 0.5 else 'FAIL'} (ledger/amortised view: "
            f"{_pct(amortised)})"
        )
    lf, al = summaries.get("local-first"), summaries.get("all-local")
    if lf is not None and al is not None:
        # "at the peak": the sustained-peak phase where it ran, else the day's peak hours
        lf_peak = (lf.get("sustained_peak") or {}).get("slo_attainment", lf["peak_slo_attainment"])
        al_peak = (al.get("sustained_peak") or {}).get("slo_attainment", al["peak_slo_attainment"])
        ok_lf = min(lf["slo_attainment"] or 0, lf_peak or 0) >= 0.99
        ok_al = (al_peak or 0) < 0.99
        out.append(
            f"- local-first ≥ 99% within TTFT ≤ {slo_ms:.0f} ms, all-local not at the "
            f"peak: local-first {_pct(lf['slo_attainment'], 2)} of the day, "
            f"{_pct(lf_peak, 2)} at the peak; all-local {_pct(al['slo_attainment'], 2)} "
            f"of the day, {_pct(al_peak, 2)} at the peak → "
            f"{'PASS' if ok_lf and ok_al else 'FAIL'}"
        )
    if "gpu_usd_per_hour_for_50pct" in comparison:
        c = comparison
        half = c["gpu_usd_per_hour_for_50pct"]
        at_half = (
            f"local-first would be 50% cheaper at a GPU price ≤ ${half:.2f}/h"
            if half > 0
            else "no GPU price makes local-first 50% cheaper at this "
            "volume (its API spill alone is over half of all-API)"
        )
        out.append(
            f"- what moves it: the GPU served requests all-API paid "
            f"${c['value_served_locally_usd']:,.2f} for; {at_half}; it breaks even at "
            f"${c['gpu_usd_per_hour_break_even']:.2f}/h; traffic filling the GPU every hour "
            f"would save at most {_pct(c['max_saving_gpu_full_all_day'])} at this price."
        )
        out.append(
            "- local-first's saving (rented) at other H100 prices: "
            + ", ".join(f"${p}/h {_pct(v)}" for p, v in c["saving_at_gpu_usd_per_hour"].items())
        )
    return out


def markdown(result: Mapping[str, Any]) -> str:
    meta = result["meta"]
    lines = [
        "# Policy benchmark: a synthetic day",
        "",
        f"`{meta['command']}` — {meta['date']}, {meta['machine']}, Python {meta['python']}",
        "",
        *(
            [("Runs: " + "; ".join(f"`{c}`" for c in meta["runs"].values())), ""]
            if meta.get("runs")
            else []
        ),
        f"Day: {meta['day']}",
        "",
        table(result["summaries"]),
        "",
        *(
            [f"Sustained peak: {meta.get('peak', '')}", "", peak_table(result["summaries"]), ""]
            if peak_table(result["summaries"])
            else []
        ),
        *targets(result["summaries"], result["comparison"], meta["slo_ms"]),
        *quality_lines(result["summaries"], meta.get("quality_bars", "")),
        "",
        "Router.decide (4-candidate local-first route): "
        + result.get("decide", {}).get("line", "not measured (`policy_day decide`)"),
    ]
    reasons = result.get("route_reasons", {}).get("local-first", {})
    if reasons:
        lines += [
            "",
            "local-first's ledger explains each choice (`route_reason`, one per provider):",
            "",
            *(f"- `{r}`" for r in reasons.values()),
        ]
    return "\n".join(lines) + "\n"


def plot(result: Mapping[str, Any], path: Path) -> None:
    """Offered rate vs capacity, share served locally and TTFT p95 per hour, per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries, meta = result["summaries"], result["meta"]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    any_hours: Sequence[Mapping[str, Any]] = next(iter(summaries.values()))["hourly"]
    hours = [h["hour"] for h in any_hours]
    ax1.bar(hours, [h["rate_rps"] for h in any_hours], color="0.75", label="offered (real req/s)")
    ax1.axhline(
        meta["capacity_rps"],
        color="k",
        ls="--",
        lw=1,
        label=f"one H100's capacity ({meta['capacity_rps']:.1f} req/s)",
    )
    ax1.set_ylabel("requests / s")
    ax1.legend(loc="upper left", fontsize=8)
    for name in ORDER:
        s = summaries.get(name)
        if s is None:
            continue
        hs = s["hourly"]
        ax2.plot(
            [h["hour"] for h in hs],
            [h["share_local"] for h in hs],
            marker="o",
            ms=3,
            color=COLOURS[name],
            label=name,
        )
        ax3.plot(
            [h["hour"] for h in hs],
            [h["ttft_p95_ms"] for h in hs],
            marker="o",
            ms=3,
            color=COLOURS[name],
            label=name,
        )
    ax2.set_ylabel("share served locally")
    ax2.set_ylim(-0.05, 1.05)
    ax2.legend(loc="center left", fontsize=8)
    ax3.axhline(meta["slo_ms"], color="k", ls="--", lw=1, label=f"SLO {meta['slo_ms']:.0f} ms")
    ax3.set_yscale("log")
    ax3.set_ylabel("TTFT p95 (ms)")
    ax3.set_xlabel("hour of the simulated day")
    ax3.legend(loc="lower center", ncol=4, fontsize=8)
    ax3.set_xticks(hours)
    fig.suptitle(
        "Routing policies over a synthetic day (simulated H100 + hosted APIs)", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md", out_dir / "policy_day.png"]
    paths[0].write_text(json.dumps(result, indent=2, default=str))
    paths[1].write_text(markdown(result))
    plot(result, paths[2])
    return paths

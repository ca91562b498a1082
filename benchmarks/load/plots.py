"""PNG plots of a run (matplotlib, Agg backend: no display needed).

- `latency_vs_throughput.png`: output tokens/s on x, TTFT and TPOT percentiles (p50, p90, p99)
  on y, one marker per point labelled with its load — the knee is where latency turns upward
  while throughput stops growing. The SLOs are horizontal lines.
- `cost_vs_load.png`: the GPU's $ per 1M output and per 1M total tokens at each point against
  the concurrency (or rate), with each API's price for the same token mix as a horizontal line
  (dashed: with prompt caching). Log scale: single-stream and saturated points differ ~10×.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LATENCY_PNG = "latency_vs_throughput.png"
COST_PNG = "cost_vs_load.png"


def _x_load(run: dict[str, Any]) -> tuple[list[float], str]:
    shapes = [p["shape"] for p in run["points"]]
    if run["settings"].get("sweep") == "rate" or all(s["rate"] is not None for s in shapes):
        return [float(s["rate"]) for s in shapes], "request rate (req/s)"
    return [float(s["concurrency"] or 0) for s in shapes], "concurrency"


def write_plots(run: dict[str, Any], out_dir: Path) -> list[Path]:
    if not run["points"]:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [_latency(run, out_dir / LATENCY_PNG, plt)]
    if any(p.get("gpu_usd_per_mtok_output") for p in run["points"]):
        paths.append(_cost(run, out_dir / COST_PNG, plt))
    return paths


def _plain(prefix: str = "", minor: bool = False) -> Any:
    """Tick labels as plain numbers; on a log axis's minor ticks only at 2× and 5×."""
    import math

    from matplotlib.ticker import FuncFormatter

    def label(v: float, _pos: int) -> str:
        if minor and v > 0:
            mantissa = v / 10 ** math.floor(math.log10(v))
            if min(abs(mantissa - 2), abs(mantissa - 5)) > 1e-6:
                return ""
        return f"{prefix}{v:g}"

    return FuncFormatter(label)


def _series(run: dict[str, Any], metric: str, key: str) -> list[float | None]:
    out: list[float | None] = []
    for p in run["points"]:
        stat = p["summary"][metric]
        out.append(
            None
            if stat is None
            else (stat["median"] if key == "p50" else stat["percentiles"].get(key))
        )
    return out


def _latency(run: dict[str, Any], path: Path, plt: Any) -> Path:
    xs = [p["summary"]["output_throughput"] for p in run["points"]]
    labels = [p["label"].replace("concurrency=", "c=") for p in run["points"]]
    slo = run["settings"]["slo"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, metric, title, slo_key in (
        (axes[0], "ttft", "TTFT", "ttft_ms"),
        (axes[1], "tpot", "TPOT (excl. 1st token)", "tpot_ms"),
    ):
        for key, style in (("p50", "o-"), ("p90", "s--"), ("p99", "^:")):
            ys = _series(run, metric, key)
            pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=key)
        ys50 = _series(run, metric, "p99")
        for x, y, label in zip(xs, ys50, labels, strict=True):
            if y is not None:
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if slo.get(slo_key):
            ax.axhline(slo[slo_key], color="red", linewidth=1, label=f"SLO {slo[slo_key]:g} ms")
        best = run.get("best_point")
        if best is not None:
            ax.axvline(xs[best], color="green", linewidth=1, alpha=0.5, label="best within SLO")
        ax.set_xlabel("output throughput (tokens/s)")
        ax.set_ylabel(f"{title} (ms)")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_plain())
        ax.yaxis.set_minor_formatter(_plain(minor=True))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"{title} vs throughput")
    fig.suptitle(f"{run['workload']['description']} → {run['model']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _cost(run: dict[str, Any], path: Path, plt: Any) -> Path:
    xs, xlabel = _x_load(run)
    gpu = run["settings"]["gpu"]
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key, api_key, title in (
        (axes[0], "gpu_usd_per_mtok_output", "usd_per_mtok_output", "$ per 1M output tokens"),
        (axes[1], "gpu_usd_per_mtok_total", "usd_per_mtok_total", "$ per 1M total tokens"),
    ):
        ys = [p.get(key) for p in run["points"]]
        pts = [
            (x, y, p["within_slo"])
            for x, y, p in zip(xs, ys, run["points"], strict=True)
            if y is not None
        ]
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            "k-",
            linewidth=1.5,
            label=f"{gpu['count']}× {gpu['name']} at ${gpu['hourly_usd']}/h",
        )
        ax.scatter(
            [p[0] for p in pts if p[2]],
            [p[1] for p in pts if p[2]],
            color="green",
            zorder=3,
            label="within SLO",
        )
        ax.scatter(
            [p[0] for p in pts if not p[2]],
            [p[1] for p in pts if not p[2]],
            color="red",
            marker="x",
            zorder=3,
            label="SLO missed",
        )
        names = list(dict.fromkeys(a["api"] for a in run["apis"]))
        for a in run["apis"]:
            if a.get(api_key) is None:
                continue
            color = colors[names.index(a["api"]) % len(colors)]
            ax.axhline(
                a[api_key],
                color=color,
                linestyle="--" if a["caching"] else "-",
                linewidth=1,
                label=a["api"] + (" (cached prefix)" if a["caching"] else ""),
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.xaxis.set_major_formatter(_plain())
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_plain("$"))
        ax.yaxis.set_minor_formatter(_plain("$", minor=True))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(title)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(
        f"{run['workload']['description']}: GPU at 100 % busy vs API list prices", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""Showing a run: rich live progress and table, and the files — JSON, CSV, Markdown, PNG.

Every file carries the exact command and the versions (rule R12). The JSON is the run record
itself (every point, every metric, the API comparison); the CSV has one row per point; the
Markdown report is the same tables for a pull request or a wiki; the plots come from
`benchmarks.load.plots`.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmarks.common.result import RequestResult
from benchmarks.load.progress import Progress as ProgressBase


class LiveProgress(ProgressBase):
    """A rich progress bar per point: elapsed time (or requests) against the plan, errors."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=self.console,
            auto_refresh=False,
            transient=False,
        )
        self.bar.start()
        self.task: Any = None
        self.ok = self.failed = self.measured = 0
        self.t0 = 0.0
        self.expected_s: float | None = None

    def start_point(self, label: str, expected_s: float | None, expected_n: int | None) -> None:
        self.ok = self.failed = self.measured = 0
        self.t0 = time.perf_counter()
        self.expected_s = expected_s
        total = expected_s if expected_s is not None else float(expected_n or 1)
        self.task = self.bar.add_task(label, total=total, stats="")
        self.bar.refresh()

    def on_result(self, result: RequestResult, measured: bool) -> None:
        if result.success:
            self.ok += 1
        else:
            self.failed += 1
        self.measured += measured

    def tick(self) -> None:
        if self.task is None:
            return
        elapsed = time.perf_counter() - self.t0
        done = elapsed if self.expected_s is not None else float(self.ok + self.failed)
        rate = (self.ok + self.failed) / elapsed if elapsed else 0.0
        self.bar.update(
            self.task, completed=done, stats=f"{self.ok} ok  {self.failed} failed  {rate:.0f} req/s"
        )
        self.bar.refresh()

    def end_point(self, line: str) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self.bar.tasks[-1].total, stats=line)
            self.bar.refresh()

    def close(self) -> None:
        self.bar.stop()


def _ms(stat: dict[str, Any] | None, key: str) -> float | None:
    if stat is None:
        return None
    value = stat["median"] if key == "median" else stat["percentiles"].get(key)
    return None if value is None else float(value)


def _fmt(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def _money(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"${x:,.0f}"
    return f"${x:,.3f}" if x >= 0.01 or x == 0 else f"${x:.2g}"


def _volume(x: float | None) -> str:
    if x is None:
        return "–"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:,.2f} {unit}"
    return f"{x:,.0f}"


POINT_COLUMNS = (
    "point",
    "ok/failed",
    "req/s",
    "out tok/s",
    "total tok/s",
    "TTFT p50",
    "TTFT p99",
    "TPOT p50",
    "TPOT p99",
    "ITL p99",
    "E2EL p99",
    "SLO met",
    "$/1M out",
    "$/1M total",
)


def point_rows(run: dict[str, Any]) -> list[list[str]]:
    rows = []
    for i, p in enumerate(run["points"]):
        s = p["summary"]
        att = s.get("slo_attainment")
        mark = " ★" if run.get("best_point") == i else ""
        rows.append(
            [
                p["label"] + mark,
                f"{s['completed']}/{s['failed']}",
                _fmt(s["request_throughput"], 2),
                _fmt(s["output_throughput"], 0),
                _fmt(s["total_token_throughput"], 0),
                _fmt(_ms(s["ttft"], "median")),
                _fmt(_ms(s["ttft"], "p99")),
                _fmt(_ms(s["tpot"], "median"), 2),
                _fmt(_ms(s["tpot"], "p99"), 2),
                _fmt(_ms(s["itl"], "p99"), 2),
                _fmt(_ms(s["e2el"], "p99"), 0),
                ("–" if att is None else f"{att:.0%}") + (" ✓" if p.get("within_slo") else " ✗"),
                _money(p.get("gpu_usd_per_mtok_output")),
                _money(p.get("gpu_usd_per_mtok_total")),
            ]
        )
    return rows


API_COLUMNS = (
    "API",
    "cache",
    "$/1M in",
    "$/1M out",
    "$/1M out (blended)",
    "$/1M total",
    "break-even req/month",
    "break-even tokens/month",
    "GPU busy needed",
)


def api_rows(run: dict[str, Any]) -> list[list[str]]:
    rows = []
    for a in run["apis"]:
        util = a.get("utilisation_needed")
        rows.append(
            [
                a["api"],
                "yes" if a["caching"] else "no",
                _money(a["input_per_mtok"]),
                _money(a["output_per_mtok"]),
                _money(a["usd_per_mtok_output"]),
                _money(a["usd_per_mtok_total"]),
                _volume(a.get("break_even_requests_per_month")),
                _volume(a.get("break_even_total_tokens_per_month")),
                "–"
                if util is None
                else (f"{util:.1%}" if util < 0.1 else f"{util:.0%}")
                + ("" if util <= 1 else " (never)"),
            ]
        )
    return rows


def print_tables(run: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    t = Table(title=f"{run['run_id']}  {run['workload']['description']}  → {run['target_url']}")
    for col in POINT_COLUMNS:
        t.add_column(col, justify="left" if col == "point" else "right")
    for row in point_rows(run):
        t.add_row(*row)
    console.print(t)
    if run["apis"]:
        a = Table(title=_api_title(run))
        for col in API_COLUMNS:
            a.add_column(col, justify="left" if col in ("API", "cache") else "right")
        for row in api_rows(run):
            a.add_row(*row)
        console.print(a)
    overheads = overhead_rows(run)
    if overheads:
        o = Table(title="Gateway overhead: target − direct at the same load (ms)")
        for col in OVERHEAD_COLUMNS:
            o.add_column(col, justify="left" if col == "point" else "right")
        for row in overheads:
            o.add_row(*row)
        console.print(o)
    for w in run["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")


OVERHEAD_COLUMNS = ("point", "TTFT p50", "TTFT p99", "E2EL p50", "E2EL p99")


def overhead_rows(run: dict[str, Any]) -> list[list[str]]:
    return [
        [
            p["label"],
            _fmt(o["ttft_median_ms"], 2),
            _fmt(o["ttft_p99_ms"], 2),
            _fmt(o["e2el_median_ms"], 2),
            _fmt(o["e2el_p99_ms"], 2),
        ]
        for p in run["points"]
        if (o := p.get("gateway_overhead_ms"))
    ]


def _api_title(run: dict[str, Any]) -> str:
    mix = run["token_mix"]
    gpu = run["settings"]["gpu"]
    head = f"APIs on this run's mix ({mix['input']:.0f} in / {mix['output']:.0f} out per request)"
    if gpu:
        head += f"; break-even vs {gpu['count']}× {gpu['name']} at ${gpu['hourly_usd']}/h always on"
    return head


def write_json(run: dict[str, Any], path: Path) -> None:
    path.write_bytes(
        orjson.dumps(run, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY, default=str)
    )


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def csv_text(run: dict[str, Any]) -> str:
    rows = []
    for i, p in enumerate(run["points"]):
        row: dict[str, Any] = {
            "run_id": run["run_id"],
            "point": p["label"],
            "best": run.get("best_point") == i,
            "within_slo": p["within_slo"],
        }
        _flat(
            "",
            {
                "shape": p["shape"],
                "summary": {k: v for k, v in p["summary"].items() if k != "errors"},
                "client": p["client"],
                "server": p.get("server") or {},
            },
            row,
        )
        row["gpu_usd_per_mtok_output"] = p.get("gpu_usd_per_mtok_output")
        row["gpu_usd_per_mtok_total"] = p.get("gpu_usd_per_mtok_total")
        for k, v in (p.get("gateway_overhead_ms") or {}).items():
            row[f"gateway_overhead.{k}"] = v
        rows.append(row)
    buf = io.StringIO()
    buf.write(f"# command: {run['command']}\n")
    fields = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _md_table(columns: tuple[str, ...], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _slo(slo: dict[str, float]) -> str:
    if not slo:
        return "none (every point qualifies)"
    names = {"ttft_ms": "TTFT", "tpot_ms": "TPOT", "e2el_ms": "E2EL"}
    return ", ".join(f"{names[k]} ≤ {v:g} ms" for k, v in slo.items())


def _window(w: dict[str, Any]) -> str:
    if w.get("num_requests"):
        return f"{w['num_requests']} measured requests after {w['warmup_requests']} warm-up"
    return f"{w['duration_s']:g} s measured after {w['warmup_s']:g} s warm-up"


def markdown(run: dict[str, Any], plots: list[str]) -> str:
    wl, st = run["workload"], run["settings"]
    lines = [
        f"# Load benchmark {run['run_id']}",
        "",
        f"- command: `{run['command']}`",
        f"- target: {run['target_url']} (model `{run['model']}`"
        + (f", server {run['server_version']}" if run.get("server_version") else "")
        + ")"
        + (f"; direct: {run['direct_url']}" if run.get("direct_url") else ""),
        f"- workload: {wl['description']}; tokenizer {wl['tokenizer']}"
        + ("" if wl["tokenizer_exact"] else " (approximate)"),
        f"- endpoint: {run['endpoint']}, {'streamed' if run['stream'] else 'not streamed'}; "
        f"each point: {_window(st['window'])}",
        f"- SLO: {_slo(st['slo'])}, for at least {st['slo_attainment']:.0%} of a point's requests",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in run["versions"].items() if v),
        "",
        "Metrics follow vLLM's `calculate_metrics` (vllm/benchmarks/serve.py): TTFT, TPOT "
        "(excluding the first token), ITL (per chunk), E2EL in ms; token counts from the "
        "server's usage. ★ marks the best point within the SLO.",
        "",
        _md_table(POINT_COLUMNS, point_rows(run)),
        "",
    ]
    servers = [(p["label"], p["server"]) for p in run["points"] if p.get("server")]
    if servers:
        lines += [
            "## What the server reported (vLLM /metrics over each point, warm-up included)",
            "",
            _md_table(
                (
                    "point",
                    "generated tokens",
                    "max running",
                    "max waiting",
                    "max KV cache",
                    "prefix-cache hit rate",
                ),
                [
                    [
                        label,
                        _fmt(v.get("generation_tokens"), 0),
                        _fmt(v.get("max_running"), 0),
                        _fmt(v.get("max_waiting"), 0),
                        _pct(v.get("max_kv_cache_usage")),
                        _pct(v.get("prefix_cache_hit_rate")),
                    ]
                    for label, v in servers
                ],
            ),
            "",
        ]
    if overhead_rows(run):
        lines += [
            "## Gateway overhead (target − direct at the same load, ms)",
            "",
            _md_table(OVERHEAD_COLUMNS, overhead_rows(run)),
            "",
        ]
    if run["apis"]:
        lines += [
            "## " + _api_title(run),
            "",
            _md_table(API_COLUMNS, api_rows(run)),
            "",
            "Blended $/1M out = the API's price of one request of this mix (input and "
            "output) per 1M output tokens — comparable with the GPU's $/1M out. Caching "
            "bills the shared prefix at the cache-read rate on every request (steady "
            "state; cache writes, minimum sizes and storage fees are not modelled). "
            '"GPU busy needed" is the break-even volume as a share of the best point\'s '
            "capacity: above 100 % the GPU never pays off at this SLO.",
            "",
        ]
    lines += [f"![{p}]({p})" for p in plots]
    if run["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in run["warnings"]]
    return "\n".join(lines) + "\n"


def write_files(run: dict[str, Any], out_dir: Path) -> list[Path]:
    """JSON, CSV, Markdown and the PNG plots into `out_dir`; returns the paths written."""
    from benchmarks.load.plots import write_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path, md_path = (
        out_dir / "run.json",
        out_dir / "points.csv",
        out_dir / "report.md",
    )
    plots = write_plots(run, out_dir)
    write_json(run, json_path)
    csv_path.write_text(csv_text(run), encoding="utf-8")
    md_path.write_text(markdown(run, [p.name for p in plots]), encoding="utf-8")
    return [json_path, csv_path, md_path, *plots]

"""The usage report as CSV or as a terminal table (the JSON is the report itself)."""

from __future__ import annotations

import csv
import io
from typing import Any

from gateway.finance.report import METRICS

# the table's short column titles
TITLES = {
    "requests": "requests",
    "errors": "errors",
    "prompt_tokens": "prompt",
    "cached_prompt_tokens": "cached",
    "cache_write_tokens": "cache_wr",
    "completion_tokens": "completion",
    "reasoning_tokens": "reasoning",
    "cost_usd": "cost $",
    "reference_cost_usd": "reference $",
    "saving_usd": "saving $",
    "latency_p50_ms": "lat p50",
    "latency_p95_ms": "lat p95",
    "ttft_p50_ms": "ttft p50",
    "ttft_p95_ms": "ttft p95",
}


def columns(report: dict[str, Any]) -> list[str]:
    keys = list(report["group_by"])
    if "provider" in keys:
        keys.append("local")
    return [*keys, *METRICS]


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def to_csv(report: dict[str, Any]) -> str:
    """One line per group and a last `total` line (its group columns read `total`)."""
    cols = columns(report)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(cols)
    for row in report["rows"]:
        w.writerow([_cell(row.get(c)) for c in cols])
    w.writerow(["total" if c not in METRICS else _cell(report["totals"][c]) for c in cols])
    return out.getvalue()


def _money(v: Any) -> str:
    return f"{float(v):,.4f}" if isinstance(v, str) else _cell(v)


def to_table(report: dict[str, Any]) -> str:
    cols = columns(report)
    head = [TITLES.get(c, c) for c in cols]
    body = [
        [_money(row.get(c)) if c.endswith("_usd") else _cell(row.get(c)) for c in cols]
        for row in report["rows"]
    ]
    total = [
        _money(report["totals"][c])
        if c.endswith("_usd")
        else _cell(report["totals"][c])
        if c in METRICS
        else ("total" if i == 0 else "")
        for i, c in enumerate(cols)
    ]
    lines = [head, *body, total]
    widths = [max(len(line[i]) for line in lines) for i in range(len(cols))]
    numeric = [c in METRICS for c in cols]

    def fmt(line: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(line, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    title = f"usage {report['since']} .. {report['until']} ({report['tz']})" + (
        f", reference model {report['reference_model']}" if report["reference_model"] else ""
    )
    return "\n".join([title, fmt(head), rule, *map(fmt, body), rule, fmt(total)]) + "\n"

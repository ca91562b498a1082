"""A what-if report as a terminal table, CSV or JSON — pure (text in, text out).

Money is exact decimal text in CSV and JSON (to 1e-12 USD, the ledger's own precision), and
rounded to the cent's ten-thousandth in the table. CSV is the group table only, so it stays
a table for spreadsheets; its notes are written to stderr by the command.
"""

from __future__ import annotations

import csv
import io
import textwrap
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from gateway.finance.whatif import WhatIfReport
from gateway.finance.whatif_lines import Line

USD = Decimal("1e-12")
REQ = Decimal("1e-3")
COLUMNS = ("requests", "actual_usd", "whatif_requests", "whatif_usd", "delta_usd", "delta_pct")


def _exact(d: Decimal, q: Decimal = USD) -> str:
    return format(d.quantize(q).normalize(), "f")


def _pct(d: Decimal | None) -> str:
    return "" if d is None else format(d.quantize(Decimal("0.01")), "f")


def _row(line: Line) -> list[str]:
    return [
        *line.key,
        str(line.requests),
        _exact(line.actual_usd),
        _exact(line.whatif_requests, REQ),
        _exact(line.whatif_usd),
        _exact(line.delta_usd),
        _pct(line.delta_pct),
    ]


def to_csv(r: WhatIfReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*r.group_by, *COLUMNS])
    for line in [*r.lines, r.total]:
        w.writerow(_row(line))
    return buf.getvalue()


def _line_json(r: WhatIfReport, line: Line) -> dict[str, Any]:
    out: dict[str, Any] = dict(zip(r.group_by, line.key, strict=True))
    values = _row(line)[len(r.group_by) :]
    out.update(zip(COLUMNS, values, strict=True))
    out["requests"] = line.requests
    out["delta_pct"] = values[-1] or None
    return out


def to_json(r: WhatIfReport) -> str:
    doc: dict[str, Any] = {
        "question": r.question,
        "since": _when(r, r.since),
        "until": _when(r, r.until),
        "tz": r.tz,
        "source": r.source,
        "group_by": list(r.group_by),
        "groups": [_line_json(r, x) for x in r.lines],
        "total": {k: v for k, v in _line_json(r, r.total).items() if k not in r.group_by},
        "assumptions": r.notes,
    }
    if r.pools:
        doc["pools"] = [
            {
                "provider": p.name,
                "gpus": p.gpus,
                "tokens_per_minute": _exact(p.tokens_per_minute, REQ),
                "capacity_source": p.capacity_source,
                "demand_tokens": _exact(p.use.demand_tokens, REQ),
                "fitted_tokens": _exact(p.use.fitted_tokens, REQ),
                "spilled_tokens": _exact(p.use.spilled_tokens, REQ),
                "over_capacity_tokens": _exact(p.use.over_tokens, REQ),
                "minutes_with_demand": p.use.minutes,
                "minutes_over_capacity": p.use.minutes_full,
                "peak_minute_tokens": _exact(p.use.peak_minute_tokens, REQ),
            }
            for p in r.pools
        ]
        doc["spilled_to"] = {
            m: {
                "requests": _exact(s.requests, REQ),
                "tokens": _exact(s.tokens, REQ),
                "usd": _exact(s.usd),
            }
            for m, s in sorted(r.spills.items())
        }
    if r.fleet is not None:
        f = r.fleet
        doc["fleet"] = {
            "hours": _exact(f.hours, REQ),
            "actual": {
                "gpus": f.actual_gpus,
                "gpu_usd": _exact(f.actual_gpu_usd),
                "api_usd": _exact(f.actual_api_usd),
                "total_usd": _exact(f.actual_gpu_usd + f.actual_api_usd),
            },
            "whatif": {
                "gpus": f.whatif_gpus,
                "gpu_usd": _exact(f.whatif_gpu_usd),
                "api_usd": _exact(f.whatif_api_usd),
                "total_usd": _exact(f.whatif_gpu_usd + f.whatif_api_usd),
            },
        }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


def _money(d: Decimal) -> str:
    return f"{d.quantize(Decimal('0.000001')):,f}"


def _grid(header: list[str], rows: list[list[str]], numeric_from: int) -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i >= numeric_from else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]


def _when(r: WhatIfReport, t: datetime) -> str:
    return t.astimezone(ZoneInfo(r.tz)).isoformat()


def to_table(r: WhatIfReport) -> str:
    out = [
        f"What if: {r.question}",
        f"Period:  {_when(r, r.since)} to {_when(r, r.until)} ({r.tz}; read from the "
        f"{'hourly rollup' if r.source == 'rollup' else 'ledger rows'})",
        "",
    ]
    n = len(r.group_by)
    header = [
        *r.group_by,
        "requests",
        "actual $",
        "what-if req",
        "what-if $",
        "change $",
        "change %",
    ]
    pct: Callable[[Line], str] = lambda x: _pct(x.delta_pct)  # noqa: E731
    rows = [
        [
            *x.key,
            f"{x.requests:,}",
            _money(x.actual_usd),
            f"{x.whatif_requests.quantize(Decimal('0.1')):,f}",
            _money(x.whatif_usd),
            _money(x.delta_usd),
            pct(x),
        ]
        for x in [*r.lines, r.total]
    ]
    out += _grid(header, rows, n)
    if r.pools:
        out += ["", "Self-hosted pools, minute by minute (tokens = prompt + output):"]
        prow = [
            [
                p.name,
                str(p.gpus),
                f"{p.tokens_per_minute:,.0f}",
                p.capacity_source,
                f"{p.use.demand_tokens:,.0f}",
                f"{p.use.fitted_tokens:,.0f}",
                f"{p.use.spilled_tokens:,.0f}",
                f"{p.use.over_tokens:,.0f}",
                f"{p.use.minutes_full}/{p.use.minutes}",
            ]
            for p in r.pools
        ]
        out += _grid(
            [
                "pool",
                "GPUs",
                "tokens/min",
                "capacity from",
                "asked",
                "fitted",
                "spilled",
                "over cap.",
                "min. full/busy",
            ],
            prow,
            1,
        )
    if r.spills:
        out += ["", "Spilled to:"]
        srow = [
            [m, f"{s.requests:,.1f}", f"{s.tokens:,.0f}", _money(s.usd)]
            for m, s in sorted(r.spills.items())
        ]
        out += _grid(["model", "requests", "tokens", "$"], srow, 1)
    if r.fleet is not None:
        f = r.fleet
        out += ["", f"The fleet by the hour ({f.hours:,.1f} h, idle hours included):"]
        frow = [
            [
                "actual",
                str(f.actual_gpus),
                _money(f.actual_gpu_usd),
                _money(f.actual_api_usd),
                _money(f.actual_gpu_usd + f.actual_api_usd),
            ],
            [
                "what-if",
                str(f.whatif_gpus),
                _money(f.whatif_gpu_usd),
                _money(f.whatif_api_usd),
                _money(f.whatif_gpu_usd + f.whatif_api_usd),
            ],
        ]
        out += _grid(["", "GPUs", "GPU $", "API $", "total $"], frow, 1)
    out += ["", "What a replay cannot know, and how it is estimated:"]
    out += [
        textwrap.fill(note, 100, initial_indent="  - ", subsequent_indent="    ")
        for note in r.notes
    ]
    return "\n".join(out) + "\n"


RENDERERS: dict[str, Callable[[WhatIfReport], str]] = {
    "table": to_table,
    "csv": to_csv,
    "json": to_json,
}

"""The evidence in the open: per task × model × reference, from the stored pairs — samples,
agreement with its 95% interval, and what the model and the reference cost per request on
the same sampled requests (so "saved" compares like with like).

`quality_report` reads; `render` writes a table, CSV or JSON. The same rows serve
`gateway quality` and `GET /admin/quality`.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core import ZERO
from gateway.ledger.tables import quality_pairs_table as pairs
from gateway.quality.intervals import bootstrap, wilson

Format = Literal["table", "csv", "json"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json")


@dataclass(frozen=True)
class QualityRow:
    task: str
    model: str
    reference: str
    comparator: str
    samples: int
    agreement: float
    low: float  # 95% interval: Wilson for pass/fail comparators, bootstrap for scores
    high: float
    interval: str  # "wilson" or "bootstrap"
    model_usd_per_request: Decimal
    reference_usd_per_request: Decimal
    saved_usd_per_request: Decimal  # the reference's cost less the model's
    shadow_usd: Decimal  # what the comparisons cost (the reference's side of each pair)


@dataclass
class _Group:
    comparator: str = ""
    scores: list[float] | None = None
    passes: int = 0
    pass_fail: bool = True
    model_usd: Decimal = ZERO
    reference_usd: Decimal = ZERO

    def row(self, task: str, model: str, reference: str) -> QualityRow:
        scores = self.scores or []
        n = len(scores)
        if self.pass_fail:
            low, high = wilson(self.passes, n)
            kind = "wilson"
        else:
            low, high = bootstrap(scores)
            kind = "bootstrap"
        m, r = self.model_usd / n, self.reference_usd / n
        return QualityRow(
            task, model, reference, self.comparator, n, sum(scores) / n, low, high, kind,
            m, r, r - m, self.reference_usd,
        )  # fmt: skip


async def quality_report(
    engine: AsyncEngine, since: datetime | None = None, task: str | None = None
) -> list[QualityRow]:
    q = select(
        pairs.c.task,
        pairs.c.model,
        pairs.c.reference,
        pairs.c.comparator,
        pairs.c.score,
        pairs.c.passed,
        pairs.c.model_cost_usd,
        pairs.c.reference_cost_usd,
    ).order_by(pairs.c.created_at)
    if since is not None:
        q = q.where(pairs.c.created_at >= since)
    if task is not None:
        q = q.where(pairs.c.task == task)
    groups: defaultdict[tuple[str, str, str], _Group] = defaultdict(_Group)
    async with engine.connect() as conn:
        result = await conn.execute(q)
        for t, model, ref, comparator, score, passed, m_usd, r_usd in result:
            g = groups[(t, model, ref)]
            g.comparator = comparator  # the newest: a task's comparator can be changed
            if g.scores is None:
                g.scores = []
            g.scores.append(float(passed) if passed is not None else float(score))
            g.passes += bool(passed)
            g.pass_fail = g.pass_fail and passed is not None
            g.model_usd += m_usd
            g.reference_usd += r_usd
    return [g.row(*key) for key, g in sorted(groups.items())]


def as_dicts(rows: list[QualityRow]) -> list[dict[str, Any]]:
    return [
        {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(r).items()} for r in rows
    ]


def render(rows: list[QualityRow], fmt: Format) -> str:
    if fmt == "json":
        return orjson.dumps({"object": "list", "data": as_dicts(rows)}).decode()
    if fmt == "csv":
        out = io.StringIO()
        fields = list(QualityRow.__dataclass_fields__)
        w = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(as_dicts(rows))
        return out.getvalue()
    return _table(rows)


def _usd(v: Decimal) -> str:
    return f"{v:.6f}"


def _table(rows: list[QualityRow]) -> str:
    head = (
        "task", "model", "reference", "compare", "n", "agreement", "95% interval",
        "$/req model", "$/req ref", "$/req saved", "shadow $",
    )  # fmt: skip
    body = [
        (
            r.task,
            r.model,
            r.reference,
            r.comparator,
            str(r.samples),
            f"{r.agreement:.3f}",
            f"[{r.low:.3f}, {r.high:.3f}]",
            _usd(r.model_usd_per_request),
            _usd(r.reference_usd_per_request),
            _usd(r.saved_usd_per_request),
            _usd(r.shadow_usd),
        )  # fmt: skip
        for r in rows
    ]
    if not body:
        return "no quality evidence yet (no shadow pairs match)"
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
             for line in (head, *body)]  # fmt: skip
    return "\n".join(lines)

"""The usage report: the source's groups folded into the asked grouping, with metrics,
savings and totals, as the JSON `GET /admin/usage` answers (README: Finance).

    {"since", "until", "tz", "group_by", "reference_model", "source", "rows": [ROW], "totals"}

A ROW holds the group's keys (team and key `unattributed` where the request had none; model,
provider, route null where the ledger has none, as for refusals) and the metrics; with
`provider` grouped, `local` says whether it is self-hosted. Money is decimal strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import GatewayConfig
from gateway.core import Price, Usage
from gateway.finance.histogram import percentile
from gateway.finance.period import TIME_GROUPS, UNATTRIBUTED, Period
from gateway.finance.savings import local_providers, reference_cost, reference_price
from gateway.finance.source import Fetched, Group, fetch, utc_hour
from gateway.ledger.rollup import NBUCKETS, TOKENS

METRICS = (
    "requests",
    "errors",
    "prompt_tokens",
    "cached_prompt_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_usd",
    "reference_cost_usd",
    "saving_usd",
    "latency_p50_ms",
    "latency_p95_ms",
    "ttft_p50_ms",
    "ttft_p95_ms",
)


@dataclass(slots=True)
class Totals:
    requests: int = 0
    errors: int = 0
    tokens: list[int] = field(default_factory=lambda: [0] * len(TOKENS))
    cost_usd: Decimal = Decimal(0)
    reference_usd: Decimal = Decimal(0)
    latency: list[int] = field(default_factory=lambda: [0] * NBUCKETS)
    ttft: list[int] = field(default_factory=lambda: [0] * NBUCKETS)

    def add(self, g: Group, reference: Decimal) -> None:
        self.requests += g.requests
        self.errors += g.errors
        self.tokens = [a + b for a, b in zip(self.tokens, g.tokens, strict=True)]
        self.cost_usd += g.cost_usd
        self.reference_usd += reference
        self.latency = [a + b for a, b in zip(self.latency, g.latency, strict=True)]
        self.ttft = [a + b for a, b in zip(self.ttft, g.ttft, strict=True)]

    def metrics(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            **dict(zip(TOKENS, self.tokens, strict=True)),
            "cost_usd": usd(self.cost_usd),
            "reference_cost_usd": usd(self.reference_usd),
            "saving_usd": usd(self.reference_usd - self.cost_usd),
            "latency_p50_ms": percentile(self.latency, 0.50),
            "latency_p95_ms": percentile(self.latency, 0.95),
            "ttft_p50_ms": percentile(self.ttft, 0.50),
            "ttft_p95_ms": percentile(self.ttft, 0.95),
        }


def usd(d: Decimal) -> str:
    """A decimal string with the ledger's 12 places trimmed of trailing zeros (at least 2)."""
    s = format(d.quantize(Decimal("1e-12")), "f")
    whole, _, frac = s.partition(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac.ljust(2, '0')}"


def time_label(unit: str, value: Any, period: Period, local: bool) -> str:
    """A time group's label: day and week `YYYY-MM-DD` (a week by its Monday), month
    `YYYY-MM`, hour an ISO datetime with the zone's offset."""
    if local:
        t: datetime = value.replace(tzinfo=period.tz)
    else:
        t = utc_hour(value).astimezone(period.tz)
        t = t.replace(minute=0, second=0, microsecond=0)
    if unit == "hour":
        return t.isoformat()
    if unit == "day":
        return t.date().isoformat()
    if unit == "week":
        return (t.date() - timedelta(days=t.weekday())).isoformat()
    return t.strftime("%Y-%m")


def _label(name: str, value: Any, period: Period, local: bool) -> Any:
    if name in TIME_GROUPS:
        return time_label(name, value, period, local)
    if name in ("team", "api_key"):
        return value or UNATTRIBUTED
    return value or None


def _usage(g: Group) -> Usage:
    return Usage(
        prompt_tokens=g.token("prompt_tokens"),
        completion_tokens=g.token("completion_tokens"),
        cached_prompt_tokens=g.token("cached_prompt_tokens"),
        cache_write_tokens=g.token("cache_write_tokens"),
        reasoning_tokens=g.token("reasoning_tokens"),
    )


def build(
    fetched: Fetched,
    group_by: Sequence[str],
    period: Period,
    config: GatewayConfig,
    prices: Mapping[str, Price],
) -> dict[str, Any]:
    price = reference_price(config, prices)
    local = local_providers(config)
    rows: dict[tuple[Any, ...], Totals] = {}
    totals = Totals()
    for g in fetched.groups:
        key = tuple(
            _label(n, v, period, fetched.local_time) for n, v in zip(group_by, g.keys, strict=True)
        )
        ref = reference_cost(_usage(g), g.cost_usd, g.provider in local, price)
        rows.setdefault(key, Totals()).add(g, ref)
        totals.add(g, ref)
    out_rows = []
    for key in sorted(rows, key=lambda k: tuple((v is None, str(v)) for v in k)):
        row: dict[str, Any] = dict(zip(group_by, key, strict=True))
        if "provider" in row:
            row["local"] = row["provider"] in local
        row.update(rows[key].metrics())
        out_rows.append(row)
    return {
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "tz": str(period.tz.key),
        "group_by": list(group_by),
        "reference_model": config.finance.reference_model,
        "source": fetched.source,
        "rows": out_rows,
        "totals": totals.metrics(),
    }


async def usage_report(
    engine: AsyncEngine,
    config: GatewayConfig,
    prices: Mapping[str, Price],
    period: Period,
    group_by: Sequence[str],
) -> dict[str, Any]:
    return build(await fetch(engine, group_by, period), group_by, period, config, prices)

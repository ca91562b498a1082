"""Recorded traffic summed in SQL for a what-if (`gateway whatif`): the only I/O of a replay.

Cost is linear in tokens at a fixed price, so the ledger's rows can be summed per group of
requests that share a price — served model, provider and, when any price in play has long-context
tiers, the tier bucket of the prompt — and re-priced exactly from the sums. A replay of routing
also needs the traffic minute by minute and by the name the client asked for. One `GROUP BY`
gives all of it; Python never sees a ledger row.

Where the finance reports' hourly rollup (`usage_hourly`, PostgreSQL, `finance/source.py`) can
answer — no tiers to tell apart, no minutes, groups among its dimensions, a period on whole
hours — it is read instead of the raw rows: thousands of rows instead of millions, the same sums.

Rows the gateway refused before any upstream call (no provider) cost nothing anywhere and are
left out. The actual cost is the ledger's own `cost_usd`, summed by the database (exact on
both: NUMERIC on PostgreSQL, integer picodollars on SQLite) and read through its column type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, case, func, literal, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.finance.period import GROUPS, TIME_GROUPS, UNATTRIBUTED, Period
from gateway.finance.source import uses_rollup
from gateway.ledger.tables import requests_table as r
from gateway.ledger.tables import usage_hourly_table as u

GROUP_KEYS = GROUPS
# group key → (raw column, rollup column); "model" and "provider" are always selected as the
# served pair and named from the config afterwards
COLUMN_KEYS = {
    "team": (r.c.team, u.c.team),
    "api_key": (r.c.api_key_id, None),
    "route": (r.c.requested_model, None),
    "endpoint": (r.c.endpoint, u.c.endpoint),
}


@dataclass(frozen=True, slots=True)
class TokenSums:
    requests: int = 0
    prompt: int = 0
    cached: int = 0
    cache_write: int = 0
    completion: int = 0
    reasoning: int = 0


@dataclass(frozen=True, slots=True)
class Slice:
    """The recorded requests that share every dimension asked for, summed."""

    keys: tuple[tuple[str, str], ...]  # (group key, value) for the keys SQL groups by
    provider: str
    upstream_model: str
    bucket: int  # long-context tier bucket of the prompt (see pricing.tiers.tier_floors)
    tokens: TokenSums
    actual_usd: Decimal
    max_prompt: int  # 0 from the rollup (only a replay needs it, and reads raw rows)
    requested: str | None = None  # what the client asked for (a replay's input)
    endpoint: str = "chat"
    minute: datetime | None = None


@dataclass(frozen=True, slots=True)
class Query:
    period: Period
    group_by: tuple[str, ...] = ()
    floors: tuple[int, ...] = ()
    by_minute: bool = False  # a replay: also per minute, requested name and endpoint

    def source(self, dialect: str) -> str:
        if self.floors or self.by_minute:
            return "raw"
        return "rollup" if uses_rollup(dialect, self.group_by, self.period) else "raw"


def _quoted(text: str) -> Any:
    # a literal, not a bind parameter: PostgreSQL matches GROUP BY expressions to the SELECT's
    # by their text, and two parameters are two expressions
    return literal_column("'" + text.replace("'", "''") + "'")


def _time(key: str, col: Any, dialect: str, tz: ZoneInfo) -> ColumnElement[Any]:
    if dialect == "sqlite":
        # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC; no time zones there, so UTC hours
        # (or minutes) are grouped and folded into the zone's days here (`_label`)
        return func.substr(col, 1, 16 if key == "minute" else 13)
    zone = "UTC" if key == "minute" else str(tz.key)
    return func.date_trunc(_quoted(key), func.timezone(_quoted(zone), col))


def _label(key: str, value: Any, tz: ZoneInfo) -> str:
    if key not in TIME_GROUPS:
        return UNATTRIBUTED if value in (None, "") else str(value)
    if isinstance(value, datetime):  # PostgreSQL: already local and truncated
        local = value
    else:  # SQLite: the UTC hour, folded into the zone
        hour = datetime.strptime(str(value)[:13], "%Y-%m-%d %H").replace(tzinfo=UTC)
        local = hour.astimezone(tz).replace(tzinfo=None)
        if key == "day":
            local = local.replace(hour=0)
        elif key == "week":
            local = (local - timedelta(days=local.weekday())).replace(hour=0)
        elif key == "month":
            local = local.replace(day=1, hour=0)
    fmt = {"hour": "%Y-%m-%d %H:00", "month": "%Y-%m"}.get(key, "%Y-%m-%d")
    return local.strftime(fmt)


def _minute(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    return datetime.strptime(str(value), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def _bucket(floors: Sequence[int]) -> ColumnElement[Any]:
    if not floors:
        return literal(0)
    whens = [(r.c.prompt_tokens > f, i + 1) for i, f in reversed(list(enumerate(floors)))]
    return case(*whens, else_=0)


def statement(q: Query, dialect: str) -> Select[Any]:
    """The one aggregate query of a what-if."""
    if q.source(dialect) == "rollup":
        return _rollup(q, dialect)
    tz = q.period.tz
    dims: list[ColumnElement[Any]] = [
        r.c.provider.label("provider"),
        r.c.upstream_model.label("upstream_model"),
        _bucket(q.floors).label("bucket"),
    ]
    for key in q.group_by:
        if key in TIME_GROUPS:
            dims.append(_time(key, r.c.created_at, dialect, tz).label(f"g_{key}"))
        elif key in COLUMN_KEYS:
            dims.append(COLUMN_KEYS[key][0].label(f"g_{key}"))
    if q.by_minute:
        dims.append(_time("minute", r.c.created_at, dialect, tz).label("minute"))
        dims.append(r.c.requested_model.label("requested"))
        if "endpoint" not in q.group_by:
            dims.append(r.c.endpoint.label("g_endpoint"))
    measures = [
        func.count().label("requests"),
        func.coalesce(func.sum(r.c.prompt_tokens), 0).label("prompt"),
        func.coalesce(func.sum(r.c.cached_prompt_tokens), 0).label("cached"),
        func.coalesce(func.sum(r.c.cache_write_tokens), 0).label("cache_write"),
        func.coalesce(func.sum(r.c.completion_tokens), 0).label("completion"),
        func.coalesce(func.sum(r.c.reasoning_tokens), 0).label("reasoning"),
        func.coalesce(func.max(r.c.prompt_tokens), 0).label("max_prompt"),
        func.sum(r.c.cost_usd).label("actual_usd"),  # typed as the column: Money
    ]
    # positional GROUP BY: the same expressions, written once
    positions: list[ColumnElement[Any]] = [literal_column(str(i + 1)) for i in range(len(dims))]
    return (
        select(*dims, *measures)
        .where(
            r.c.created_at >= q.period.since,
            r.c.created_at < q.period.until,
            r.c.provider.is_not(None),
        )
        .group_by(*positions)
    )


def _rollup(q: Query, dialect: str) -> Select[Any]:
    dims: list[ColumnElement[Any]] = [
        u.c.provider.label("provider"),
        u.c.model.label("upstream_model"),
        literal(0).label("bucket"),
    ]
    for key in q.group_by:
        if key in TIME_GROUPS:
            dims.append(_time(key, u.c.hour, dialect, q.period.tz).label(f"g_{key}"))
        elif key in COLUMN_KEYS:
            column = COLUMN_KEYS[key][1]
            assert column is not None  # uses_rollup checked the groups
            dims.append(column.label(f"g_{key}"))
    measures = [
        func.sum(u.c.requests).label("requests"),
        func.sum(u.c.prompt_tokens).label("prompt"),
        func.sum(u.c.cached_prompt_tokens).label("cached"),
        func.sum(u.c.cache_write_tokens).label("cache_write"),
        func.sum(u.c.completion_tokens).label("completion"),
        func.sum(u.c.reasoning_tokens).label("reasoning"),
        literal(0).label("max_prompt"),
        func.sum(u.c.cost_usd).label("actual_usd"),
    ]
    positions: list[ColumnElement[Any]] = [literal_column(str(i + 1)) for i in range(len(dims))]
    return (
        select(*dims, *measures)
        .where(u.c.hour >= q.period.since, u.c.hour < q.period.until, u.c.provider != "")
        .group_by(*positions)
    )


def _slice(row: Any, q: Query) -> Slice:
    m = row._mapping
    keys = tuple(
        (k, _label(k, m[f"g_{k}"], q.period.tz))
        for k in q.group_by
        if k in TIME_GROUPS or k in COLUMN_KEYS
    )
    endpoint = m["g_endpoint"] if "g_endpoint" in m else "chat"
    return Slice(
        keys=keys,
        provider=m["provider"],
        upstream_model=m["upstream_model"] or "",
        bucket=int(m["bucket"]),
        tokens=TokenSums(
            int(m["requests"]),
            int(m["prompt"]),
            int(m["cached"]),
            int(m["cache_write"]),
            int(m["completion"]),
            int(m["reasoning"]),
        ),
        actual_usd=m["actual_usd"] or Decimal(0),
        max_prompt=int(m["max_prompt"]),
        requested=m["requested"] if q.by_minute else None,
        endpoint=str(endpoint or "chat"),
        minute=_minute(m["minute"]) if q.by_minute else None,
    )


async def load_slices(engine: AsyncEngine, q: Query) -> list[Slice]:
    stmt = statement(q, engine.dialect.name)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_slice(row, q) for row in rows]

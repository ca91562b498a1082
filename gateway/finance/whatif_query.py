"""Recorded traffic summed in SQL for a what-if (`gateway whatif`): the only I/O of a replay.

Cost is linear in tokens at a fixed price, so the ledger's rows can be summed per group of
requests that share a price — served model, provider and, when any price in play has long-context
tiers, the tier bucket of the prompt — and re-priced exactly from the sums. A replay of routing
also needs the traffic minute by minute and by the name the client asked for. One `GROUP BY`
over the period's rows (on `ix_requests_created_at`) gives all of it; Python never sees a row.

Rows the gateway refused before any upstream call (no provider) cost nothing anywhere and are
left out. The actual cost is the ledger's own `cost_usd`, read through its column type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Engine,
    Select,
    case,
    event,
    func,
    literal,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from gateway.ledger.db import sync_sqlite_engine
from gateway.ledger.tables import requests_table as t

TIME_KEYS = ("hour", "day", "week", "month")
# group key → ledger column; "model" and "provider" come from the served (provider, model) pair
COLUMN_KEYS = {"team": "team", "api_key": "api_key_id", "route": "requested_model"}
GROUP_KEYS = (*TIME_KEYS, "team", "api_key", "model", "provider", "route", "endpoint")
UNATTRIBUTED = "unattributed"


@dataclass(frozen=True, slots=True)
class TokenSums:
    requests: int = 0
    prompt: int = 0
    cached: int = 0
    cache_write: int = 0
    completion: int = 0
    reasoning: int = 0

    def __add__(self, o: TokenSums) -> TokenSums:
        return TokenSums(
            self.requests + o.requests,
            self.prompt + o.prompt,
            self.cached + o.cached,
            self.cache_write + o.cache_write,
            self.completion + o.completion,
            self.reasoning + o.reasoning,
        )


@dataclass(frozen=True, slots=True)
class Slice:
    """The recorded requests that share every dimension asked for, summed."""

    keys: tuple[tuple[str, str], ...]  # (group key, value) for the keys SQL groups by
    provider: str
    upstream_model: str
    bucket: int  # long-context tier bucket of the prompt (see pricing.tiers.tier_floors)
    tokens: TokenSums
    actual_usd: Decimal
    max_prompt: int
    requested: str | None = None  # what the client asked for (a replay's input)
    endpoint: str = "chat"
    minute: datetime | None = None


@dataclass(frozen=True, slots=True)
class Query:
    since: datetime
    until: datetime
    group_by: tuple[str, ...] = ()
    floors: tuple[int, ...] = ()
    by_minute: bool = False  # a replay: also per minute, requested name and endpoint


def _time_bucket(key: str, dialect: str) -> ColumnElement[Any]:
    col = t.c.created_at
    if dialect == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC (ledger/sinks.py)
        if key == "week":
            return func.date(col, "-6 days", "weekday 1")  # the Monday on or before
        width = {"minute": 16, "hour": 13, "day": 10, "month": 7}[key]
        return func.substr(col, 1, width)
    return func.date_trunc(key, func.timezone("UTC", col))


def _label(key: str, value: Any) -> str:
    if value is None:
        return UNATTRIBUTED
    if isinstance(value, datetime):
        fmt = {"hour": "%Y-%m-%d %H:00", "month": "%Y-%m"}.get(key, "%Y-%m-%d")
        return value.strftime(fmt)
    if key == "hour":
        return f"{value}:00"
    return str(value)


def _minute(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    return datetime.strptime(str(value), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def _bucket(floors: Sequence[int]) -> ColumnElement[Any]:
    if not floors:
        return literal(0)
    whens = [(t.c.prompt_tokens > f, i + 1) for i, f in reversed(list(enumerate(floors)))]
    return case(*whens, else_=0)


def statement(q: Query, dialect: str) -> Select[Any]:
    """The one aggregate query of a what-if."""
    dims: list[ColumnElement[Any]] = [
        t.c.provider.label("provider"),
        t.c.upstream_model.label("upstream_model"),
        _bucket(q.floors).label("bucket"),
    ]
    for key in q.group_by:
        if key in TIME_KEYS:
            dims.append(_time_bucket(key, dialect).label(f"g_{key}"))
        elif key in COLUMN_KEYS:
            dims.append(t.c[COLUMN_KEYS[key]].label(f"g_{key}"))
        elif key == "endpoint":
            dims.append(t.c.endpoint.label("g_endpoint"))
    if q.by_minute:
        dims.append(_time_bucket("minute", dialect).label("minute"))
        dims.append(t.c.requested_model.label("requested"))
        if "endpoint" not in q.group_by:
            dims.append(t.c.endpoint.label("g_endpoint"))
    money = func.decimal_sum(t.c.cost_usd) if dialect == "sqlite" else func.sum(t.c.cost_usd)
    measures = [
        func.count().label("requests"),
        func.coalesce(func.sum(t.c.prompt_tokens), 0).label("prompt"),
        func.coalesce(func.sum(t.c.cached_prompt_tokens), 0).label("cached"),
        func.coalesce(func.sum(t.c.cache_write_tokens), 0).label("cache_write"),
        func.coalesce(func.sum(t.c.completion_tokens), 0).label("completion"),
        func.coalesce(func.sum(t.c.reasoning_tokens), 0).label("reasoning"),
        func.coalesce(func.max(t.c.prompt_tokens), 0).label("max_prompt"),
        # read back through the column's own type: the ledger decides how money is stored
        type_coerce(money, t.c.cost_usd.type).label("actual_usd"),
    ]
    # positional GROUP BY: the same expressions, without repeating their bound parameters
    positions: list[ColumnElement[Any]] = [literal_column(str(i + 1)) for i in range(len(dims))]
    return (
        select(*dims, *measures)
        .where(t.c.created_at >= q.since, t.c.created_at < q.until, t.c.provider.is_not(None))
        .group_by(*positions)
    )


def _slice(row: Any, q: Query) -> Slice:
    m = row._mapping
    keys = tuple(
        (k, _label(k, m[f"g_{k}"]))
        for k in q.group_by
        if k in TIME_KEYS or k in COLUMN_KEYS or k == "endpoint"
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


class _DecimalSum:
    """SQLite has no exact decimal sum (its sum() of decimal text is a float): this one is."""

    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: Any) -> None:
        if value is not None:
            self.total = (self.total or Decimal(0)) + Decimal(str(value))

    def finalize(self) -> str | None:
        return None if self.total is None else format(self.total, "f")


def _register_decimal_sum(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.create_aggregate("decimal_sum", 1, _DecimalSum)


def _sqlite_fetch(sync: Engine, stmt: Select[Any]) -> Sequence[Any]:
    with sync.connect() as conn:
        return conn.execute(stmt).all()


async def load_slices(engine: AsyncEngine, q: Query) -> list[Slice]:
    stmt = statement(q, engine.dialect.name)
    if engine.dialect.name == "sqlite":
        sync = sync_sqlite_engine(engine)
        event.listen(sync, "connect", _register_decimal_sum)
        try:
            rows = await asyncio.to_thread(_sqlite_fetch, sync, stmt)
        finally:
            sync.dispose()
    else:
        async with engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
    return [_slice(r, q) for r in rows]

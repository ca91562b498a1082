"""The report's SQL: per group (and always per provider, which savings and `local` need), the
sums and the latency and TTFT bucket counts of the ledger rows in a period.

Two sources give the same `Group`s:

- the PostgreSQL rollup `usage_hourly` (`ledger/rollup.py`), when the grouping is among
  time/team/model/provider/endpoint and every local hour of the period starts on a UTC hour —
  thousands of rows instead of millions;
- the raw `requests` rows otherwise (by key or route, SQLite, a :30 time zone), grouped by
  the same bucket index, so its answer is the same.

Time groups are truncated in the database on PostgreSQL (`date_trunc` in the zone); SQLite has
no time zones, so there rows are grouped by UTC hour and folded into local days here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.finance.period import TIME_GROUPS, Period
from gateway.ledger.rollup import BOUNDS_MS, LATENCY, NBUCKETS, TOKENS, TTFT
from gateway.ledger.tables import requests_table as r
from gateway.ledger.tables import usage_hourly_table as u

ROLLUP_GROUPS = frozenset({*TIME_GROUPS, "team", "model", "provider", "endpoint"})
REPORT_WORK_MEM = "64MB"
RAW_COLUMNS = {
    "team": r.c.team,
    "api_key": r.c.api_key_id,
    "model": r.c.upstream_model,
    "provider": r.c.provider,
    "route": r.c.requested_model,
    "endpoint": r.c.endpoint,
}


@dataclass(slots=True)
class Group:
    """One group's sums. `keys` are the group_by values as the database gave them (a time
    group: a local datetime already truncated, or on SQLite the UTC hour)."""

    keys: tuple[Any, ...]
    provider: str | None
    requests: int = 0
    errors: int = 0
    tokens: list[int] = field(default_factory=lambda: [0] * len(TOKENS))
    cost_usd: Decimal = Decimal(0)
    latency: list[int] = field(default_factory=lambda: [0] * NBUCKETS)
    ttft: list[int] = field(default_factory=lambda: [0] * NBUCKETS)

    def token(self, name: str) -> int:
        return self.tokens[TOKENS.index(name)]


@dataclass(frozen=True, slots=True)
class Fetched:
    groups: list[Group]
    local_time: bool  # time keys are already local and truncated (else UTC hours)
    source: str  # "rollup" or "raw"


def uses_rollup(dialect: str, group_by: Sequence[str], period: Period) -> bool:
    return (
        dialect == "postgresql"
        and set(group_by) <= ROLLUP_GROUPS
        and period.on_utc_hours()
        and period.whole_hour_offsets()
    )


async def fetch(
    engine: AsyncEngine, group_by: Sequence[str], period: Period, raw: bool = False
) -> Fetched:
    """The groups; `raw` reads the raw rows even where the rollup could answer."""
    dialect = engine.dialect.name
    if not raw and uses_rollup(dialect, group_by, period):
        return Fetched(await _from_rollup(engine, group_by, period), True, "rollup")
    return Fetched(await _from_raw(engine, group_by, period), dialect != "sqlite", "raw")


def _quoted(text: str) -> Any:
    # literals, not bind parameters: PostgreSQL matches a GROUP BY expression to the SELECT's
    # only when they are written the same, and two parameters are two different expressions
    return literal_column("'" + text.replace("'", "''") + "'")


def _pg_time(unit: str, ts: Any, period: Period) -> ColumnElement[Any]:
    assert unit in TIME_GROUPS
    return func.date_trunc(_quoted(unit), func.timezone(_quoted(str(period.tz.key)), ts))


def rollup_query(group_by: Sequence[str], period: Period) -> Select[Any]:
    """The rollup's query (PostgreSQL): group keys, provider, then the sums."""
    dims: list[ColumnElement[Any]] = [
        _pg_time(g, u.c.hour, period) if g in TIME_GROUPS else u.c[g] for g in group_by
    ]
    sums = [
        func.sum(u.c.requests),
        func.sum(u.c.errors),
        *(func.sum(u.c[t]) for t in TOKENS),
        func.sum(u.c.cost_usd),
        *(func.sum(u.c[h]) for h in (*LATENCY, *TTFT)),
    ]
    return (
        select(*dims, u.c.provider, *sums)
        .where(u.c.hour >= period.since, u.c.hour < period.until)
        .group_by(*dims, u.c.provider)
    )


async def _from_rollup(engine: AsyncEngine, group_by: Sequence[str], period: Period) -> list[Group]:
    async with engine.connect() as conn:
        await _roomy(conn)
        rows = (await conn.execute(rollup_query(group_by, period))).all()
    k = len(group_by)
    out = []
    for row in rows:
        keys = tuple(None if v == "" else v for v in row[:k])
        s = row[k + 1 :]
        nt = len(TOKENS)
        g = Group(keys, row[k] or None, int(s[0]), int(s[1]), [int(x) for x in s[2 : 2 + nt]])
        g.cost_usd = Decimal(s[2 + nt])
        hist = [int(x) for x in s[3 + nt :]]
        g.latency, g.ttft = hist[:NBUCKETS], hist[NBUCKETS:]
        out.append(g)
    return out


async def _roomy(conn: AsyncConnection) -> None:
    """PostgreSQL: memory to hash the groups of a wide rollup row (~1.2 kB: two histograms)
    instead of sorting them through temporary files at the default 4 MB — for this
    transaction only; a report runs off the request path, one at a time per caller."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))


def _bucket(value: Any) -> ColumnElement[int]:
    whens = [(value < b, i) for i, b in enumerate(BOUNDS_MS)]
    return case(*whens, else_=len(BOUNDS_MS))


def _raw_dims(engine: AsyncEngine, group_by: Sequence[str], period: Period) -> list[Any]:
    dims: list[Any] = []
    for g in group_by:
        if g not in TIME_GROUPS:
            dims.append(RAW_COLUMNS[g])
        elif engine.dialect.name == "sqlite":
            dims.append(func.substr(r.c.created_at, 1, 13))  # 'YYYY-MM-DD HH', UTC
        else:
            dims.append(_pg_time(g, r.c.created_at, period))
    return dims


async def _from_raw(engine: AsyncEngine, group_by: Sequence[str], period: Period) -> list[Group]:
    dims = _raw_dims(engine, group_by, period)
    k = len(dims)
    lb = _bucket(r.c.latency_ms).label("lb")
    tb = _bucket(r.c.ttft_ms).label("tb")
    in_period = (r.c.created_at >= period.since, r.c.created_at < period.until)
    sums = [
        func.count(),
        func.sum(case((r.c.status_code >= 400, 1), else_=0)),
        *(func.sum(r.c[t]) for t in TOKENS),
        func.sum(r.c.cost_usd),
    ]
    main = select(*dims, r.c.provider, lb, *sums).where(*in_period)
    main = main.group_by(*dims, r.c.provider, literal_column("lb"))
    ttft = select(*dims, r.c.provider, tb, func.count()).where(*in_period, r.c.ttft_ms.is_not(None))
    ttft = ttft.group_by(*dims, r.c.provider, literal_column("tb"))
    async with engine.connect() as conn:
        await _roomy(conn)
        rows = (await conn.execute(main)).all()
        trows = (await conn.execute(ttft)).all()
    groups: dict[tuple[Any, ...], Group] = {}
    nt = len(TOKENS)
    for row in rows:
        key = tuple(row[: k + 1])
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group(tuple(row[:k]), row[k])
        s = row[k + 2 :]
        g.requests += int(s[0])
        g.errors += int(s[1] or 0)
        for i in range(nt):
            g.tokens[i] += int(s[2 + i] or 0)
        g.cost_usd += Decimal(s[2 + nt] or 0)
        g.latency[int(row[k + 1])] += int(s[0])
    for row in trows:
        g = groups[tuple(row[: k + 1])]
        g.ttft[int(row[k + 1])] += int(row[k + 2])
    return list(groups.values())


def utc_hour(value: Any) -> datetime:
    """SQLite's 'YYYY-MM-DD HH' group value as an aware UTC datetime."""
    return datetime.strptime(str(value)[:13], "%Y-%m-%d %H").replace(tzinfo=UTC)

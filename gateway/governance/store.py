"""The database side of governance: the `teams` and `api_keys` tables, and spend as the ledger
records it (the source of truth budgets are rebuilt from).

SQLAlchemy Core over the gateway's async engine. SQLite hands datetimes back without a zone:
they are stored in UTC, so they are read back as UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.governance.records import ApiKey, Limits, Team
from gateway.ledger.tables import api_keys_table, requests_table, teams_table

K, T, R = api_keys_table.c, teams_table.c, requests_table.c


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _limits(row: Row[Any]) -> Limits:
    return Limits(row.rpm, row.tpm, row.budget_usd_day, row.budget_usd_month)


def team_from(row: Row[Any]) -> Team:
    return Team(row.name, _limits(row), utc(row.created_at), utc(row.updated_at))  # type: ignore[arg-type]


def key_from(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        key_hash=row.key_hash,
        prefix=row.prefix,
        name=row.name,
        team=row.team,
        models=None if row.models is None else frozenset(row.models),
        limits=_limits(row),
        expires_at=utc(row.expires_at),
        revoked_at=utc(row.revoked_at),
        created_at=utc(row.created_at),  # type: ignore[arg-type]
        updated_at=utc(row.updated_at),  # type: ignore[arg-type]
    )


def limit_columns(limits: Limits) -> dict[str, Any]:
    return {
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "budget_usd_day": limits.budget_usd_day,
        "budget_usd_month": limits.budget_usd_month,
    }


# --- teams ------------------------------------------------------------------------------------


async def teams_since(engine: AsyncEngine, since: datetime | None = None) -> list[Team]:
    q = select(teams_table).order_by(T.name)
    if since is not None:
        q = q.where(T.updated_at >= since)
    async with engine.connect() as conn:
        return [team_from(r) for r in (await conn.execute(q)).all()]


async def get_team(engine: AsyncEngine, name: str) -> Team | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(teams_table).where(T.name == name))).first()
    return None if row is None else team_from(row)


async def insert_team(engine: AsyncEngine, team: Team) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(teams_table).values(
                name=team.name,
                created_at=team.created_at,
                updated_at=team.updated_at,
                **limit_columns(team.limits),
            )
        )


async def update_team(engine: AsyncEngine, name: str, values: Mapping[str, Any]) -> bool:
    async with engine.begin() as conn:
        done = await conn.execute(update(teams_table).where(T.name == name).values(**values))
    return bool(done.rowcount)


async def delete_team(engine: AsyncEngine, name: str) -> bool:
    async with engine.begin() as conn:
        done = await conn.execute(delete(teams_table).where(T.name == name))
    return bool(done.rowcount)


# --- keys -------------------------------------------------------------------------------------


async def keys_since(
    engine: AsyncEngine, since: datetime | None = None, team: str | None = None
) -> list[ApiKey]:
    q = select(api_keys_table).order_by(K.created_at)
    if since is not None:
        q = q.where(K.updated_at >= since)
    if team is not None:
        q = q.where(K.team == team)
    async with engine.connect() as conn:
        return [key_from(r) for r in (await conn.execute(q)).all()]


async def get_key(engine: AsyncEngine, key_id: str) -> ApiKey | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(api_keys_table).where(K.id == key_id))).first()
    return None if row is None else key_from(row)


async def key_by_hash(engine: AsyncEngine, key_hash: str) -> ApiKey | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(api_keys_table).where(K.key_hash == key_hash))).first()
    return None if row is None else key_from(row)


async def insert_key(engine: AsyncEngine, key: ApiKey) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(api_keys_table).values(
                id=key.id,
                key_hash=key.key_hash,
                prefix=key.prefix,
                name=key.name,
                team=key.team,
                models=None if key.models is None else sorted(key.models),
                expires_at=key.expires_at,
                revoked_at=key.revoked_at,
                created_at=key.created_at,
                updated_at=key.updated_at,
                **limit_columns(key.limits),
            )
        )


async def update_key(engine: AsyncEngine, key_id: str, values: Mapping[str, Any]) -> bool:
    async with engine.begin() as conn:
        done = await conn.execute(update(api_keys_table).where(K.id == key_id).values(**values))
    return bool(done.rowcount)


async def count_keys(engine: AsyncEngine, team: str) -> int:
    async with engine.connect() as conn:
        n = await conn.scalar(
            select(func.count()).select_from(api_keys_table).where(K.team == team)
        )
    return int(n or 0)


# --- spend, from the ledger -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spend:
    """USD recorded in the ledger since the start of the UTC day and month, per key and team."""

    keys: dict[str, tuple[Decimal, Decimal]]
    teams: dict[str, tuple[Decimal, Decimal]]


async def spend(engine: AsyncEngine, day_start: datetime, month_start: datetime) -> Spend:
    """Summed by the database, exactly on both (see `Money`: picodollars on SQLite)."""

    async def by(column: Any) -> dict[str, tuple[Decimal, Decimal]]:
        today = case((R.created_at >= day_start, R.cost_usd), else_=0)
        q = (
            select(column, func.sum(today), func.sum(R.cost_usd))
            .where(R.created_at >= month_start, column.is_not(None))
            .group_by(column)
        )
        async with engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return {name: (_usd(d), _usd(m)) for name, d, m in rows}

    return Spend(await by(R.api_key_id), await by(R.team))


def _usd(value: Any) -> Decimal:
    return Decimal(str(value or 0))

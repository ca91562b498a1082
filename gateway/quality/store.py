"""The `quality_pairs` table: pairs written as they are compared, read at start and by reports.

Pairs are written one by one from the shadow task (never from a request's path); a failed
write is logged and the pair still counts in memory. At start `load_evidence` refills
`Evidence` from the newest `LOAD_LIMIT` pairs and `spent_today` gives each route's shadow
spend since 00:00 UTC, so neither the evidence nor the daily caps restart from zero.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.ledger.db import sync_sqlite_engine
from gateway.ledger.tables import quality_pairs_table as pairs
from gateway.ledger.tables import requests_table as requests
from gateway.quality.evidence import Evidence

log = logging.getLogger("gateway.quality")

LOAD_LIMIT = 200_000


class PairStore:
    """Inserts pairs. On SQLite synchronously, on the event loop, like the ledger writer
    (ledger/sinks.py): an aiosqlite transaction holds the file's write lock across an await,
    and the writer's synchronous insert then waits for it with the loop blocked — the
    transaction cannot finish, and the writer times out and journals. One row in WAL mode
    takes about a millisecond."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sync = sync_sqlite_engine(engine) if engine.dialect.name == "sqlite" else None
        self.errors = 0

    async def add(self, pair: dict[str, object]) -> None:
        try:
            if self._sync is not None:
                with self._sync.begin() as sync_conn:
                    sync_conn.execute(insert(pairs), [pair])
                return
            async with self._engine.begin() as conn:
                await conn.execute(insert(pairs), [pair])
        except (SQLAlchemyError, OSError) as e:
            self.errors += 1
            log.warning("quality pair %s not stored: %s", pair.get("id"), type(e).__name__)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.dispose()


async def load_evidence(engine: AsyncEngine, evidence: Evidence) -> int:
    """Fill `evidence` from the stored pairs; how many were read."""
    q = (
        select(pairs.c.task, pairs.c.model, pairs.c.reference, pairs.c.score, pairs.c.passed)
        .order_by(pairs.c.created_at.desc())
        .limit(LOAD_LIMIT)
    )
    async with engine.connect() as conn:
        rows = list((await conn.execute(q)).all())
    rows.reverse()  # oldest first: a score window keeps the newest
    evidence.load((r[0], r[1], r[2], float(r[3]), r[4]) for r in rows)
    return len(rows)


async def spent_today(engine: AsyncEngine, now: datetime) -> dict[str, Decimal]:
    """What shadow calls cost since 00:00 UTC, by route: the ledger's shadow rows, each
    attributed through its pair (a failed call has none: it counts under "" — in the
    evidence budget, not a route's cap)."""
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    q = (
        select(pairs.c.route, requests.c.cost_usd)
        .select_from(requests.outerjoin(pairs, pairs.c.shadow_request_id == requests.c.id))
        .where(requests.c.shadow.is_(True), requests.c.created_at >= midnight)
    )
    spent: defaultdict[str, Decimal] = defaultdict(Decimal)
    async with engine.connect() as conn:
        for route, usd in (await conn.execute(q)).all():
            spent[route or ""] += usd
    return dict(spent)

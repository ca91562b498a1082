"""PostgreSQL's hourly rollup stays exact: it answers what the raw rows answer, after
concurrent batches from several writers, replayed batches included."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from gateway.finance.period import parse_group_by, parse_period
from gateway.finance.report import build
from gateway.finance.source import fetch
from gateway.ledger import rollup
from gateway.ledger.db import create_engine
from gateway.ledger.shape import RowShape
from gateway.ledger.sinks import PostgresSink
from gateway.pricing.table import build_price_table
from tests.finance.conftest import drop_pg_database, new_pg_database
from tests.finance_support import finance_config


@pytest.fixture()
def pg() -> Iterator[str]:
    name, url = new_pg_database()
    yield url
    drop_pg_database(name)


def random_row(rng: random.Random, i: int, start: datetime) -> dict[str, Any]:
    ok = rng.random() > 0.1
    prompt = rng.randrange(1, 5000) if ok else 0
    cached = rng.randrange(0, prompt + 1) if ok else 0
    cost = Decimal(rng.randrange(0, 10**9)).scaleb(-12)
    provider = rng.choice(["local", "api", None])
    return {
        "id": f"row-{i}",
        "created_at": start + timedelta(seconds=rng.randrange(0, 3 * 86400)),
        "endpoint": rng.choice(["chat", "messages", "embeddings"]),
        "requested_model": rng.choice(["auto", "mini", "llama"]),
        "provider": provider,
        "upstream_model": None if provider is None else rng.choice(["llama-up", "mini-up"]),
        "stream": True,
        "status_code": 200 if ok else rng.choice([413, 429, 502]),
        "error_type": None,
        "prompt_tokens": prompt,
        "completion_tokens": rng.randrange(0, 2000) if ok else 0,
        "cached_prompt_tokens": cached,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "input_cost_usd": cost,
        "output_cost_usd": Decimal(0),
        "cost_usd": cost,
        "usage_estimated": False,
        "ttft_ms": rng.choice([None, round(rng.lognormvariate(5, 1), 3)]),
        "latency_ms": round(rng.lognormvariate(6.5, 1.2), 3),
        "attempts": 1,
        "api_key_id": rng.choice(["k1", "k2", None]),
        "team": rng.choice(["a", "b", None]),
    }


async def test_concurrent_batches_and_replays_keep_the_rollup_exact(pg: str) -> None:
    rng = random.Random(5)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    shape = RowShape()
    rows = [shape.fit(random_row(rng, i, start)) for i in range(3000)]
    engine = create_engine(pg)
    sinks = [PostgresSink(engine, shape, 10.0) for _ in range(4)]

    async def write(sink: PostgresSink, batches: list[list[Any]]) -> int:
        n = 0
        for b in batches:
            n += await sink.insert(b)
        return n

    # four writers at once, each inserting its share in batches of 50, then sending half of
    # its batches again (a retry, or a journal replay after a crash: those rows must not
    # count twice). Two writers never hold the same rows, as in the gateway: a journal
    # segment is replayed by the one worker that claimed it.
    plans = []
    for w in range(4):
        mine = rows[w::4]
        batches = [mine[i : i + 50] for i in range(0, len(mine), 50)]
        plans.append(batches + rng.sample(batches, len(batches) // 2))
    inserted = await asyncio.gather(*(write(s, p) for s, p in zip(sinks, plans, strict=True)))
    for s in sinks:
        await s.aclose()
    assert sum(inserted) == len(rows)
    try:
        async with engine.connect() as conn:
            kept = await conn.execute(text("SELECT * FROM usage_hourly ORDER BY 1, 2, 3, 4, 5"))
            from_raw = await conn.execute(text(rollup._pg_select("requests")))
            assert [tuple(r) for r in kept.all()] == [tuple(r) for r in from_raw.all()]
            total = await conn.execute(text("SELECT sum(requests) FROM usage_hourly"))
            assert total.scalar() == len(rows)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("group_by", ["", "day", "hour,provider", "team,model", "endpoint,week"])
async def test_the_rollup_and_the_raw_rows_give_the_same_report(pg: str, group_by: str) -> None:
    rng = random.Random(11)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    engine = create_engine(pg)
    config = finance_config(pg)
    prices = build_price_table(config)
    try:
        shape = RowShape()
        sink = PostgresSink(engine, shape, 10.0)
        await sink.insert([shape.fit(random_row(rng, i, start)) for i in range(500)])
        await sink.aclose()
        period = parse_period("2026-11-02", "2026-11-04", "Europe/Berlin")
        groups = parse_group_by(group_by)
        rolled = await fetch(engine, groups, period)
        raw = await fetch(engine, groups, period, raw=True)
        assert (rolled.source, raw.source) == ("rollup", "raw")
        a = build(rolled, groups, period, config, prices)
        b = build(raw, groups, period, config, prices)
        assert a.pop("source") != b.pop("source")
        assert a == b
        assert a["totals"]["requests"] > 400  # the period holds most of the rows
    finally:
        await engine.dispose()

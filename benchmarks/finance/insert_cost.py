"""What the rollup trigger adds to the ledger writer's inserts on PostgreSQL.

    python -m benchmarks.finance.insert_cost --admin-dsn postgresql://postgres@127.0.0.1/test

Creates a scratch database, migrates it, and inserts `--batches` batches of `--batch` rows
through the writer's own `PostgresSink` (one `INSERT … SELECT FROM unnest(…)` a batch), first
with the trigger, then without it (dropped), each into an empty `requests`; prints the
median and p95 time a batch. The scratch database is dropped at the end. SQLite has no
trigger (ledger/rollup.py), so there is nothing to measure there.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from gateway.ledger import rollup
from gateway.ledger.db import create_engine
from gateway.ledger.migrate import upgrade
from gateway.ledger.shape import RowShape, Values
from gateway.ledger.sinks import PostgresSink

TEAMS = ["search", "support", "research", "growth", "platform", "legal"]
MODELS = [("local", "llama"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku")]


def batch(rng: random.Random, shape: RowShape, n: int, first: int) -> list[Values]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        provider, model = rng.choice(MODELS)
        cost = Decimal(rng.randrange(10**6, 10**9)).scaleb(-12)
        row: dict[str, Any] = {
            "id": f"ins-{first + i}",
            "created_at": now - timedelta(seconds=rng.random() * 0.1),
            "endpoint": "chat",
            "requested_model": model,
            "provider": provider,
            "upstream_model": model,
            "stream": True,
            "status_code": 200,
            "prompt_tokens": rng.randrange(10, 4000),
            "completion_tokens": rng.randrange(10, 800),
            "cached_prompt_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 0,
            "input_cost_usd": cost,
            "output_cost_usd": Decimal(0),
            "cost_usd": cost,
            "usage_estimated": False,
            "ttft_ms": rng.lognormvariate(5, 0.6),
            "latency_ms": rng.lognormvariate(7, 0.6),
            "attempts": 1,
            "api_key_id": f"key-{rng.randrange(40)}",
            "team": rng.choice(TEAMS),
        }
        out.append(shape.fit(row))
    return out


async def timed(url: str, batches: int, size: int, first: int) -> list[float]:
    shape = RowShape()
    engine = create_engine(url)
    sink = PostgresSink(engine, shape, 30.0)
    rng = random.Random(first)
    times = []
    try:
        for b in range(batches):
            rows = batch(rng, shape, size, first + b * size)
            t0 = time.perf_counter()
            await sink.insert(rows)
            times.append(time.perf_counter() - t0)
    finally:
        await sink.aclose()
        await engine.dispose()
    return times


def summary(label: str, times: list[float], size: int) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    med = statistics.median(ms)
    return (
        f"{label}: median {med:.2f} ms a batch ({med * 1000 / size:.1f} µs a row), p95 {p95:.2f} ms"
    )


async def main_async(admin_dsn: str, batches: int, size: int) -> None:
    name = f"finance_insert_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    try:
        await asyncio.to_thread(upgrade, url)
        await timed(url, 20, size, 10**8)  # warm-up: connection, plans, caches
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        await conn.execute("TRUNCATE requests, usage_hourly")
        with_trigger = await timed(url, batches, size, 0)
        for statement in rollup.drop_ddl():
            await conn.execute(statement)
        await conn.execute("TRUNCATE requests")
        without = await timed(url, batches, size, 10**7)
        await conn.close()
        print(summary("with the rollup trigger   ", with_trigger, size))
        print(summary("without it (trigger dropped)", without, size))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--batch", type=int, default=500, help="rows a batch (the writer's default)")
    args = ap.parse_args(argv)
    asyncio.run(main_async(args.admin_dsn, args.batches, args.batch))


if __name__ == "__main__":
    main()

"""The batched writer on a real SQLite file: batching, flush on close, retry after failure."""

import asyncio
import itertools
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from gateway.ledger.db import create_engine
from gateway.ledger.migrate import upgrade
from gateway.ledger.tables import requests_table
from gateway.ledger.writer import ROW_SLICE, LedgerWriter


def _row(i: int) -> dict[str, Any]:
    return {
        "id": f"r{i}",
        "created_at": datetime.now(UTC),
        "endpoint": "chat",
        "requested_model": "m",
        "provider": "p",
        "upstream_model": "m",
        "stream": False,
        "status_code": 200,
        "error_type": None,
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "cached_prompt_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "input_cost_usd": Decimal("0.000000150"),
        "output_cost_usd": Decimal("0.0000012"),
        "cost_usd": Decimal("0.000001350"),
        "usage_estimated": False,
        "ttft_ms": None,
        "latency_ms": 1.5,
        "upstream_request_id": None,
        "route_reason": None,
        "attempts": 1,
        "api_key_id": None,
        "team": None,
    }


async def _count(url: str) -> int:
    engine = create_engine(url)
    async with engine.connect() as conn:
        n = (await conn.execute(select(func.count()).select_from(requests_table))).scalar_one()
    await engine.dispose()
    return int(n)


async def test_rows_are_batched_and_flushed_on_close(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    batches: list[int] = []
    w = LedgerWriter(engine, batch_size=100, flush_interval_s=0.05, on_written=batches.append)
    w.start()
    for i in range(250):
        w.submit(_row(i))
    await w.aclose()
    await engine.dispose()
    assert await _count(url) == 250
    assert sum(batches) == 250 and max(batches) <= 100 and len(batches) <= 5


async def test_decimal_costs_round_trip_exactly(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    w = LedgerWriter(engine, flush_interval_s=0.01)
    w.start()
    w.submit(_row(1))
    await w.aclose()
    async with engine.connect() as conn:
        cost = (await conn.execute(select(requests_table.c.cost_usd))).scalar_one()
    await engine.dispose()
    assert cost == Decimal("0.000001350")


async def test_a_failing_database_keeps_rows_until_it_is_back(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    engine = create_engine(url)  # no tables yet: inserts fail
    errors: list[None] = []
    w = LedgerWriter(engine, flush_interval_s=0.01, on_error=lambda: errors.append(None))
    w.start()
    for i in range(10):
        w.submit(_row(i))
    while not errors:
        await asyncio.sleep(0.01)
    await asyncio.to_thread(upgrade, url)  # the database comes back
    await w.aclose()
    await engine.dispose()
    assert await _count(url) == 10


async def test_a_full_queue_applies_backpressure_without_losing_rows(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    w = LedgerWriter(engine, queue_size=100, batch_size=50, flush_interval_s=0.01)
    w.start()
    for i in range(1000):  # 10x the queue, submitted without yielding
        w.submit(_row(i))
    assert w.backlog == 1000
    await w.aclose()
    await engine.dispose()
    assert await _count(url) == 1000


async def test_a_cancelled_writer_still_writes_what_it_holds(tmp_path: Path) -> None:
    """A forced shutdown cancels every task; rows queued then, and rows submitted by requests
    cleaning up after their own cancellation, still land."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    w = LedgerWriter(engine, flush_interval_s=60)  # nothing is written unless forced
    w.start()
    for i in range(150):
        w.submit(_row(i))

    async def request(i: int) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.05)  # closing its upstream, then its row
            w.submit(_row(1000 + i))

    requests = [asyncio.create_task(request(i)) for i in range(3)]
    await asyncio.sleep(0.05)
    for t in (*requests, w._task):
        assert t is not None
        t.cancel()
    await asyncio.gather(*requests, *filter(None, [w._task]), return_exceptions=True)
    await engine.dispose()
    assert await _count(url) == 153 and w.written == 153


async def test_a_big_batch_is_built_and_written_in_slices_that_let_requests_run(
    tmp_path: Path,
) -> None:
    """The writer shares the event loop with the requests: between two slices of a 500-row
    batch, other tasks run (a batch built in one go held the loop ~8 ms and set the p99)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    ticks = 0
    seen: list[int] = []  # the ticker's count when each row was built

    def prepare(item: Any) -> dict[str, Any]:
        seen.append(ticks)
        return dict(item)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    w = LedgerWriter(engine, batch_size=500, flush_interval_s=0.01, prepare=prepare)
    for i in range(500):
        w.submit(_row(i))
    tick = asyncio.create_task(ticker())
    w.start()
    await w.aclose()
    tick.cancel()
    await engine.dispose()
    assert await _count(url) == 500
    runs = [len(list(g)) for _, g in itertools.groupby(seen)]  # rows built without a yield
    assert max(runs) <= ROW_SLICE and len(runs) >= 500 // ROW_SLICE

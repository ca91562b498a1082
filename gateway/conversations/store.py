"""The response store: `store: true` Responses kept in the `responses` table, read back for
`previous_response_id` and `GET /v1/responses/{id}`, deleted, and purged after their retention.

What a request waits for, and what it does not:
- Reading the previous response of a chain is on the request's path (nothing can be sent
  upstream without it): one primary-key SELECT, or no query at all while the record is still
  pending in this process.
- Writing is not: `save()` puts the record in an in-memory `pending` map and a queue, and a
  writer task inserts what has accumulated every `flush_interval_s` in one transaction.
  The codec calls `save()` when the Response is final, before its last byte is sent, so a
  follow-up request to the same process finds it in `pending` — read-your-writes without a
  round trip. A follow-up that lands on another worker (`--workers N`) finds it in the table
  once the writer has flushed (within ~`flush_interval_s`): a miss on an id this gateway
  issued in the last few seconds re-reads a few times over ~0.3 s before it is a 404.
- The purge deletes expired rows in small batches from a background task, so it never holds
  the database (or, on SQLite, the event loop) for more than one batch.

On SQLite every statement runs synchronously on the event loop through the stdlib driver,
as the ledger writer does (see `ledger/sinks.py` for why: aiosqlite's thread grew memory
without bound under uvloop); a primary-key read there takes tens of microseconds. On
PostgreSQL they go through the async engine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core import StoredResponse
from gateway.ledger.db import sync_sqlite_engine
from gateway.ledger.tables import responses_table as t

log = logging.getLogger("gateway.responses")

PURGE_BATCH = 500
RECENT_S = 5.0  # an id this gateway issued this recently may still be in another worker's queue
RECHECKS = (0.02, 0.05, 0.1, 0.15)  # seconds between the re-reads of such an id
GONE_MEMORY = 4096  # recently deleted ids remembered


def issued_at(response_id: str) -> float | None:
    """When this gateway issued `response_id` (`resp_` + the request id, whose first 12 hex
    digits are milliseconds since the epoch), or None for another issuer's id."""
    if not response_id.startswith("resp_") or len(response_id) != 37:
        return None
    try:
        return int(response_id[5:17], 16) / 1000
    except ValueError:
        return None


def _row(rec: StoredResponse) -> dict[str, Any]:
    response = {k: v for k, v in rec.response.items() if k != "output"}
    return {
        "id": rec.id,
        "created_at": datetime.fromtimestamp(rec.created_at, UTC),
        "team": rec.team,
        "api_key_id": rec.api_key_id,
        "model": rec.model,
        "previous_response_id": rec.previous_response_id,
        "status": rec.status,
        "context": orjson.dumps(rec.context).decode(),
        "input": orjson.dumps(rec.input).decode(),
        "output": orjson.dumps(rec.output).decode(),
        "response": orjson.dumps(response).decode(),
    }


def _record(m: Any) -> StoredResponse:
    output = orjson.loads(m["output"])
    response = orjson.loads(m["response"])
    response["output"] = output
    created = m["created_at"]
    if created.tzinfo is None:  # SQLite keeps no offset: the value was written in UTC
        created = created.replace(tzinfo=UTC)
    return StoredResponse(
        id=m["id"],
        created_at=created.timestamp(),
        team=m["team"],
        model=m["model"],
        previous_response_id=m["previous_response_id"],
        status=m["status"],
        context=orjson.loads(m["context"]),
        input=orjson.loads(m["input"]),
        output=output,
        response=response,
        api_key_id=m["api_key_id"],
    )


class ResponseStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        retention_days: float = 30,
        purge_interval_s: float = 3600,
        flush_interval_s: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._sync: Engine | None = None
        if engine.dialect.name == "sqlite":
            self._sync = sync_sqlite_engine(engine)
        self._retention = timedelta(days=retention_days)
        self._purge_interval = purge_interval_s
        self._flush_interval = flush_interval_s
        self._clock = clock
        self._pending: dict[str, StoredResponse] = {}
        self._queue: list[StoredResponse] = []
        self._writing: set[str] = set()  # ids in the batch being inserted right now
        self._deleted: set[str] = set()  # deleted while being inserted: delete again after
        self._gone: dict[str, None] = {}  # recently deleted here: a miss needs no re-read
        self._closing = asyncio.Event()
        # set by `save` (and closing): an idle writer sleeps instead of waking every interval
        self._queued = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- the request's side -----------------------------------------------------------------

    def save(self, rec: StoredResponse) -> None:
        """Keep `rec`: visible to this process at once, written by the writer task."""
        self._pending[rec.id] = rec
        self._queue.append(rec)
        self._queued.set()

    async def load(self, response_id: str, team: str | None) -> StoredResponse | None:
        """The stored response visible to `team`, or None (unknown, deleted, another team's)."""
        rec = self._pending.get(response_id)
        if rec is None:
            rec = await self._select(response_id)
        if rec is None and response_id not in self._gone:
            issued = issued_at(response_id)
            if issued is not None and self._clock() - issued < RECENT_S:
                for pause in RECHECKS:  # another worker may not have flushed it yet
                    await asyncio.sleep(pause)
                    rec = self._pending.get(response_id) or await self._select(response_id)
                    if rec is not None:
                        break
        if rec is None or rec.team != team:
            return None
        return rec

    async def delete(self, response_id: str, team: str | None) -> bool:
        if await self.load(response_id, team) is None:
            return False
        self._pending.pop(response_id, None)
        self._queue = [r for r in self._queue if r.id != response_id]
        if response_id in self._writing:
            self._deleted.add(response_id)
        self._gone[response_id] = None
        if len(self._gone) > GONE_MEMORY:
            del self._gone[next(iter(self._gone))]
        await self._delete([response_id])
        return True

    async def _delete(self, ids: list[str]) -> None:
        statement = delete(t).where(t.c.id.in_(ids))
        if self._sync is not None:
            with self._sync.begin() as conn:
                conn.execute(statement)
        else:
            async with self._engine.begin() as conn:
                await conn.execute(statement)

    async def _select(self, response_id: str) -> StoredResponse | None:
        query = select(t).where(t.c.id == response_id)
        if self._sync is not None:
            with self._sync.connect() as conn:
                row = conn.execute(query).first()
        else:
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).first()
        return None if row is None else _record(row._mapping)

    # --- background: writer and purge -------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._write_forever(), name="responses-writer"),
            asyncio.create_task(self._purge_forever(), name="responses-purge"),
        ]

    async def _write_forever(self) -> None:
        while not self._closing.is_set():
            await self._queued.wait()
            try:  # gather what else arrives within the interval (closing cuts it short)
                await asyncio.wait_for(self._closing.wait(), self._flush_interval)
            except TimeoutError:
                pass
            self._queued.clear()
            await self.flush()
            if self._queue:  # the batch failed and was queued again: retry next interval
                self._queued.set()

    async def flush(self) -> None:
        """Write what is queued; a failed batch stays queued (and pending) for the next try."""
        batch, self._queue = self._queue, []
        if not batch:
            return
        rows = [_row(r) for r in batch]
        self._writing = {r.id for r in batch}
        try:
            if self._sync is not None:
                with self._sync.begin() as conn:
                    conn.execute(t.insert(), rows)
            else:
                async with self._engine.begin() as conn:
                    await conn.execute(t.insert(), rows)
        except Exception as e:
            log.warning("could not store %d responses (%s); retrying", len(batch), e)
            self._queue = batch + self._queue
            return
        finally:
            self._writing = set()
        for r in batch:
            if self._pending.get(r.id) is r:
                del self._pending[r.id]
        if self._deleted:  # deleted while this batch was on its way in
            gone, self._deleted = list(self._deleted), set()
            await self._delete(gone)

    async def _purge_forever(self) -> None:
        while not self._closing.is_set():
            try:
                await asyncio.wait_for(self._closing.wait(), self._purge_interval)
            except TimeoutError:
                pass
            else:
                return
            try:
                await self.purge()
            except Exception:
                log.exception("purging expired responses failed")

    async def purge(self) -> int:
        """Delete responses older than the retention, a batch at a time; how many went."""
        cutoff = datetime.fromtimestamp(self._clock(), UTC) - self._retention
        expired = select(t.c.id).where(t.c.created_at < cutoff).limit(PURGE_BATCH)
        statement = delete(t).where(t.c.id.in_(expired.scalar_subquery()))
        total = 0
        while True:
            if self._sync is not None:
                with self._sync.begin() as conn:
                    n = conn.execute(statement).rowcount
            else:
                async with self._engine.begin() as conn:
                    n = (await conn.execute(statement)).rowcount
            total += n
            if n < PURGE_BATCH:
                return total
            await asyncio.sleep(0)  # requests run between batches

    async def aclose(self) -> None:
        self._closing.set()
        self._queued.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, 10)
            except Exception:
                task.cancel()
        await self.flush()
        if self._sync is not None:
            self._sync.dispose()

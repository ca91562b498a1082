"""The batched ledger writer: requests put rows on a bounded queue; one task inserts them.

Nothing on a request's path waits for the database: `submit()` is a non-blocking put of the
request's facts (turned into a row by `prepare`, in the writer's task), and when
the queue is full the row is handed to a task that waits for room (back-pressure on the writer's
backlog, never a lost row). Rows are inserted with one executemany per batch — every
`flush_interval_ms` or `batch_size` rows, whichever comes first — and a batch that fails is kept
and retried with back-off. `aclose()` drains the queue before returning (graceful shutdown);
a cancelled writer (forced shutdown) still makes one last attempt to write what it holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.ledger.db import sync_sqlite_engine
from gateway.ledger.tables import Money, requests_table

log = logging.getLogger("gateway.ledger")

Row = dict[str, Any]
# The writer runs on the event loop, so its longest uninterrupted step is added to the latency
# of every request waiting behind it: that step sets the p99. Rows are built (priced, metered,
# encoded: ~17 µs each) and written to SQLite (~6.5 µs each, one transaction per chunk) in
# slices, yielding in between, so no step holds the loop much over a millisecond — a whole
# 500-row batch built at once held it ~8 ms. Measured 2026-12-06.
ROW_SLICE = 64  # rows built between two yields (≈1 ms)
SQLITE_CHUNK = 64  # rows per synchronous SQLite transaction (≈0.4 ms)


class DriverInsert:
    """The ledger INSERT as driver SQL, and rows as tuples in its parameter order.

    Executing it with `exec_driver_sql` skips SQLAlchemy's per-row compilation and type
    processing, which cost ~13 µs a row on the event loop — at 6,000 req/s an eighth of a core.
    The conversions SQLAlchemy would have made are done here: on SQLite, money as decimal text
    (see `Money`) and datetimes in SQLAlchemy's own SQLite format so ORM reads parse them.
    """

    def __init__(self, dialect: Dialect) -> None:
        compiled = requests_table.insert().compile(dialect=dialect)
        assert compiled.positiontup is not None, "positional paramstyles only (qmark, $n)"
        self.sql = str(compiled)
        self.columns = list(compiled.positiontup)
        types = {c.name: c.type for c in requests_table.columns}
        sqlite = dialect.name == "sqlite"
        self._money = [
            i for i, c in enumerate(self.columns) if sqlite and isinstance(types[c], Money)
        ]
        self._datetimes = [
            i for i, c in enumerate(self.columns) if sqlite and isinstance(types[c], DateTime)
        ]

    def params(self, row: Row) -> tuple[Any, ...]:
        values = [row[c] for c in self.columns]
        for i in self._money:
            v = values[i]
            if v is not None:
                values[i] = format(Decimal(v), "f")
        for i in self._datetimes:
            v = values[i]
            if isinstance(v, datetime):
                values[i] = v.strftime("%Y-%m-%d %H:%M:%S.%f")
        return tuple(values)


class LedgerWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        queue_size: int = 50_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.1,
        on_written: Callable[[int], None] | None = None,
        on_error: Callable[[], None] | None = None,
        prepare: Callable[[Any], Row] | None = None,
    ) -> None:
        self._engine = engine
        self._insert_sql = DriverInsert(engine.dialect)
        # SQLite is written synchronously, in small transactions, on the event loop itself:
        # with aiosqlite's thread (or any writer thread) under uvloop the process grew ~1 MB/s
        # without bound at ~7,000 req/s (105 → 133 MiB in 30 s; the same load on PostgreSQL,
        # or on the stdlib loop, stayed flat), while a WAL-mode insert of 100 rows takes about
        # a millisecond — a bounded stall, yielded between chunks. Measured 2026-11-25; the
        # cause (uvloop's cross-thread wake-ups?) was not pinned down.
        self._sync: Engine | None = None
        if engine.dialect.name == "sqlite":
            self._sync = sync_sqlite_engine(engine)
        self._prepare = prepare or (lambda item: item)
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._on_written = on_written or (lambda n: None)
        self._on_error = on_error or (lambda: None)
        self._task: asyncio.Task[None] | None = None
        self._waiters: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()  # set by aclose(); also wakes the sleeping writer
        self._unwritten: list[tuple[Any, ...]] = []
        self._unbuilt: list[Any] = []  # items of the current batch whose rows are not built yet
        self.written = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    @property
    def backlog(self) -> int:
        return self._queue.qsize() + len(self._waiters)

    def submit(self, item: Any) -> None:
        """Queue one item; `prepare` turns it into a row later, in the writer's task."""
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            t = asyncio.create_task(self._queue.put(item))
            self._waiters.add(t)
            t.add_done_callback(self._waiters.discard)

    async def _run(self) -> None:
        try:
            await self._drain_forever()
        except asyncio.CancelledError:
            # A forced shutdown — a second Ctrl-C makes uvicorn skip the lifespan's shutdown,
            # then the event loop cancels every task — must not lose the queued rows, nor the
            # 499 rows the cancelled requests are recording right now.
            await self._last_flush()
            raise

    async def _last_flush(
        self, quiet_s: float = 0.1, settle_s: float = 1.0, insert_timeout_s: float = 5.0
    ) -> None:
        # the cancelled requests' cleanup submits their rows: wait until the queue has been
        # still for `quiet_s` (at most `settle_s`)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settle_s
        seen, still_since = self._queue.qsize(), loop.time()
        while loop.time() - still_since < quiet_s and loop.time() < deadline:
            await asyncio.sleep(0.01)
            if self._queue.qsize() != seen:
                seen, still_since = self._queue.qsize(), loop.time()
        items = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        # the interrupted batch's rest first
        rows = self._unwritten + self._rows(self._unbuilt) + self._rows(items)
        self._unbuilt = []
        total = len(rows)
        try:
            if self._sync is not None:
                while rows:
                    del rows[: self._insert_some(rows)]
            elif rows:
                await asyncio.wait_for(self._insert_all(rows), insert_timeout_s)
                rows = []
        except Exception as e:
            log.error(
                "forced shutdown: %d ledger rows could not be written (%s)",
                len(rows),
                type(e).__name__,
            )
        self.written += total - len(rows)
        self._on_written(total - len(rows))

    async def _drain_forever(self) -> None:
        # Sleep, then drain what arrived: waking per row (a wait_for per queue item) cost
        # ~20 µs of event-loop time a request under load, a sixth of the throughput.
        while True:
            if self._queue.qsize() < self._batch_size and not self._closing.is_set():
                try:  # a long flush interval must not delay exit
                    await asyncio.wait_for(self._closing.wait(), self._interval)
                except TimeoutError:
                    pass
            batch: list[Any] = []
            while len(batch) < self._batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            if batch:
                self._unwritten, self._unbuilt = [], batch  # `_insert` empties it as rows land
                while self._unbuilt:
                    piece, self._unbuilt = self._unbuilt[:ROW_SLICE], self._unbuilt[ROW_SLICE:]
                    self._unwritten += self._rows(piece)
                    await asyncio.sleep(0)
                await self._insert(self._unwritten)
            elif self._closing.is_set() and not self._waiters:
                return
            else:
                await asyncio.sleep(0)  # let waiting puts land

    def _rows(self, batch: list[Any]) -> list[tuple[Any, ...]]:
        rows = []
        params = self._insert_sql.params
        for item in batch:
            try:
                rows.append(params(self._prepare(item)))
            except Exception:  # a bug in pricing/metrics must not take the batch down with it
                log.exception("could not build a ledger row; item dropped: %r", item)
        return rows

    async def _insert(self, batch: list[tuple[Any, ...]]) -> None:
        delay = 0.1
        while batch:
            try:
                if self._sync is not None:
                    n = self._insert_some(batch)
                else:
                    n = await self._insert_all(batch)
            except Exception as e:  # the database is away or refused: keep the rows, retry
                self._on_error()
                log.warning(
                    "ledger insert of %d rows failed (%s); retrying in %.1fs",
                    len(batch),
                    type(e).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            del batch[:n]
            self.written += n
            self._on_written(n)
            await asyncio.sleep(0)  # let requests run between SQLite chunks

    def _insert_some(self, batch: list[tuple[Any, ...]]) -> int:
        assert self._sync is not None
        chunk = batch[:SQLITE_CHUNK]
        with self._sync.begin() as conn:
            conn.exec_driver_sql(self._insert_sql.sql, chunk)
        return len(chunk)

    async def _insert_all(self, batch: list[tuple[Any, ...]]) -> int:
        async with self._engine.begin() as conn:
            await conn.exec_driver_sql(self._insert_sql.sql, batch)
        return len(batch)

    async def aclose(self, timeout_s: float = 30.0) -> None:
        """Flush every queued row, then stop."""
        self._closing.set()
        if self._waiters:
            await asyncio.gather(*list(self._waiters), return_exceptions=True)
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout_s)
            except TimeoutError:
                log.error(
                    "ledger writer did not flush within %ss; %d rows unwritten",
                    timeout_s,
                    self._queue.qsize(),
                )
                self._task.cancel()
        if self._sync is not None:
            self._sync.dispose()

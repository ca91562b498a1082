"""The batched ledger writer: requests put rows on a bounded queue; one task inserts them.

Nothing on a request's path waits for the database: `submit()` is a non-blocking put of the
request's facts (turned into a row by `prepare`, in the writer's task), and when
the queue is full the row is handed to a task that waits for room (back-pressure on the writer's
backlog, never a lost row). Rows are inserted with one executemany per batch — every
`flush_interval_ms` or `batch_size` rows, whichever comes first — and a batch that fails is kept
and retried with back-off. `aclose()` drains the queue before returning (graceful shutdown).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.ledger.tables import requests_table

log = logging.getLogger("gateway.ledger")

Row = dict[str, Any]


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
        self._prepare = prepare or (lambda item: item)
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._on_written = on_written or (lambda n: None)
        self._on_error = on_error or (lambda: None)
        self._task: asyncio.Task[None] | None = None
        self._waiters: set[asyncio.Task[None]] = set()
        self._closing = False
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
        while not (self._closing and self._queue.empty() and not self._waiters):
            try:
                first = await asyncio.wait_for(self._queue.get(), timeout=self._interval)
            except asyncio.TimeoutError:
                continue
            batch = [first]
            # Let a burst accumulate for up to one interval so inserts stay large.
            deadline = asyncio.get_running_loop().time() + self._interval
            while len(batch) < self._batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or self._closing:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            await self._insert(self._rows(batch))

    def _rows(self, batch: list[Any]) -> list[Row]:
        rows = []
        for item in batch:
            try:
                rows.append(self._prepare(item))
            except Exception:  # a bug in pricing/metrics must not take the batch down with it
                log.exception("could not build a ledger row; item dropped: %r", item)
        return rows

    async def _insert(self, batch: list[Row]) -> None:
        if not batch:
            return
        delay = 0.1
        while True:
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(requests_table.insert(), batch)
            except Exception as e:  # the database is away or refused: keep the rows, retry
                self._on_error()
                log.warning("ledger insert of %d rows failed (%s); retrying in %.1fs",
                            len(batch), type(e).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.written += len(batch)
            self._on_written(len(batch))
            return

    async def aclose(self, timeout_s: float = 30.0) -> None:
        """Flush every queued row, then stop."""
        self._closing = True
        if self._waiters:
            await asyncio.gather(*list(self._waiters), return_exceptions=True)
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout_s)
            except asyncio.TimeoutError:
                log.error("ledger writer did not flush within %ss; %d rows unwritten",
                          timeout_s, self._queue.qsize())
                self._task.cancel()

"""The ledger writer's intake: `submit` (the only part on a request's path) and the task that
turns submitted items into fitted rows, journals them when it must, and hands them to the
database task (`database_task.py`); in `sync` mode, the responses waiting on `durable`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.ledger.journal import JournalError
from gateway.ledger.pieces import Piece, item_key
from gateway.ledger.writer_base import WriterBase

log = logging.getLogger("gateway.ledger")

# The writer runs on the event loop, so its longest uninterrupted step is added to the latency
# of every request waiting behind it: that step sets the p99. Rows are built (priced, metered,
# encoded: ~17 µs each) in slices, yielding in between — a whole 500-row batch built at once
# held the loop ~8 ms. A request needs several turns of the loop, and each turn can meet one
# slice, so a request overlapping a flush pays one slice per hop: at 10 concurrent, 64-row
# slices (≈1 ms) put the p99 at ~9 ms, 16-row slices at ~6-7 ms (same run, noisy: 2 runs each).
ROW_SLICE = 16  # rows built between two yields (≈0.3 ms)


class Intake(WriterBase):
    """The intake side of `LedgerWriter` (not used on its own)."""

    # --- the request path ----------------------------------------------------------------------

    def submit(self, item: Any) -> None:
        """Hand over one request's facts; never waits (`prepare` makes the row later)."""
        if self._sync:
            self._durable[item_key(item)] = asyncio.get_running_loop().create_future()
            self._wake.set()
        elif not self._items:
            self._wake.set()  # the first row after a quiet spell: the intake sleeps till then
        if len(self._items) < self._limit:
            self._items.append(item)
        else:
            self._overflow(item)

    async def durable(self, key: str) -> bool:
        """`sync` mode: wait until the row of request `key` is fsynced in the journal (at once
        when there is no such row pending). False when it could not be."""
        fut = self._durable.get(key)
        if fut is None:
            return True
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.config.sync_timeout_ms / 1000)
        except TimeoutError:
            log.error("ledger: row %s not fsynced within sync_timeout_ms", key)
            return False

    def _overflow(self, item: Any) -> None:
        # memory is full: this row goes to the journal now, from the request's own task
        values = self._build(item)
        seg = None
        if values is not None:
            try:
                seg = self.journal.append([values])
            except JournalError as e:
                self.status.journal_failed(e)
                self.status.drop(1, "memory is full and the journal refused it")
        if seg is None:
            self._resolve([item_key(item)], False)
            return
        self.journal.mark_dirty(seg)
        self.status.journaled_rows(1)
        if self._sync:
            self._overflow_keys.append(item_key(item))  # durable at the intake's next fsync

    # --- the intake task -----------------------------------------------------------------------

    async def _next_items(self) -> list[Any] | None:
        if self._sync:
            while not self._items and not self._overflow_keys and not self._closing:
                self._wake.clear()
                await self._wake.wait()
            limit = len(self._items)  # group commit: everything that arrived during the fsync
        else:
            if not self._items and not self._closing:
                self._wake.clear()  # idle: no wake-up every interval, only at the next row
                await self._wake.wait()
            if len(self._items) < self.config.batch_size and not self._closing:
                try:  # a long flush interval must not delay exit
                    await asyncio.wait_for(self._closed.wait(), self._interval)
                except TimeoutError:
                    pass
            limit = self.config.batch_size
        if not self._items and not self._overflow_keys and self._closing:
            return None
        return [self._items.popleft() for _ in range(min(limit, len(self._items)))]

    async def _intake(self) -> None:
        try:
            while (items := await self._next_items()) is not None:
                await self._take_in(items)
        finally:
            self._intake_done.set()
            self._rows.ready.set()

    async def _take_in(self, items: list[Any]) -> None:
        keys, self._overflow_keys = self._overflow_keys, []
        if self._sync:
            keys += [item_key(i) for i in items]
        rows = self._building = []
        self._unbuilt = items
        while self._unbuilt:
            piece, self._unbuilt = self._unbuilt[:ROW_SLICE], self._unbuilt[ROW_SLICE:]
            rows += [v for v in map(self._build, piece) if v is not None]
            if self._unbuilt:
                await asyncio.sleep(0)  # let requests run between slices
        behind = self._rows.would_overflow(len(rows))
        segment, durable = None, False
        if rows and (self._journal_always or self._outage or behind):
            segment = self._append(rows)
        if segment is not None or keys:
            durable = await self._fsync() and (segment is not None or not rows)
        self._resolve(keys, durable)
        self._building = []
        if not rows:
            return
        if segment is not None and (self._outage or behind):
            self.journal.mark_dirty(segment)  # the file carries them; memory lets go
            self.status.spilled()
        elif segment is None and (self._outage or behind) and self.status.journal_error:
            self._hold(rows)  # nowhere safe to put them: memory, up to a hard limit
        else:
            self._rows.put(Piece(segment, rows))
        self._rows.ready.set()

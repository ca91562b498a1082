"""The ledger writer: requests hand over their facts; two tasks make them rows that last.

    submit(item) ─► items (bounded deque) ─► intake ──► rows (bounded) ─► database task ─► DB
                         │ full                  │ journal / sync / outage        ▲
                         └──────────────► journal segments (fsynced) ── replay ───┘

- `submit()` is the only thing on a request's path: an append to a bounded deque. When the
  deque is full the row is built and appended to the journal right there (a write to the page
  cache, no fsync) — memory stays bounded and no task waits for room.
- The intake task turns items into fitted rows (`prepare`, then `RowShape.fit`), every
  `flush_interval_ms` (`sync`: as soon as any arrive). It journals them first when the mode
  is `journal` or `sync`, during an outage, or when the database task is too far behind; in
  `sync` it then releases the responses waiting for those rows (`durable`).
- The database task inserts rows idempotently, bisecting out and dead-lettering the rows the
  database refuses (`deliver.py`). When the database is away (or times out) for
  `journal_after_ms`, the rows go to the journal and the writer is in *outage*: new rows go
  straight to the journal while the task replays the journal with back-off; the outage ends
  when the journal has nothing left to replay. Segments dead processes left are replayed too.

Nothing waits without bound: statements have `insert_timeout_s`, retries back off, shutdown
sends what the database will not take to the journal. `health()` says whether rows are
stuck (for /health/ready) and `aclose()` logs the true counts.

Where each part is: `intake.py` (`submit`, the intake task), `database_task.py` (inserts,
outage, replay), `writer_base.py` (the state and steps both share); this module starts and
stops them, and flushes what it can at a forced shutdown.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.ledger.database_task import DatabaseTask
from gateway.ledger.deliver import DatabaseAway, deliver
from gateway.ledger.health import LedgerHealth, assess
from gateway.ledger.intake import ROW_SLICE, Intake
from gateway.ledger.pieces import Piece, item_time

__all__ = ["ROW_SLICE", "LedgerWriter"]

log = logging.getLogger("gateway.ledger")


class LedgerWriter(Intake, DatabaseTask):
    """The writer: `WriterBase`'s state, `Intake`'s task and `DatabaseTask`'s, started and
    stopped together."""

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Open the journal (claiming what dead processes left) and start the tasks."""
        try:
            self.journal.open()
        except (OSError, ValueError) as e:
            raise RuntimeError(
                f"ledger.journal_dir: cannot use {self.journal.directory} ({e})"
            ) from e
        self._tasks = [
            asyncio.create_task(self._intake(), name="ledger-intake"),
            asyncio.create_task(self._database(), name="ledger-database"),
        ]
        self._task = asyncio.create_task(self._supervise(), name="ledger-writer")
        if self.schema is not None:
            self.schema.start()

    async def _supervise(self) -> None:
        try:
            await asyncio.gather(*self._tasks)
        except asyncio.CancelledError:
            # A forced shutdown (a second Ctrl-C makes uvicorn skip the lifespan's shutdown,
            # then the loop cancels every task) must not lose the rows in memory, nor the 499
            # rows the cancelled requests are recording right now.
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._last_flush()
            raise

    async def aclose(self, timeout_s: float = 30.0) -> None:
        """Write or journal every row held, then stop; log what became of them."""
        self._closing = True
        self._closed.set()
        self._wake.set()
        self._rows.ready.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                log.error("ledger writer did not finish within %ss; forcing", timeout_s)
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        self._resolve(list(self._durable), False)
        if self.schema is not None:
            await self.schema.aclose()
        await self.journal.aclose()
        await self.sink.aclose()
        self.status.log_summary(self.journal.stats().rows, self.journal.directory, self.backlog)

    # --- forced shutdown -----------------------------------------------------------------------

    async def _last_flush(
        self, quiet_s: float = 0.1, settle_s: float = 1.0, insert_timeout_s: float = 5.0
    ) -> None:
        if self._flushed_at_exit:
            return
        self._flushed_at_exit = True
        # the cancelled requests' cleanup submits their rows: wait until no more arrive for
        # `quiet_s` (at most `settle_s`)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settle_s
        seen, still_since = len(self._items), loop.time()
        while loop.time() - still_since < quiet_s and loop.time() < deadline:
            await asyncio.sleep(0.01)
            if len(self._items) != seen:
                seen, still_since = len(self._items), loop.time()
        pieces = self._rows.drain()
        if self._building:
            pieces.append(Piece(None, self._building))
        # the interrupted batch's rest first
        unbuilt = [*self._unbuilt, *self._items]
        pieces.append(Piece(None, [v for v in map(self._build, unbuilt) if v is not None]))
        self._items.clear()
        self._building, self._unbuilt = [], []
        rows = [r for p in pieces for r in p.rows]
        try:
            d = await asyncio.wait_for(deliver(self.sink, self.shape, rows), insert_timeout_s)
            self._settle(pieces, d)
        except (DatabaseAway, TimeoutError) as e:
            if isinstance(e, DatabaseAway):
                self._settle(pieces, e.delivery)
            self._spill(pieces)
            await self._fsync()
            log.error(
                "forced shutdown: the database did not take the last rows (%s); "
                "they are in the journal %s",
                e,
                self.journal.directory,
            )

    # --- state ---------------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Rows held in memory (journaled or not), not yet in the database."""
        return len(self._items) + len(self._unbuilt) + len(self._building) + self._rows.rows

    def unsafe(self) -> tuple[int, float | None]:
        """Rows that exist only in memory (in neither the database nor the journal), and the
        wall-clock time of the oldest of them."""
        n, times = self._rows.unsafe()
        n += len(self._items) + len(self._unbuilt) + len(self._building)
        for waiting in (self._unbuilt, self._items):
            if waiting and (t := item_time(waiting[0])) is not None:
                times.append(t)
        if self._building:
            times.append(self._building[0][self.shape.created_index].timestamp())
        return n, min(times, default=None)

    def health(self) -> LedgerHealth:
        return assess(self)

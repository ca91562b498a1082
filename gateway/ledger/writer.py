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
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import LedgerConfig
from gateway.ledger.db import database_identity
from gateway.ledger.deliver import DatabaseAway, Delivery, deliver
from gateway.ledger.health import LedgerHealth, assess
from gateway.ledger.journal import Journal, JournalError
from gateway.ledger.pieces import Piece, RowBuffer, item_key, item_time
from gateway.ledger.schema import SchemaCheck
from gateway.ledger.segment import Segment
from gateway.ledger.shape import RowShape, Values
from gateway.ledger.sinks import Sink, create_sink
from gateway.ledger.status import LedgerHooks, LedgerStatus

log = logging.getLogger("gateway.ledger")

# The writer runs on the event loop, so its longest uninterrupted step is added to the latency
# of every request waiting behind it: that step sets the p99. Rows are built (priced, metered,
# encoded: ~17 µs each) in slices, yielding in between — a whole 500-row batch built at once
# held the loop ~8 ms. A request needs several turns of the loop, and each turn can meet one
# slice, so a request overlapping a flush pays one slice per hop: at 10 concurrent, 64-row
# slices (≈1 ms) put the p99 at ~9 ms, 16-row slices at ~6-7 ms (same run, noisy: 2 runs each).
ROW_SLICE = 16  # rows built between two yields (≈0.3 ms)
CLAIM_EVERY_S = 5.0  # how often segments of dead sibling workers are looked for


class LedgerWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        config: LedgerConfig | None = None,
        *,
        journal_dir: Path | None = None,
        prepare: Callable[[Any], dict[str, Any]] | None = None,
        hooks: LedgerHooks | None = None,
        check_schema: bool = False,
    ) -> None:
        self.config = c = config or LedgerConfig()
        self.shape = RowShape()
        self.sink: Sink = create_sink(engine, self.shape, c.insert_timeout_s)
        url = engine.url.render_as_string(hide_password=False)
        self.journal = Journal(
            journal_dir or c.journal_path(url),
            self.shape,
            database_identity(url),
            max_bytes=int(c.journal_max_mb * 2**20),
            segment_bytes=int(c.journal_segment_mb * 2**20),
        )
        # `serve` may start while the database is away: its schema is verified when it answers
        self.schema = SchemaCheck(url) if check_schema else None
        self._prepare = prepare or (lambda item: item)
        self.status = LedgerStatus(hooks, journal_always=c.durability != "async")
        self._sync = c.durability == "sync"
        self._journal_always = c.durability != "async"
        self._interval = c.flush_interval_ms / 1000
        self._limit = c.queue_size
        self._items: deque[Any] = deque()
        self._rows = RowBuffer(c.queue_size, self.shape.created_index)
        self._unbuilt: list[Any] = []  # items of the intake's batch not yet made rows
        self._building: list[Values] = []  # the intake's current batch, until handed on
        self._wake = asyncio.Event()  # items arrived (sync mode) or closing
        self._durable: dict[str, asyncio.Future[bool]] = {}
        self._overflow_keys: list[str] = []
        self._outage = False
        self._closing = False
        self._closed = asyncio.Event()  # wakes back-off sleeps at shutdown
        self._tasks: list[asyncio.Task[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._intake_done = asyncio.Event()
        self._flushed_at_exit = False

    # --- the request path ----------------------------------------------------------------------

    def submit(self, item: Any) -> None:
        """Hand over one request's facts; never waits (`prepare` makes the row later)."""
        if self._sync:
            self._durable[item_key(item)] = asyncio.get_running_loop().create_future()
            self._wake.set()
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

    def _build(self, item: Any) -> Values | None:
        try:
            values = self.shape.fit(self._prepare(item))
        except Exception:  # a bug in pricing/metrics must not take the batch down with it
            log.exception("could not build a ledger row; item dropped: %r", item)
            self.status.drop(1, "the row could not be built")
            return None
        if self.shape.was_clipped(values):
            self.status.clipped_row()
        return values

    def _resolve(self, keys: list[str], durable: bool) -> None:
        for k in keys:
            fut = self._durable.pop(k, None)
            if fut is not None and not fut.done():
                fut.set_result(durable)

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

    # --- the intake task -----------------------------------------------------------------------

    async def _next_items(self) -> list[Any] | None:
        if self._sync:
            while not self._items and not self._overflow_keys and not self._closing:
                self._wake.clear()
                await self._wake.wait()
            limit = len(self._items)  # group commit: everything that arrived during the fsync
        else:
            if len(self._items) < self.config.batch_size and not self._closing:
                try:  # a long flush interval must not delay exit
                    await asyncio.wait_for(self._wake.wait(), self._interval)
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

    def _hold(self, rows: list[Values]) -> None:
        lost = self._rows.hold(rows)
        if lost:
            self.status.drop(lost, "memory is full and the journal refused them")

    def _append(self, rows: list[Values]) -> Segment | None:
        try:
            segment = self.journal.append(rows)
        except JournalError as e:
            self.status.journal_failed(e)
            return None
        self.status.journaled_rows(len(rows))
        return segment

    async def _fsync(self) -> bool:
        try:
            await self.journal.sync()
        except JournalError as e:
            self.status.journal_failed(e)
            return False
        return True

    # --- the database task ---------------------------------------------------------------------

    async def _database(self) -> None:
        loop = asyncio.get_running_loop()
        claimed_at = loop.time()
        while True:
            if loop.time() - claimed_at > CLAIM_EVERY_S and not self._closing:
                claimed_at = loop.time()
                self.journal.claim_orphans()  # a sibling worker may have died meanwhile
            if self._outage:
                await self._recover()
                if self._outage:  # closing, and the database is still away
                    break
                continue
            worked = False
            if self._rows:
                if self._journal_always:
                    await self._gather()
                await self._write(self._rows.take(self.config.batch_size))
                worked = True
            # the journal is replayed between batches, and at shutdown while the database
            # answers: a journal on a pod's own disk may not see the next start
            if not self._outage and self._replay_pending():
                await self._replay_step()
                worked = True
            if worked:
                continue
            if self._intake_done.is_set():
                break
            self._rows.ready.clear()
            try:
                await asyncio.wait_for(self._rows.ready.wait(), 1.0)
            except TimeoutError:
                pass
        self._spill(self._rows.drain())  # closing: what the database would not take

    async def _gather(self) -> None:
        """journal/sync: the intake hands rows on as soon as they are journaled (in sync mode,
        a few at a time); wait for a batch's worth, or the flush interval, so the database
        sees one insert and one commit (a WAL fsync on the same disk) per interval, not per
        group commit."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._interval
        while self._rows.count < self.config.batch_size and not self._closing:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._rows.ready.clear()
            try:
                await asyncio.wait_for(self._rows.ready.wait(), left)
            except TimeoutError:
                return

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._closed.wait(), seconds)
        except TimeoutError:
            pass

    def _replay_pending(self) -> bool:
        return self.journal.next_to_replay() is not None or (
            self.journal.active_dirty and not self._rows
        )

    async def _write(self, batch: list[Piece]) -> None:
        loop = asyncio.get_running_loop()
        started, delay = loop.time(), 0.05
        while batch:
            rows = [r for p in batch for r in p.rows]
            try:
                d = await deliver(self.sink, self.shape, rows)
                away = None
            except DatabaseAway as e:
                d, away = e.delivery, e
            self._settle(batch, d)
            if away is None:
                break
            self.status.database_failed(away, len(rows) - d.done)
            waited = loop.time() - started
            if self._closing or waited + delay > self.config.journal_after_ms / 1000:
                self._outage = True
                log.warning("ledger: database away (%s); journaling rows until it is back", away)
                self._spill(self._rows.drain())  # this batch, and what queued up behind it
                await self._fsync()
                break
            await self._pause(delay)
            delay = min(delay * 2, 1.0)
        self._rows.inflight = []

    def _settle(self, batch: list[Piece], d: Delivery) -> None:
        """The first `d.done` rows of `batch` are in the database (or dead-lettered)."""
        self.status.delivered(d)
        n = d.done
        while n and batch:
            p = batch[0]
            k = min(n, len(p.rows))
            del p.rows[:k]
            if p.segment is not None:
                self.journal.ack(p.segment, k)
            if not p.rows:
                batch.pop(0)
            n -= k

    def _spill(self, pieces: list[Piece]) -> None:
        """Rows the database did not take: journal them (or hold them if it cannot)."""
        for p in pieces:
            if not p.rows:
                continue
            seg = p.segment or self._append(p.rows)
            if seg is not None:
                self.journal.mark_dirty(seg)
                self.status.spilled()
            else:
                self._hold(p.rows)
        pieces.clear()

    async def _recover(self) -> None:
        """Outage: replay the journal, backing off while the database stays away."""
        delay = 0.1
        while self._outage:
            if await self._replay_step():
                delay = 0.1
                continue
            if self._closing:
                return
            await self._pause(delay)
            delay = min(delay * 2, 2.0)  # a probe is one connect: the outage ends sooner

    async def _replay_step(self) -> bool:
        """Replay one batch from the journal; False when the database is still away."""
        seg = self.journal.next_to_replay()
        if seg is None:
            if self.journal.active_dirty:
                if await self._seal():
                    return True
                return False
            if self._outage:
                self._outage = False  # nothing journaled is left: rows go straight in again
                log.warning("ledger: database back; journal replayed")
            return True
        rows, offset = self.journal.read(seg, self.config.batch_size)
        try:
            d = await deliver(self.sink, self.shape, rows)
        except DatabaseAway as e:
            self.status.database_failed(e, len(rows))
            self._outage = True
            return False
        self.status.delivered(d, replay=True)
        self.journal.replayed(seg, offset, len(rows))
        return True

    async def _seal(self) -> bool:
        try:
            await self.journal.seal()
        except JournalError as e:
            self.status.journal_failed(e)
            return False
        return True

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

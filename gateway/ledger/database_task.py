"""The ledger writer's database task: batches of rows inserted idempotently (`deliver.py`
bisects out and dead-letters the rows the database refuses); when the database is away, the
outage — rows journaled, the journal replayed with back-off until nothing is left; and between
batches, the journal's segments (this process's, and those dead siblings left) replayed."""

from __future__ import annotations

import asyncio
import logging

from gateway.ledger.deliver import DatabaseAway, Delivery, deliver
from gateway.ledger.journal import JournalError
from gateway.ledger.pieces import Piece
from gateway.ledger.writer_base import WriterBase

log = logging.getLogger("gateway.ledger")

CLAIM_EVERY_S = 5.0  # how often segments of dead sibling workers are looked for


class DatabaseTask(WriterBase):
    """The database side of `LedgerWriter` (not used on its own)."""

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

"""What the ledger writer's parts share (writer.py puts them together): its state — the items
and rows held in memory, the journal, the sink, the mode — and the steps both of its tasks
take: building a row, journaling rows (append, fsync), holding rows that have nowhere safe to
go, releasing the responses that wait for their rows in `sync` mode."""

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
from gateway.ledger.journal import Journal, JournalError
from gateway.ledger.pieces import RowBuffer
from gateway.ledger.schema import SchemaCheck
from gateway.ledger.segment import Segment
from gateway.ledger.shape import RowShape, Values
from gateway.ledger.sinks import Sink, create_sink
from gateway.ledger.status import LedgerHooks, LedgerStatus

log = logging.getLogger("gateway.ledger")


class WriterBase:
    """`LedgerWriter`'s state and shared steps (not used on its own)."""

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
        self._wake = asyncio.Event()  # items arrived (sync: any; async: the first) or closing
        self._durable: dict[str, asyncio.Future[bool]] = {}
        self._overflow_keys: list[str] = []
        self._outage = False
        self._closing = False
        self._closed = asyncio.Event()  # wakes back-off sleeps at shutdown
        self._tasks: list[asyncio.Task[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._intake_done = asyncio.Event()
        self._flushed_at_exit = False

    # --- rows: built, journaled, held ----------------------------------------------------------

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

"""Rows between the writer's intake and its database task: a bounded buffer of `Piece`s
(rows, and the journal segment that also holds them, if any) and the batch in flight."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.ledger.segment import Segment
from gateway.ledger.shape import Values


@dataclass(slots=True)
class Piece:
    segment: Segment | None  # None: these rows exist only in memory
    rows: list[Values]


def item_key(item: Any) -> str:
    """The request id of a submitted item (an `Outcome`, or a row dict in tests)."""
    return str(item["id"] if isinstance(item, dict) else item.request_id)


def item_time(item: Any) -> float | None:
    t = item.get("created_at") if isinstance(item, dict) else getattr(item, "created_at", None)
    if isinstance(t, datetime):
        return t.timestamp()
    return float(t) if isinstance(t, int | float) else None


class RowBuffer:
    def __init__(self, limit: int, created_index: int) -> None:
        self.limit = limit  # rows; past it, rows stay in the journal only
        self._created = created_index
        self._pieces: deque[Piece] = deque()
        self.count = 0  # rows in `_pieces`
        self.inflight: list[Piece] = []  # the database task's current batch
        self.ready = asyncio.Event()

    def __bool__(self) -> bool:
        return bool(self._pieces)

    def would_overflow(self, n: int) -> bool:
        return self.count + n > self.limit

    def put(self, piece: Piece) -> None:
        self._pieces.append(piece)
        self.count += len(piece.rows)
        self.ready.set()

    def hold(self, rows: list[Values]) -> int:
        """Rows with nowhere safe to go: kept up to twice the limit; returns how many not."""
        room = max(2 * self.limit - self.count, 0)
        if rows[:room]:
            self.put(Piece(None, rows[:room]))
        return max(len(rows) - room, 0)

    def take(self, max_rows: int) -> list[Piece]:
        """The next batch (whole pieces, about `max_rows` rows), now in flight."""
        batch: list[Piece] = []
        n = 0
        while self._pieces and n < max_rows:
            p = self._pieces.popleft()
            self.count -= len(p.rows)
            batch.append(p)
            n += len(p.rows)
        self.inflight = batch
        return batch

    def drain(self) -> list[Piece]:
        """Everything held, the batch in flight first."""
        pieces = [*self.inflight, *self._pieces]
        self._pieces.clear()
        self.inflight = []
        self.count = 0
        return pieces

    @property
    def rows(self) -> int:
        return self.count + sum(len(p.rows) for p in self.inflight)

    def unsafe(self) -> tuple[int, list[float]]:
        """Rows held here that no journal segment holds, and the first one's time of each
        piece of them."""
        n, times = 0, []
        for p in (*self.inflight, *self._pieces):
            if p.segment is None and p.rows:
                n += len(p.rows)
                times.append(p.rows[0][self._created].timestamp())
        return n, times

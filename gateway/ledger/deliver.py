"""One batch of ledger rows into the database, whatever is wrong with some of them.

A batch the database refuses for its data (`sinks.is_data_error`) is split in two and each
half tried again, down to the single rows at fault, which go to the dead-letter table with
the database's error — so one bad row costs about 2·log2(batch) extra statements, and only
itself. Halves are tried in order, so what has been settled is always a prefix of the batch:
when the database goes away midway, `DatabaseAway.delivery.done` says how far it got and the
rest can be retried (or journaled) as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.ledger.shape import RowShape, Values, fix_text
from gateway.ledger.sinks import Sink, is_data_error

log = logging.getLogger("gateway.ledger")

MAX_ERROR_CHARS = 2000


@dataclass(slots=True)
class Delivery:
    inserted: int = 0  # rows new to the table
    present: int = 0  # rows the table already had (a replay after a crash)
    dead: int = 0  # rows refused for their data, now in the dead-letter table
    lost: int = 0  # refused rows the dead-letter table refused too (logged in full)
    done: int = 0  # rows settled: always the first `done` rows of the batch

    def add(self, other: Delivery) -> None:
        self.inserted += other.inserted
        self.present += other.present
        self.dead += other.dead
        self.lost += other.lost
        self.done += other.done


class DatabaseAway(Exception):
    """The database could not be reached (or timed out, or is not ready): retry later."""

    def __init__(self, cause: BaseException, delivery: Delivery) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause
        self.delivery = delivery


def describe(error: BaseException) -> str:
    state = getattr(error, "sqlstate", None) or getattr(
        getattr(error, "orig", None), "sqlstate", None
    )
    text = f"{type(error).__name__}" + (f" [{state}]" if state else "") + f": {error}"
    return fix_text(text[:MAX_ERROR_CHARS])


async def deliver(sink: Sink, shape: RowShape, rows: Sequence[Values]) -> Delivery:
    d = Delivery()
    for start in range(0, len(rows), sink.max_rows):
        await _put(sink, shape, rows[start : start + sink.max_rows], d)
    return d


async def _put(sink: Sink, shape: RowShape, rows: Sequence[Values], d: Delivery) -> None:
    try:
        n = await sink.insert(rows)
    except Exception as e:
        if not is_data_error(e):
            raise DatabaseAway(e, d) from e
        if len(rows) > 1:
            mid = len(rows) // 2
            await _put(sink, shape, rows[:mid], d)
            await _put(sink, shape, rows[mid:], d)
            return
        await _dead_letter(sink, shape, rows[0], e, d)
        return
    d.inserted += n
    d.present += len(rows) - n
    d.done += len(rows)


async def _dead_letter(
    sink: Sink, shape: RowShape, row: Values, error: BaseException, d: Delivery
) -> None:
    rid, why = str(row[shape.id_index]), describe(error)
    as_json = shape.as_json(row)
    try:
        await sink.dead_letter([(fix_text(rid[:64]), why, as_json)])
    except Exception as e:
        if not is_data_error(e):
            raise DatabaseAway(e, d) from e
        # cannot happen with an ASCII JSON text column; if it does, the log is the record
        log.error("ledger row %s refused (%s) and not dead-lettered (%s): %s", rid, why, e, as_json)
        d.lost += 1
    else:
        log.warning("ledger row %s refused by the database, dead-lettered: %s", rid, why)
        d.dead += 1
    d.done += 1

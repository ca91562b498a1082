"""What became of the ledger's rows: the writer's true counts and what it last saw of the
database and the journal — for metrics (through `LedgerHooks`), /health/ready and the log
line at shutdown."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.ledger.deliver import Delivery

log = logging.getLogger("gateway.ledger")


def _ignore(n: int = 0) -> None:
    pass


@dataclass(slots=True)
class LedgerHooks:
    """Called as rows go (metrics counters); each takes a row count."""

    written: Callable[[int], None] = _ignore
    write_errors: Callable[[int], None] = _ignore
    dead_lettered: Callable[[int], None] = _ignore
    journaled: Callable[[int], None] = _ignore
    replayed: Callable[[int], None] = _ignore
    dropped: Callable[[int], None] = _ignore
    clipped: Callable[[int], None] = _ignore


class LedgerStatus:
    def __init__(self, hooks: LedgerHooks | None, journal_always: bool) -> None:
        self.hooks = hooks or LedgerHooks()
        self._journal_always = journal_always
        self.written = 0  # rows inserted, from memory or the journal
        self.present = 0  # replayed rows the database already had (written before a crash)
        self.dead_lettered = 0
        self.journaled = 0
        self.replayed = 0
        self.dropped = 0
        self.clipped = 0
        self.last_progress = time.monotonic()  # rows last reached the database or the journal
        self.last_database_write: float | None = None  # wall clock
        self.database_error: str | None = None
        self.journal_error: str | None = None

    def delivered(self, d: Delivery, *, replay: bool = False) -> None:
        if d.done:
            self.last_progress = time.monotonic()
            self.last_database_write = time.time()
            self.database_error = None
            if not self._journal_always:
                self.journal_error = None  # async: the journal is not needed any more
        self.written += d.inserted
        self.present += d.present
        self.dead_lettered += d.dead
        self.hooks.written(d.inserted)
        if replay:
            self.replayed += d.inserted
            self.hooks.replayed(d.inserted)
        if d.dead:
            self.hooks.dead_lettered(d.dead)
        if d.lost:
            self.drop(d.lost, "refused by the database and by its dead-letter table")

    def database_failed(self, error: Exception, rows: int) -> None:
        if self.database_error is None:
            log.warning("ledger insert of %d rows failed (%s); retrying", rows, error)
        self.database_error = str(error)
        self.hooks.write_errors(1)

    def journaled_rows(self, n: int) -> None:
        self.journaled += n
        self.hooks.journaled(n)
        self.journal_error = None
        self.last_progress = time.monotonic()  # those rows are safe now

    def spilled(self) -> None:
        """Rows already in the journal were let go from memory."""
        self.last_progress = time.monotonic()

    def journal_failed(self, error: Exception) -> None:
        if self.journal_error != str(error):
            log.error("ledger journal: %s", error)
        self.journal_error = str(error)

    def clipped_row(self) -> None:
        self.clipped += 1
        self.hooks.clipped(1)

    def drop(self, n: int, why: str) -> None:
        self.dropped += n
        self.hooks.dropped(n)
        log.error("ledger: %d rows dropped (%s)", n, why)

    def log_summary(self, left_in_journal: int, directory: Path, lost: int) -> None:
        level = logging.ERROR if (lost or self.dropped) else logging.INFO
        log.log(
            level,
            "ledger closed: %d rows written this run (%d replayed from the journal; %d more "
            "were already there), %d dead-lettered, %d left in the journal %s for the next "
            "start, %d dropped, %d lost at exit",
            self.written,
            self.replayed,
            self.present,
            self.dead_lettered,
            left_in_journal,
            directory,
            self.dropped,
            lost,
        )

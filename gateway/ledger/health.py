"""Is the ledger keeping up? What /health/ready and the ledger gauges report.

Not ready when rows are at risk, not merely when the database is away: a database outage
the journal absorbs leaves every row safe on disk, and turning every gateway not-ready then
would turn a ledger outage into a serving outage. At risk means:

- *stalled*: rows held only in memory (in neither the database nor the journal) for longer
  than `stall_after_s`, with nothing made safe meanwhile — a writer that cannot write;
- *journal unusable*: the journal refused rows it had to take (full, or an OS error);
- *schema mismatch*: the database answers at another schema revision (schema.py) — a database
  not reached since start leaves the schema `unverified`, reported but not fatal.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from gateway.config import LedgerConfig
from gateway.ledger.journal import Journal
from gateway.ledger.schema import SchemaCheck
from gateway.ledger.status import LedgerStatus


class Watched(Protocol):
    """What health is judged from (the writer, without importing it)."""

    config: LedgerConfig
    status: LedgerStatus
    journal: Journal
    schema: SchemaCheck | None

    @property
    def backlog(self) -> int: ...

    def unsafe(self) -> tuple[int, float | None]: ...


@dataclass(slots=True)
class LedgerHealth:
    ready: bool
    problems: list[str]
    durability: str
    backlog_rows: int  # held in memory, not yet in the database
    unsafe_rows: int  # held only in memory
    oldest_row_age_s: float | None  # the oldest row not yet in the database
    seconds_since_progress: float  # since rows last reached the database or the journal
    database: str  # "ok", "unavailable: …" (as the writer last saw it), or "unknown"
    schema: str  # "ok", "unverified: …" (not reached since start), "mismatch: …", "unchecked"
    seconds_since_database_write: float | None
    journal_rows: int  # journaled, not yet known to be in the database
    journal_bytes: int
    journal_error: str | None
    written: int
    dead_lettered: int
    journaled: int
    replayed: int
    dropped: int
    clipped: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _age(now: float, t: float | None) -> float | None:
    return None if t is None else round(max(now - t, 0.0), 3)


def assess(w: Watched) -> LedgerHealth:
    now, mono = time.time(), time.monotonic()
    unsafe, unsafe_since = w.unsafe()
    js = w.journal.stats()
    # rows held in memory that are journaled too are the journal's (its oldest_at covers them)
    oldest_times = [t for t in (unsafe_since, js.oldest_at) if t is not None]
    st = w.status
    idle = mono - st.last_progress
    stall = w.config.stall_after_s
    problems = []
    unsafe_age = _age(now, unsafe_since)
    if unsafe and unsafe_age is not None and unsafe_age > stall and idle > stall:
        problems.append(
            f"ledger writer stalled: {unsafe} rows held only in memory, the oldest for "
            f"{unsafe_age:.1f} s; nothing written for {idle:.1f} s"
        )
    if st.journal_error is not None:
        problems.append(f"ledger journal unusable: {st.journal_error}")
    if w.schema is not None and w.schema.problem is not None:
        problems.append(w.schema.problem)
    if st.database_error is not None:
        database = f"unavailable: {st.database_error}"
    elif st.last_database_write is not None:
        database = "ok"
    else:
        database = "unknown"
    return LedgerHealth(
        ready=not problems,
        problems=problems,
        durability=w.config.durability,
        backlog_rows=w.backlog,
        unsafe_rows=unsafe,
        oldest_row_age_s=_age(now, min(oldest_times)) if oldest_times else None,
        seconds_since_progress=round(idle, 3),
        database=database,
        schema="unchecked" if w.schema is None else w.schema.describe(),
        seconds_since_database_write=_age(now, st.last_database_write),
        journal_rows=js.rows,
        journal_bytes=js.bytes,
        journal_error=st.journal_error,
        written=st.written,
        dead_lettered=st.dead_lettered,
        journaled=st.journaled,
        replayed=st.replayed,
        dropped=st.dropped,
        clipped=st.clipped,
    )

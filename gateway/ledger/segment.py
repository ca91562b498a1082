"""One segment file of the ledger's journal: its format, the lock that says which process owns
it, and reading it back — a segment a dead process left, scanned and claimed; rows read from
the replay cursor.

Layout: `journal_dir/seg-<time_ns>-<pid>-<seq>.jsonl`, one file a segment. Line 1 is a header
(`{"ledger_journal": 1, "database": …, "columns": [...]}`), then one JSON array a row (see
`RowShape.encode`). A line without its newline is a write cut by a crash: it was never
fsynced, so never acknowledged, and is ignored.

Ownership: a process holds an exclusive `flock` on every segment it has open (its own, and
the ones it claimed), from creation — a segment is created under a temporary name, locked,
then renamed — until the file is deleted. A segment nobody holds belongs to a process that
died (kill -9, OOM, a crash): any process of the same database (the header says which, so a
gateway never replays rows into another database) claims it and replays it.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.ledger.shape import RowShape, Values

log = logging.getLogger("gateway.ledger")

READ_CHUNK = 1 << 20


@dataclass(eq=False, slots=True)
class Segment:
    path: Path
    fd: int
    decode: Callable[[bytes], Values]
    body_at: int  # where the rows start (after the header line)
    size: int = 0
    rows: int = 0  # rows in the file
    acked: int = 0  # rows the writer put in the database from memory
    replayed: int = 0  # rows put in the database from the file
    offset: int = 0  # replay cursor: the file's bytes up to here are in the database
    dirty: bool = False  # some rows exist only here: replay the file
    sealed: bool = False  # fsynced and closed to appends
    first_at: float | None = None  # wall-clock time of its first row
    bad_lines: int = 0

    @property
    def pending(self) -> int:
        return self.rows - max(self.acked, self.replayed)

    @property
    def settled(self) -> bool:
        return self.sealed and not self.dirty and self.acked >= self.rows

    def read(self, max_rows: int) -> tuple[list[Values], int]:
        """Up to `max_rows` rows from the replay cursor, and the offset just past them."""
        rows: list[Values] = []
        pos = self.offset
        while len(rows) < max_rows and pos < self.size:
            chunk = os.pread(self.fd, READ_CHUNK, pos)
            if not chunk:
                break
            start = 0
            while len(rows) < max_rows:
                nl = chunk.find(b"\n", start)
                if nl < 0:
                    break
                try:
                    rows.append(self.decode(chunk[start:nl]))
                except ValueError as e:  # corrupt (never a torn tail: that has no newline)
                    self.bad_lines += 1
                    log.error("ledger journal: unreadable line in %s skipped (%s)", self.path, e)
                start = nl + 1
            if start == 0:  # a torn last line: never acknowledged, nothing after it
                pos = self.size
                break
            pos += start
        return rows, pos


def claim(path: Path, shape: RowShape, database: str, ignored: set[Path]) -> Segment | None:
    """The segment in `path`, locked by this process; None when a live process holds it, it
    holds no row, or it cannot be read or belongs to another database (then it goes into
    `ignored`, left in place and not looked at again)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a live process holds it
        os.close(fd)
        return None
    try:
        seg = _scan(path, fd, shape, database, ignored)
    except (OSError, ValueError) as e:
        os.close(fd)
        ignored.add(path)
        log.error("ledger journal: cannot read %s (%s); left in place", path, e)
        return None
    if seg is None:
        os.close(fd)
    return seg


def _scan(
    path: Path, fd: int, shape: RowShape, database: str, ignored: set[Path]
) -> Segment | None:
    size = os.fstat(fd).st_size
    head = os.pread(fd, min(size, 1 << 16), 0)
    end = head.find(b"\n")
    if end < 0:  # the header itself was cut: no row was ever written after it
        path.unlink()
        return None
    header = orjson.loads(head[:end])
    if not isinstance(header, dict) or "columns" not in header:
        raise ValueError("no journal header")
    if header.get("database") != database:  # never replay rows into another database
        if path not in ignored:
            ignored.add(path)  # and look at it once
            log.warning(
                "ledger journal: %s holds rows for %s, not %s; left in place",
                path,
                header.get("database"),
                database,
            )
        return None
    seg = Segment(
        path,
        fd,
        shape.decoder(header["columns"]),
        body_at=end + 1,
        size=size,
        offset=end + 1,
        dirty=True,
        sealed=True,
    )
    pos, first = end + 1, True
    while pos < size:
        chunk = os.pread(fd, READ_CHUNK, pos)
        last = chunk.rfind(b"\n")
        if last < 0:
            break
        lines = chunk[: last + 1]
        if first:
            first = False
            try:
                row = seg.decode(lines[: lines.find(b"\n")])
                seg.first_at = row[shape.created_index].timestamp()
            except (ValueError, AttributeError):
                seg.first_at = os.fstat(fd).st_mtime
        seg.rows += lines.count(b"\n")
        pos += last + 1
    return seg


def remove_unfinished(directory: Path) -> None:
    """Delete the temporary files of processes that died between creating a segment and
    renaming it: no row was ever written to one."""
    for path in directory.glob(".tmp-*"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def count_rows_in(directory: Path) -> int:
    """Rows in a journal directory's segments (for tools and tests; takes no locks)."""
    n = 0
    for path in directory.glob("seg-*.jsonl"):
        data = path.read_bytes()
        n += max(data.count(b"\n") - 1, 0)
    return n

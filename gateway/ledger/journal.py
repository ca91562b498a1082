"""The ledger's local journal: append-only segment files of rows not yet known to be in the
database, fsynced in groups, replayed into the database when it answers again.

Layout: `journal_dir/seg-<time_ns>-<pid>-<seq>.jsonl`, one file a segment. Line 1 is a header
(`{"ledger_journal": 1, "database": …, "columns": [...]}`), then one JSON array a row (see
`RowShape.encode`). A line without its newline is a write cut by a crash: it was never
fsynced, so never acknowledged, and is ignored.

Ownership: a process holds an exclusive `flock` on every segment it has open (its own, and
the ones it claimed), from creation — a segment is created under a temporary name, locked,
then renamed — until the file is deleted. A segment nobody holds belongs to a process that
died (kill -9, OOM, a crash): any process of the same database (the header says which, so a
gateway never replays rows into another database) claims it and replays it. With
`--workers N`, each worker has its own segments and claims the dead ones'.

Durability: `append` writes to the file (the page cache: a kill -9 loses nothing written);
`sync` fsyncs, in a worker thread, everything appended so far — callers that arrive while an
fsync runs share the next one (group commit) — and only fsynced rows survive a power loss.

Exactly once: a row may be replayed after it reached the database (a crash between the insert
and the file's deletion); the insert skips ids already there (`sinks.py`).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.ledger.shape import RowShape, Values

log = logging.getLogger("gateway.ledger")

READ_CHUNK = 1 << 20


class JournalError(Exception):
    """The journal could not take rows: full (`journal_max_mb`) or an OS error."""


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


@dataclass(slots=True)
class JournalStats:
    rows: int  # rows not yet known to be in the database
    bytes: int
    segments: int
    oldest_at: float | None  # wall clock of the oldest such row


class Journal:
    def __init__(
        self,
        directory: Path,
        shape: RowShape,
        database: str,
        *,
        max_bytes: int,
        segment_bytes: int,
    ) -> None:
        self.directory = directory
        self.shape = shape
        self.database = database
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._header = shape.header(database) + b"\n"
        self._decode = shape.decoder(shape.columns)
        self.segments: list[Segment] = []  # oldest first
        self._active: Segment | None = None
        self._seq = 0
        self._lock = asyncio.Lock()
        self._appended = 0  # bytes ever appended; `_synced` of them are fsynced
        self._synced = 0
        self._dir_dirty = False
        self._ignored: set[Path] = set()
        self.fsyncs = 0

    # --- opening and claiming ------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory (OSError if it cannot be) and claim what dead processes left."""
        self.directory.mkdir(parents=True, exist_ok=True)
        probe = self.directory / f".probe-{os.getpid()}"
        probe.write_bytes(b"")  # fail now, not at the first outage, if it is not writable
        probe.unlink()
        self.claim_orphans()

    def claim_orphans(self) -> int:
        """Take the segments no live process holds; returns how many rows they hold."""
        skip = {s.path for s in self.segments} | self._ignored
        found = 0
        for path in sorted(self.directory.glob("seg-*.jsonl")):
            if path in skip:
                continue
            seg = self._claim(path)
            if seg is not None:
                self.segments.append(seg)
                found += seg.rows
        for path in self.directory.glob(".tmp-*"):  # died between create and rename: no rows
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
        self.segments.sort(key=lambda s: s.path.name)
        if found:
            log.warning(
                "ledger journal: claimed %d unwritten rows left in %s", found, self.directory
            )
        return found

    def _claim(self, path: Path) -> Segment | None:
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
            seg = self._scan(path, fd)
        except (OSError, ValueError) as e:
            os.close(fd)
            self._ignored.add(path)
            log.error("ledger journal: cannot read %s (%s); left in place", path, e)
            return None
        if seg is None:
            os.close(fd)
        return seg

    def _scan(self, path: Path, fd: int) -> Segment | None:
        size = os.fstat(fd).st_size
        head = os.pread(fd, min(size, 1 << 16), 0)
        end = head.find(b"\n")
        if end < 0:  # the header itself was cut: no row was ever written after it
            path.unlink()
            return None
        header = orjson.loads(head[:end])
        if not isinstance(header, dict) or "columns" not in header:
            raise ValueError("no journal header")
        if header.get("database") != self.database:  # never replay rows into another database
            if path not in self._ignored:
                self._ignored.add(path)  # and look at it once
                log.warning(
                    "ledger journal: %s holds rows for %s, not %s; left in place",
                    path,
                    header.get("database"),
                    self.database,
                )
            return None
        seg = Segment(
            path,
            fd,
            self.shape.decoder(header["columns"]),
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
                    seg.first_at = row[self.shape.created_index].timestamp()
                except (ValueError, AttributeError):
                    seg.first_at = os.fstat(fd).st_mtime
            seg.rows += lines.count(b"\n")
            pos += last + 1
        return seg

    # --- appending -----------------------------------------------------------------------------

    def append(self, rows: Sequence[Values]) -> Segment:
        """Write rows to the active segment (not yet fsynced: see `sync`)."""
        data = self.shape.encode(rows)
        if self.total_bytes + len(data) > self.max_bytes:
            raise JournalError(f"the journal is full ({self.max_bytes / 2**20:g} MiB)")
        seg = self._active or self._new_segment()
        try:
            written = os.write(seg.fd, data)
        except OSError as e:
            raise JournalError(f"cannot write {seg.path.name}: {e}") from e
        if written != len(data):  # a short write (disk full): take it back, keep lines whole
            try:
                os.ftruncate(seg.fd, seg.size)
            except OSError:
                pass
            raise JournalError(f"cannot write {seg.path.name}: short write (disk full?)")
        if seg.first_at is None:
            seg.first_at = time.time()
        seg.size += written
        seg.rows += len(rows)
        self._appended += written
        return seg

    def _new_segment(self) -> Segment:
        self._seq += 1
        pid = os.getpid()
        tmp = self.directory / f".tmp-{pid}-{self._seq}"
        final = self.directory / f"seg-{time.time_ns():020d}-{pid}-{self._seq:06d}.jsonl"
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except OSError as e:
            raise JournalError(f"cannot create a journal segment in {self.directory}: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, self._header)
            os.rename(tmp, final)
        except OSError as e:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise JournalError(f"cannot create a journal segment in {self.directory}: {e}") from e
        body = len(self._header)
        seg = Segment(final, fd, self._decode, body_at=body, size=body, offset=body)
        self.segments.append(seg)
        self._active = seg
        self._dir_dirty = True
        return seg

    async def sync(self) -> None:
        """fsync everything appended before this call (sharing an fsync already under way or
        the next one with whoever else asked meanwhile); seal the segment once it is full."""
        target = self._appended
        async with self._lock:
            if self._synced >= target:
                return
            upto, seg = self._appended, self._active
            if seg is not None:
                await self._fsync(seg)
            self._synced = upto
            if seg is not None and seg.size >= self.segment_bytes:
                self._active, seg.sealed = None, True
                self._drop_if_settled(seg)

    async def seal(self) -> Segment | None:
        """Close the active segment to appends (fsynced), so that it can be replayed."""
        async with self._lock:
            seg = self._active
            if seg is None:
                return None
            upto = self._appended
            await self._fsync(seg)
            self._synced = upto
            self._active, seg.sealed = None, True
            self._drop_if_settled(seg)
            return seg

    async def _fsync(self, seg: Segment) -> None:
        loop = asyncio.get_running_loop()
        self.fsyncs += 1
        try:
            await loop.run_in_executor(None, os.fsync, seg.fd)
            if self._dir_dirty:  # the new file's name must survive a power loss too
                self._dir_dirty = False
                await loop.run_in_executor(None, _fsync_dir, self.directory)
        except OSError as e:
            raise JournalError(f"cannot fsync {seg.path.name}: {e}") from e

    # --- settling ------------------------------------------------------------------------------

    def ack(self, seg: Segment, n: int) -> None:
        """`n` rows of `seg` reached the database from memory."""
        seg.acked += n
        self._drop_if_settled(seg)

    def mark_dirty(self, seg: Segment) -> None:
        """Some rows of `seg` will not reach the database from memory: replay the file."""
        seg.dirty = True

    def next_to_replay(self) -> Segment | None:
        return next((s for s in self.segments if s.dirty and s.sealed), None)

    @property
    def active_dirty(self) -> bool:
        return self._active is not None and self._active.dirty

    def read(self, seg: Segment, max_rows: int) -> tuple[list[Values], int]:
        """Up to `max_rows` rows from the replay cursor, and the offset just past them."""
        rows: list[Values] = []
        pos = seg.offset
        while len(rows) < max_rows and pos < seg.size:
            chunk = os.pread(seg.fd, READ_CHUNK, pos)
            if not chunk:
                break
            start = 0
            while len(rows) < max_rows:
                nl = chunk.find(b"\n", start)
                if nl < 0:
                    break
                try:
                    rows.append(seg.decode(chunk[start:nl]))
                except ValueError as e:  # corrupt (never a torn tail: that has no newline)
                    seg.bad_lines += 1
                    log.error("ledger journal: unreadable line in %s skipped (%s)", seg.path, e)
                start = nl + 1
            if start == 0:  # a torn last line: never acknowledged, nothing after it
                pos = seg.size
                break
            pos += start
        return rows, pos

    def replayed(self, seg: Segment, offset: int, rows: int) -> None:
        seg.offset = offset
        seg.replayed += rows
        if offset >= seg.size:
            seg.dirty = False
            seg.acked = max(seg.acked, seg.rows)
            self._drop_if_settled(seg)

    def _drop_if_settled(self, seg: Segment) -> None:
        if seg.settled and seg in self.segments:
            self.segments.remove(seg)
            try:
                seg.path.unlink()
            except OSError as e:
                log.error("ledger journal: cannot delete %s (%s)", seg.path, e)
            os.close(seg.fd)

    # --- state ---------------------------------------------------------------------------------

    @property
    def total_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    def stats(self) -> JournalStats:
        pending = [s for s in self.segments if s.pending > 0]
        return JournalStats(
            rows=sum(s.pending for s in pending),
            bytes=self.total_bytes,
            segments=len(self.segments),
            oldest_at=min((s.first_at for s in pending if s.first_at is not None), default=None),
        )

    async def aclose(self) -> None:
        """fsync and release every segment; settled ones are deleted, the rest stay for the
        next start (or a sibling worker) to replay."""
        if self._active is not None:
            try:
                await self.seal()
            except JournalError as e:
                log.error("ledger journal: %s", e)
        for seg in list(self.segments):
            if seg.settled:
                self._drop_if_settled(seg)
            else:
                os.close(seg.fd)
        self.segments = [s for s in self.segments if not s.settled]


def _fsync_dir(directory: Path) -> None:
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

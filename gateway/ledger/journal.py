"""The ledger's local journal: append-only segment files of rows not yet known to be in the
database, fsynced in groups, replayed into the database when it answers again.

Segments — their file format, and the `flock` that says which process owns one — are
`segment.py`'s. The journal claims the segments of its database that nobody holds (their
process died: kill -9, OOM, a crash) and replays them. With `--workers N`, each worker has its
own segments and claims the dead ones'.

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.ledger.segment import Segment, claim, fsync_dir, remove_unfinished
from gateway.ledger.segment import count_rows_in as count_rows_in
from gateway.ledger.shape import RowShape, Values

log = logging.getLogger("gateway.ledger")


class JournalError(Exception):
    """The journal could not take rows: full (`journal_max_mb`) or an OS error."""


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
            seg = claim(path, self.shape, self.database, self._ignored)
            if seg is not None:
                self.segments.append(seg)
                found += seg.rows
        remove_unfinished(self.directory)  # died between create and rename: no rows
        self.segments.sort(key=lambda s: s.path.name)
        if found:
            log.warning(
                "ledger journal: claimed %d unwritten rows left in %s", found, self.directory
            )
        return found

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
                await loop.run_in_executor(None, fsync_dir, self.directory)
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
        return seg.read(max_rows)

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

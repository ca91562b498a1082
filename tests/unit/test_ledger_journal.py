"""The journal on a real directory: group-committed appends, torn tails, ownership by flock,
claims of what dead processes left, and the size limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.ledger.journal import Journal, JournalError
from gateway.ledger.shape import RowShape, Values
from tests.support import ledger_row

SHAPE = RowShape()


def _journal(d: Path, database: str = "postgresql:ledger", max_bytes: int = 1 << 30) -> Journal:
    j = Journal(d, SHAPE, database, max_bytes=max_bytes, segment_bytes=1 << 20)
    j.open()
    return j


def _rows(n: int, start: int = 0) -> list[Values]:
    return [SHAPE.fit(ledger_row(i)) for i in range(start, start + n)]


def _all(j: Journal) -> list[Values]:
    out = []
    while (seg := j.next_to_replay()) is not None:
        rows, offset = j.read(seg, 1000)
        out += rows
        j.replayed(seg, offset, len(rows))
    return out


async def test_appended_rows_read_back_in_order(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    seg = j.append(_rows(3))
    j.append(_rows(2, start=3))
    await j.sync()
    assert j.stats().rows == 5 and seg.rows == 5
    j.mark_dirty(seg)
    await j.seal()
    assert [r[0] for r in _all(j)] == ["r0", "r1", "r2", "r3", "r4"]
    assert not list(tmp_path.glob("seg-*"))  # replayed: deleted
    await j.aclose()


async def test_many_callers_share_fsyncs(tmp_path: Path) -> None:
    j = _journal(tmp_path)

    async def one(i: int) -> None:
        j.append(_rows(1, start=i))
        await j.sync()

    await asyncio.gather(*(one(i) for i in range(200)))
    assert 1 <= j.fsyncs < 200  # group commit: callers that came during an fsync share the next
    assert j.stats().rows == 200
    await j.aclose()


async def test_a_dead_process_segments_are_claimed_and_a_torn_tail_ignored(
    tmp_path: Path,
) -> None:
    dead = _journal(tmp_path)
    dead.append(_rows(4))
    await dead.sync()
    path = dead.segments[0].path
    await dead.aclose()  # its process "dies": the lock goes with it, the file stays
    with path.open("ab") as f:
        f.write(b'["r99", "2026-')  # a write cut by the crash: no newline
    heir = _journal(tmp_path)
    assert heir.stats().rows == 4
    assert [r[0] for r in _all(heir)] == ["r0", "r1", "r2", "r3"]
    assert not path.exists()
    await heir.aclose()


async def test_a_live_process_segments_are_not_claimed(tmp_path: Path) -> None:
    alive = _journal(tmp_path)
    alive.append(_rows(2))
    await alive.sync()
    other = _journal(tmp_path)  # a sibling worker starting up
    assert other.segments == [] and other.stats().rows == 0
    await alive.aclose()  # now it is gone
    assert other.claim_orphans() == 2
    await other.aclose()


async def test_another_database_rows_are_never_claimed(tmp_path: Path) -> None:
    mine = _journal(tmp_path, database="postgresql:ledger")
    mine.append(_rows(2))
    await mine.aclose()
    stranger = _journal(tmp_path, database="postgresql:other")
    assert stranger.segments == []
    await stranger.aclose()
    assert len(list(tmp_path.glob("seg-*"))) == 1


async def test_a_full_journal_refuses_rows_whole(tmp_path: Path) -> None:
    j = _journal(tmp_path, max_bytes=4096)
    with pytest.raises(JournalError, match="full"):
        for i in range(100):
            j.append(_rows(1, start=i))
    kept = j.stats().rows
    assert 0 < kept < 100
    await j.sync()
    j.mark_dirty(j.segments[0])
    await j.seal()
    assert len(_all(j)) == kept  # no partial line was left behind
    await j.aclose()


async def test_rows_acked_from_memory_settle_their_segment(tmp_path: Path) -> None:
    """`journal` mode: rows reached the database from memory; the sealed file goes."""
    j = _journal(tmp_path)
    seg = j.append(_rows(3))
    await j.sync()
    j.ack(seg, 3)
    assert seg.path.exists()  # still the active segment
    await j.seal()
    assert not seg.path.exists() and j.stats().rows == 0
    await j.aclose()

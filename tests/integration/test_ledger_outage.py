"""The writer against a PostgreSQL it loses: through a TCP proxy on loopback that the tests
cut or black-hole (the machine's server itself is never touched)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.ledger_outage.proxy import TcpProxy
from gateway.config import LedgerConfig
from gateway.ledger.db import create_engine
from gateway.ledger.deliver import deliver
from gateway.ledger.journal import count_rows_in
from gateway.ledger.shape import RowShape
from gateway.ledger.sinks import PostgresSink
from gateway.ledger.writer import LedgerWriter
from tests.conftest import _pg_exec_on, via
from tests.support import count_rows, fetch_dead_letters, fetch_rows, ledger_row

SHAPE = RowShape()
ROOT = Path(__file__).parents[2]


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> float:
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, "timed out"
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


def _writer(url: str, journal: Path, **ledger: object) -> LedgerWriter:
    config = LedgerConfig.model_validate(
        {"flush_interval_ms": 10, "journal_after_ms": 200, "insert_timeout_s": 1.0, **ledger}
    )
    return LedgerWriter(create_engine(url), config, journal_dir=journal)


async def test_bisection_dead_letters_only_the_rows_at_fault(fresh_pg_url: str) -> None:
    """Unfitted, the issue's three values fail on PostgreSQL; they cost only their own rows."""
    sink = PostgresSink(create_engine(fresh_pg_url), SHAPE, timeout_s=5)
    rows = [SHAPE.fit(ledger_row(i)) for i in range(1003)]
    col = SHAPE.columns.index
    for i, (name, value) in zip(
        (100, 500, 900),
        (
            ("requested_model", "m" * 250),
            ("upstream_request_id", "i" * 300),
            ("error_type", "t" * 200),
        ),
        strict=True,
    ):
        r = list(rows[i])
        r[col(name)] = value
        rows[i] = tuple(r)
    d = await deliver(sink, SHAPE, rows)
    await sink.aclose()
    assert (d.inserted, d.dead, d.done, d.lost) == (1000, 3, 1003, 0)
    dead = await asyncio.to_thread(fetch_dead_letters, fresh_pg_url)
    assert sorted(x["row_id"] for x in dead) == ["r100", "r500", "r900"]
    assert all("StringDataRightTruncation" in x["error"] and "22001" in x["error"] for x in dead)
    assert await asyncio.to_thread(count_rows, fresh_pg_url) == 1000
    # a second delivery of the same batch (a replay) writes nothing twice
    sink = PostgresSink(create_engine(fresh_pg_url), SHAPE, timeout_s=5)
    again = await deliver(sink, SHAPE, rows)
    await sink.aclose()
    assert (again.inserted, again.present, again.dead) == (0, 1000, 3)
    assert len(await asyncio.to_thread(fetch_dead_letters, fresh_pg_url)) == 3


async def test_an_outage_is_journaled_then_replayed_once(
    pg_url: str, pg_proxy: TcpProxy, tmp_path: Path
) -> None:
    await asyncio.to_thread(_pg_exec_on, pg_url, "TRUNCATE requests")
    w = _writer(via(pg_proxy, pg_url), tmp_path / "j")
    w.start()
    for i in range(100):
        w.submit(ledger_row(i))
    await _until(lambda: w.status.written == 100)
    pg_proxy.cut()
    for i in range(100, 400):
        w.submit(ledger_row(i))
        if i % 50 == 0:
            await asyncio.sleep(0.05)
    took = await _until(lambda: w.status.journaled == 300 and w.backlog == 0)
    health = w.health()
    assert health.ready and health.database.startswith("unavailable")
    assert health.journal_rows == 300 and count_rows_in(tmp_path / "j") == 300
    pg_proxy.restore()
    await _until(lambda: w.health().journal_rows == 0, timeout=15)
    await w.aclose()
    rows = await asyncio.to_thread(fetch_rows, pg_url)
    assert sorted(r["id"] for r in rows) == sorted(f"r{i}" for i in range(400))
    assert (w.status.written, w.status.replayed, w.status.dropped) == (400, 300, 0)
    assert not list((tmp_path / "j").glob("seg-*"))
    print(f"\n300 rows journaled {took:.2f} s after the cut")


async def test_a_partitioned_database_costs_a_bounded_wait(
    pg_url: str, pg_proxy: TcpProxy, tmp_path: Path
) -> None:
    """Connections that answer nothing (a partition): the insert times out, rows go to the
    journal; the writer is never stuck on a socket."""
    await asyncio.to_thread(_pg_exec_on, pg_url, "TRUNCATE requests")
    w = _writer(via(pg_proxy, pg_url), tmp_path / "j", insert_timeout_s=0.5)
    w.start()
    w.submit(ledger_row(0))
    await _until(lambda: w.status.written == 1)
    pg_proxy.blackhole()
    for i in range(1, 51):
        w.submit(ledger_row(i))
    took = await _until(lambda: w.status.journaled == 50, timeout=5)
    assert took < 2.0  # one insert timeout (0.5 s) and the 200 ms before journaling, not forever
    assert w.health().ready
    pg_proxy.restore()
    await _until(lambda: w.health().journal_rows == 0, timeout=15)
    await w.aclose()
    assert await asyncio.to_thread(count_rows, pg_url) == 51


async def test_rows_replayed_after_they_were_written_are_not_written_twice(
    pg_url: str, tmp_path: Path
) -> None:
    """A crash between the insert and the segment's deletion: the next start replays rows the
    database already has. The primary key and ON CONFLICT DO NOTHING keep one of each."""
    await asyncio.to_thread(_pg_exec_on, pg_url, "TRUNCATE requests")
    first = _writer(pg_url, tmp_path / "j", durability="journal")
    first.start()
    for i in range(20):
        first.submit(ledger_row(i))
    await _until(lambda: first.status.written == 20)
    for seg in first.journal.segments:  # as if it died before letting its journal go
        first.journal.mark_dirty(seg)
    await first.journal.aclose()
    first.journal.segments.clear()
    await first.aclose()
    assert count_rows_in(tmp_path / "j") == 20
    second = _writer(pg_url, tmp_path / "j")
    second.start()
    await _until(lambda: second.health().journal_rows == 0)
    await second.aclose()
    assert (second.status.written, second.status.present) == (0, 20)
    assert await asyncio.to_thread(count_rows, pg_url) == 20


CRASHER = """
import asyncio, os, signal, sys
from pathlib import Path
from gateway.config import LedgerConfig
from gateway.ledger.db import create_engine
from gateway.ledger.writer import LedgerWriter
from tests.support import ledger_row

async def main() -> None:
    url, journal, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    cfg = LedgerConfig(flush_interval_ms=10, journal_after_ms=100, insert_timeout_s=0.5,
                       durability=mode)
    w = LedgerWriter(create_engine(url), cfg, journal_dir=journal)
    w.start()
    for i in range(500):
        w.submit(ledger_row(f"crash{i}"))
        if i % 100 == 0:
            await asyncio.sleep(0.02)
    while w.status.journaled < 500:
        await asyncio.sleep(0.01)
    await w.journal.sync()
    print("journaled", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_kill_9_during_an_outage_loses_nothing_journaled(
    pg_url: str, pg_proxy: TcpProxy, tmp_path: Path
) -> None:
    await asyncio.to_thread(_pg_exec_on, pg_url, "TRUNCATE requests")
    pg_proxy.cut()
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", CRASHER, via(pg_proxy, pg_url), str(tmp_path / "j"), "async"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "journaled" in proc.stdout
    assert count_rows_in(tmp_path / "j") == 500
    pg_proxy.restore()
    heir = _writer(via(pg_proxy, pg_url), tmp_path / "j")
    heir.start()  # claims the dead process's segments
    await _until(lambda: heir.health().journal_rows == 0, timeout=15)
    await heir.aclose()
    assert heir.status.replayed == 500
    assert await asyncio.to_thread(count_rows, pg_url) == 500
    assert not list((tmp_path / "j").glob("seg-*"))

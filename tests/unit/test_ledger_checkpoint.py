"""WAL checkpoints run in a thread, never in a commit on the event loop (ledger/checkpoint.py)."""

import asyncio
import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from gateway.ledger.checkpoint import Checkpointer
from gateway.ledger.db import create_engine, sqlite_file
from gateway.ledger.migrate import upgrade
from gateway.ledger.shape import RowShape
from gateway.ledger.sinks import SqliteSink


def _writer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    return conn


def _fill(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [("x" * 200,)] * 5000)
    conn.execute("COMMIT")


def _wait(check: object, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_the_thread_copies_the_wal_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    conn = _writer(path)
    _fill(conn)
    # autocheckpoint off: ~1 MB of rows sit in the WAL, the database file holds none of them
    assert path.stat().st_size < 100_000
    cp = Checkpointer(str(path), interval_s=0.05)
    cp.start()
    try:
        assert _wait(lambda: path.stat().st_size > 1_000_000)
        assert cp.checkpoints >= 1
    finally:
        cp.stop()
        conn.close()
    assert not cp._thread.is_alive()


def test_without_the_thread_nothing_is_copied(tmp_path: Path) -> None:
    """The control for the test above: the writer's commits alone never checkpoint."""
    path = tmp_path / "l.db"
    conn = _writer(path)
    for _ in range(3):
        _fill(conn)
    time.sleep(0.2)
    assert path.stat().st_size < 100_000
    conn.close()


def test_stop_checkpoints_what_the_last_commits_left(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    conn = _writer(path)
    cp = Checkpointer(str(path), interval_s=3600)  # only the one at stop
    cp.start()
    _fill(conn)
    cp.stop()
    assert path.stat().st_size > 1_000_000 and cp.checkpoints == 1
    conn.close()


async def test_the_ledger_sink_commits_without_checkpointing_and_runs_the_thread(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sink = SqliteSink(engine, RowShape())
    try:
        with sink._sync.connect() as conn:
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
        assert sink._checkpointer is not None and sink._checkpointer._thread.is_alive()
    finally:
        await sink.aclose()
        await engine.dispose()
    assert not sink._checkpointer._thread.is_alive()


def test_an_in_memory_database_has_no_file_to_checkpoint() -> None:
    assert sqlite_file(create_engine("sqlite+aiosqlite:///:memory:")) is None
    assert sqlite_file(create_engine("sqlite+aiosqlite://")) is None
    assert sqlite_file(create_engine("sqlite+aiosqlite:////tmp/x.db")) == "/tmp/x.db"

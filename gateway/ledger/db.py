"""Engine creation from a URL (aiosqlite for the embedded default, asyncpg for PostgreSQL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        # WAL lets readers (reports, tests) and the writer of each worker share the file.
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)


def sync_sqlite_engine(engine: AsyncEngine, *, autocheckpoint: bool = True) -> Engine:
    """A stdlib-sqlite3 engine on the same file as `engine`. Without `autocheckpoint` its
    commits never checkpoint the WAL: something else must (ledger/checkpoint.py)."""
    _direct_sqlite_binds()
    sync = create_sync_engine(
        engine.url.set(drivername="sqlite+pysqlite"), connect_args={"timeout": 30}
    )
    event.listen(sync, "connect", _sqlite_pragmas)
    if not autocheckpoint:
        event.listen(sync, "connect", _no_autocheckpoint)
    return sync


def _no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")


def sqlite_file(engine: AsyncEngine) -> str | None:
    """The database file of a SQLite engine; None for an in-memory database."""
    database = engine.url.database
    if not database or database == ":memory:" or engine.url.query.get("mode") == "memory":
        return None
    return database


def _direct_sqlite_binds() -> None:
    """sqlite3 binds exact ints, floats and strings as they are; a None or a bool first goes
    through its adapter lookup, which fails with a formatted AttributeError every time: ~3,000
    instructions a value, 7 of them a ledger row. An adapter giving the value sqlite3 would
    bind anyway (NULL; 0/1) makes it a dictionary hit. Process-wide and idempotent."""
    sqlite3.register_adapter(bool, int)
    sqlite3.register_adapter(type(None), _NOTHING.get)  # None for None, with no Python call


_NOTHING: dict[None, None] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def database_identity(url: str) -> str:
    """Which database a journal's rows belong to: the backend and database name (an SQLite
    file's absolute path), not the host — a database reached by another address is the same."""
    u = make_url(url)
    name = u.database or ""
    if u.get_backend_name() == "sqlite" and name and name != ":memory:":
        name = str(Path(name).resolve())
    return f"{u.get_backend_name()}:{name}"


def redact_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)

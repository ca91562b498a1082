"""Where ledger rows land: one `Sink` per database kind, and which failures are the rows' fault.

Both sinks insert idempotently — the request id is the primary key and a row already there is
skipped (`ON CONFLICT (id) DO NOTHING`, on PostgreSQL and on SQLite ≥ 3.24) — so a batch can
be retried, or replayed from the journal after a crash, without writing any row twice, and
`insert` returns how many rows were new.

PostgreSQL: the writer owns one asyncpg connection, outside SQLAlchemy's pool, so that a
timeout can do the one safe thing with a connection that stopped answering mid-statement —
`terminate()` it (close the socket; nothing to wait for) — and reconnect later. Every
connect and statement runs under `timeout_s`: a partitioned database costs a bounded wait,
never a writer hung on a socket. A batch is one `INSERT … SELECT … FROM
jsonb_array_elements($1::jsonb)`: one round trip and one statement whatever the batch size,
and its command tag counts the rows inserted. The rows travel as one JSON text made by orjson,
which PostgreSQL parses on its own CPU: 1.7 µs of the gateway's event loop a row (500-row
batches), where asyncpg's binary encoding of the same rows as typed arrays (`unnest($1::text[],
…)`, before) took 11 µs — 5.5 ms held at once for a 500-row batch, which set the p99 on
PostgreSQL. `jsonb`, not `json`: `->>` on `json` re-reads the row's text for every column
(a 500-row batch took the database 29 ms; `jsonb` 12 ms, `unnest` 14). Measured 2026-12-06.

SQLite: written synchronously, on the event loop itself, in transactions of at most
`max_rows` rows: with aiosqlite's thread (or any writer thread) under uvloop the process grew
~1 MB/s without bound at ~7,000 req/s (105 → 133 MiB in 30 s; the same load on PostgreSQL,
or on the stdlib loop, stayed flat), while a WAL-mode insert of 100 rows takes about a
millisecond — a bounded stall. Measured 2026-11-25; the cause (uvloop's cross-thread
wake-ups?) was not pinned down. SQLite has no network to lose. Its WAL checkpoints, which
fsync, run in a thread that never touches the loop (checkpoint.py).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import asyncpg
import orjson
from asyncpg.exceptions._base import DataError as AsyncpgClientDataError
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.ledger.checkpoint import Checkpointer
from gateway.ledger.db import sqlite_file, sync_sqlite_engine
from gateway.ledger.shape import RowShape, Values
from gateway.ledger.tables import Money, dead_letters_table, to_pico

# (row id, error, the row as JSON)
DeadLetter = tuple[str, str, str]


class Sink(Protocol):
    max_rows: int  # rows per insert call

    async def insert(self, rows: Sequence[Values]) -> int: ...

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> None: ...

    async def aclose(self) -> None: ...


def is_data_error(error: BaseException) -> bool:
    """True when the database refused the rows for their values: retrying cannot help, the
    rows at fault must be set aside. Anything else (connection lost, timeout, server starting
    or shutting down, a missing table) is the database's state, and is retried."""
    for e in _causes(error):
        if isinstance(e, AsyncpgClientDataError | UnicodeError | OverflowError):
            return True
        if isinstance(e, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.InterfaceError):
            return True
        sqlstate = getattr(e, "sqlstate", None)
        # SQLSTATE class 22 is "data exception", class 23 "integrity constraint violation"
        if isinstance(sqlstate, str) and sqlstate[:2] in ("22", "23"):
            return True
    return False


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]


def create_sink(engine: AsyncEngine, shape: RowShape, timeout_s: float) -> Sink:
    if engine.dialect.name == "sqlite":
        return SqliteSink(engine, shape)
    if engine.dialect.name == "postgresql":
        return PostgresSink(engine, shape, timeout_s)
    raise ValueError(f"the ledger supports SQLite and PostgreSQL, not {engine.dialect.name}")


def _base_type(column: Any) -> str:
    # values are cast to the unconstrained type (varchar, numeric): an explicit cast to
    # VARCHAR(200) would silently truncate, hiding the value from the column's own check
    compiled = column.type.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    return re.sub(r"\(.*?\)", "", compiled).strip()


def _json_value(v: Any) -> str:
    """orjson's `default`: money goes as its exact decimal text (never a float)."""
    if isinstance(v, Decimal):
        return str(v)
    raise TypeError(f"no JSON form for {type(v).__name__}")


def rows_json(rows: Sequence[Values]) -> bytes:
    # a naive datetime is UTC, as everywhere in the ledger
    return orjson.dumps(rows, default=_json_value, option=orjson.OPT_NAIVE_UTC)


class PostgresSink:
    max_rows = 500

    def __init__(self, engine: AsyncEngine, shape: RowShape, timeout_s: float) -> None:
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._timeout = timeout_s
        self._conn: asyncpg.Connection | None = None
        cols = ", ".join(shape.columns)
        # each row a JSON array in column order; `->>` gives a value's text (NULL for null)
        values = ", ".join(f"(r->>{i})::{_base_type(c)}" for i, c in enumerate(shape.table.columns))
        self._insert = (
            f"INSERT INTO {shape.table.name} ({cols}) "
            f"SELECT {values} FROM jsonb_array_elements($1::jsonb) AS r "
            "ON CONFLICT (id) DO NOTHING"
        )
        self._dead = (
            f"INSERT INTO {dead_letters_table.name} (row_id, failed_at, error, row) "
            "SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[]) "
            "ON CONFLICT (row_id) DO NOTHING"
        )

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn,
                timeout=self._timeout,
                server_settings={"application_name": "gateway-ledger"},
            )
        return self._conn

    async def _execute(self, sql: str, args: list[Any]) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                conn = await self._connection()
                return str(await conn.execute(sql, *args))
        except BaseException as e:
            # a refused row leaves the connection usable (the statement's implicit
            # transaction is rolled back); anything else may leave it mid-protocol
            if not is_data_error(e):
                self._drop()
            raise

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def insert(self, rows: Sequence[Values]) -> int:
        if not rows:
            return 0
        status = await self._execute(self._insert, [rows_json(rows).decode()])
        return int(status.rsplit(" ", 1)[-1])  # "INSERT 0 <rows inserted>"

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        now = datetime.now(UTC)
        await self._execute(
            self._dead,
            [
                [d[0] for d in letters],
                [now] * len(letters),
                [d[1] for d in letters],
                [d[2] for d in letters],
            ],
        )

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                async with asyncio.timeout(self._timeout):
                    await conn.close()
            except BaseException:
                conn.terminate()


class SqliteSink:
    # rows per synchronous transaction: ~6.5 µs a row plus the commit's write to the WAL
    # (~0.3 ms; its checkpoint is not here, see checkpoint.py): ≈0.7 ms of the loop. 32 rows
    # took more CPU a row (more commits) for no clear gain in p99 (gwbench, 2026-12-06)
    max_rows = 64

    def __init__(self, engine: AsyncEngine, shape: RowShape) -> None:
        # a commit that checkpoints fsyncs on the loop (~9 ms): a thread checkpoints instead
        path = sqlite_file(engine)
        self._checkpointer = Checkpointer(path) if path is not None else None
        self._sync: Engine = sync_sqlite_engine(engine, autocheckpoint=path is None)
        if self._checkpointer is not None:
            self._checkpointer.start()
        marks = ", ".join("?" for _ in shape.columns)
        self._insert = (
            f"INSERT INTO {shape.table.name} ({', '.join(shape.columns)}) VALUES ({marks}) "
            "ON CONFLICT (id) DO NOTHING"
        )
        self._dead = (
            f"INSERT INTO {dead_letters_table.name} (row_id, failed_at, error, row) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (row_id) DO NOTHING"
        )
        self._money = [i for i, c in enumerate(shape.table.columns) if isinstance(c.type, Money)]
        self._datetimes = sorted(shape.datetimes)

    def _params(self, values: Values) -> tuple[Any, ...]:
        # what SQLAlchemy's types would have bound: money as integer picodollars (see
        # `Money`), datetimes in SQLAlchemy's own SQLite format so ORM reads parse them
        out = list(values)
        for i in self._money:
            v = out[i]
            if v is not None:
                out[i] = to_pico(v)
        for i in self._datetimes:
            v = out[i]
            if isinstance(v, datetime):
                out[i] = _sqlite_datetime(v)
        return tuple(out)

    async def insert(self, rows: Sequence[Values]) -> int:
        if not rows:
            return 0
        with self._sync.begin() as conn:
            result = conn.exec_driver_sql(self._insert, [self._params(r) for r in rows])
            n = max(int(result.rowcount), 0)
        await asyncio.sleep(0)  # let requests run between chunks
        return n

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        now = _sqlite_datetime(datetime.now(UTC))
        with self._sync.begin() as conn:
            conn.exec_driver_sql(self._dead, [(d[0], now, d[1], d[2]) for d in letters])

    async def aclose(self) -> None:
        self._sync.dispose()
        if self._checkpointer is not None:
            self._checkpointer.stop()


def _sqlite_datetime(v: datetime) -> str:
    # SQLAlchemy's format, "%Y-%m-%d %H:%M:%S.%f": isoformat makes the same 26 characters (then
    # an offset, cut) in 1.0 µs where strftime took 2.2 (one a row, on the event loop)
    return v.isoformat(" ", "microseconds")[:26]

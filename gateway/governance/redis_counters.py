"""The counters in Redis: governor.lua run with EVALSHA, one call for a whole batch of
operations. Replies are the script's arrays, with its strings decoded, exactly as
`LocalCounters.run` returns them.

The connection is an asyncio protocol around hiredis's RESP parser (what redis-py itself parses
with): calls are written as they come and their replies matched in order, so calls in flight
share one connection without waiting for each other's round trip. redis-py's asyncio client
cost ~60 µs of CPU a round trip here against ~37 µs this way (its stream reader and writer,
a task for every timed send, 2-core machine, 2026-12); the request path makes one or fewer a
request. A call that times out closes the connection (its reply may still come, to nobody);
the next call opens a new one.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from importlib.resources import files
from typing import Any, cast

import hiredis
import orjson
from redis.connection import parse_url
from redis.exceptions import ConnectionError, ResponseError

from gateway.governance.counters import Op, Reply

SCRIPT = files("gateway.governance").joinpath("governor.lua").read_text(encoding="utf-8")
SCAN_COUNT = 500

# redis-py's URL grammar (redis://, rediss://, unix://; user, password, db), untyped there
_parse_url = cast(Callable[[str], dict[str, Any]], parse_url)


def _pack(*args: Any) -> bytes:
    packed: bytes = hiredis.pack_command(cast(Any, args))  # its stub types a 1-tuple
    return packed


def _decoded(replies: list[Any]) -> list[Reply]:
    """Replies are integers but for a refusal's reason (index 2): only that is bytes."""
    for r in replies:
        if r[0] == 0 and isinstance(r[2], bytes):
            r[2] = r[2].decode()
    return replies


class _Resp(asyncio.Protocol):
    """One connection: commands written in order, each reply handed to the oldest waiter."""

    def __init__(self) -> None:
        self._parser = hiredis.Reader(replyError=ResponseError)
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        while True:
            try:
                reply = self._parser.gets()
            except hiredis.ProtocolError as e:  # not Redis on the other end, or corrupted
                self.close(ConnectionError(f"Redis protocol error: {e}"))
                return
            if reply is False:
                return
            if not self._waiting:
                self.close(ConnectionError("Redis sent a reply nobody asked for"))
                return
            fut = self._waiting.popleft()
            if fut.done():  # its caller gave up (the connection is closing)
                continue
            if isinstance(reply, ResponseError):
                fut.set_exception(reply)
            else:
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("Redis closed the connection"))

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        assert self.transport is not None
        if self.closed:
            raise ConnectionError("connection to Redis closed")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(fut)
        self.transport.write(packed)
        return fut

    def close(self, error: BaseException) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self._fail(error)

    def _fail(self, error: BaseException) -> None:
        while self._waiting:
            fut = self._waiting.popleft()
            if not fut.done():
                fut.set_exception(error)


def _tls(where: dict[str, Any]) -> ssl.SSLContext:
    """`rediss://`: the server's certificate checked against the system's CAs, or the file
    `?ssl_ca_certs=` names; `?ssl_cert_reqs=none` turns the check off (redis-py's options)."""
    ctx = ssl.create_default_context(cafile=where.get("ssl_ca_certs"))
    if str(where.get("ssl_cert_reqs", "required")).lower() == "none":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class RedisCounters:
    def __init__(self, url: str, prefix: str, timeout_s: float, connections: int = 4) -> None:
        self.prefix = prefix
        # calls in flight at once (SharedCounters' batches), all on one pipelined connection
        self.connections = connections
        self._timeout = timeout_s
        self._where = _parse_url(url)
        self._conn: _Resp | None = None
        self._connecting: asyncio.Future[_Resp] | None = None
        self._sha: str | None = None

    async def _connection(self) -> _Resp:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        if self._connecting is None:  # the first caller connects; the others wait for it
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> _Resp:
        loop = asyncio.get_running_loop()
        w = self._where
        async with asyncio.timeout(self._timeout):
            if "path" in w:
                _, conn = await loop.create_unix_connection(_Resp, w["path"])
            else:
                tls = _tls(w) if "connection_class" in w else None
                host, port = w.get("host", "localhost"), w.get("port", 6379)
                _, conn = await loop.create_connection(_Resp, host, port, ssl=tls)
            try:
                hello = []
                if w.get("password"):
                    auth = (w["username"], w["password"]) if w.get("username") else (w["password"],)
                    hello.append(conn.send(_pack("AUTH", *auth)))
                if w.get("db"):
                    hello.append(conn.send(_pack("SELECT", w["db"])))
                await asyncio.gather(*hello)  # every reply retrieved, the first error raised
            except BaseException:
                conn.close(ConnectionError("Redis handshake failed"))
                raise
        self._conn = conn
        return conn

    async def _call(self, *args: Any) -> Any:
        conn = await self._connection()
        fut = conn.send(_pack(*args))
        try:
            async with asyncio.timeout(self._timeout):
                return await fut
        except ResponseError:
            raise  # an error reply: the connection is fine
        except BaseException:
            # timed out or cancelled mid-call: the connection carries a reply nobody will
            # read in its place, and Redis may be stuck — start afresh on the next call
            conn.close(ConnectionError("connection to Redis closed after a failed call"))
            raise

    async def ping(self) -> None:
        await self._call("PING")

    async def run(self, ops: Sequence[Op], now_ms: int | None = None) -> list[Reply]:
        args = (self.prefix, orjson.dumps(ops), "" if now_ms is None else str(now_ms))
        if self._sha is None:
            self._sha = (await self._call("SCRIPT", "LOAD", SCRIPT)).decode()
        try:
            replies = await self._call("EVALSHA", self._sha, 0, *args)
        except ResponseError as e:
            if not str(e).startswith("NOSCRIPT"):
                raise
            # Redis restarted and lost its script cache
            self._sha = (await self._call("SCRIPT", "LOAD", SCRIPT)).decode()
            replies = await self._call("EVALSHA", self._sha, 0, *args)
        return _decoded(replies)

    async def delete_all(self) -> None:
        """Every key under the prefix (tests, benchmarks)."""
        cursor = b"0"
        while True:
            cursor, keys = await self._call(
                "SCAN", cursor, "MATCH", self.prefix + "*", "COUNT", SCAN_COUNT
            )
            if keys:
                await self._call("DEL", *keys)
            if cursor == b"0":
                return

    async def aclose(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close(ConnectionError("closed"))
        self._conn = None

"""One upstream connection of the HTTP/1.1 client (`http1.py`): an asyncio protocol that writes
a request and reads its answer with httptools, waking its waiter at the answer's end — or, for a
stream, at the headers and at every body piece — and failing it on a reset, garbage or a timeout.
"""

from __future__ import annotations

import asyncio

import httptools

# response headers kept (lower-cased): all that adapters and the executor read
KEPT = frozenset({b"retry-after", b"x-request-id", b"request-id"})
HIGH_WATER = 1 << 20  # a stream's unread bytes past this pause reading from the socket


class ConnectError(OSError):
    """The connection could not be made (refused, unreachable, unknown name, TLS refused)."""


class Disconnected(ConnectionError):
    """The upstream closed the connection before its answer was complete."""


class ProtocolError(Exception):
    """The upstream's bytes are not a valid HTTP/1.1 answer."""


class Timeout(TimeoutError):
    pass


class Connection(asyncio.Protocol):
    """One connection and the answer being read on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._reset(False)

    def _reset(self, streaming: bool) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.complete = False
        self.keep_alive = False
        self._framed = False  # a content-length or a transfer-encoding: else it ends at EOF
        self._body: list[bytes] = []
        self._queued = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._streaming = streaming  # wake at the headers and at every body piece

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(ProtocolError(str(e) or type(e).__name__))
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost tells the waiter

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete:
            return
        if self.status and not self._framed and exc is None:
            self.on_message_complete()  # an answer delimited by the connection's end
            self.keep_alive = False
        else:
            self._fail(Disconnected("the upstream closed the connection"))

    # --- httptools' callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in KEPT:
            self.headers[name.decode()] = value.decode("latin-1")
        elif name == b"content-length" or name == b"transfer-encoding":
            self._framed = True

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if self._streaming:
            self._wake()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        if self._streaming:
            self._queued += len(body)
            if self._queued > HIGH_WATER and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
            self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self._framed and self._parser.should_keep_alive()
        self._wake()

    # --- used by the client --------------------------------------------------------------

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, error: BaseException) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_exception(error)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def send(self, data: bytes, streaming: bool) -> asyncio.Future[None]:
        """Write a request; the future is done at the answer's end (or, streaming, its headers)."""
        self._reset(streaming)
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        if self.closed or self.transport is None:
            waiter.set_exception(Disconnected("the upstream closed the connection"))
        else:
            self.transport.write(data)
        return waiter

    def take(self) -> list[bytes]:
        """The body pieces received since the last take."""
        parts, self._body = self._body, []
        self._queued = 0
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()
        return parts

    def arm(self) -> asyncio.Future[None]:
        """A stream's waiter for its next body piece, or its end."""
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        if self.closed and not self.complete:
            waiter.set_exception(Disconnected("the upstream closed the connection"))
        return waiter


def expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(Timeout("no answer in time"))


async def within(waiter: asyncio.Future[None], timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    timer = loop.call_at(loop.time() + max(timeout_s, 0.0), expire, waiter)
    try:
        await waiter
    finally:
        timer.cancel()

"""The upstream HTTP/1.1 client (`gateway.providers.http1`) against real servers on loopback:
raw asyncio servers written here (so each test controls the exact bytes) and one uvicorn app."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.config import ProviderConfig
from gateway.core import UpstreamRequest
from gateway.errors import UpstreamConnectionError, UpstreamError, UpstreamTimeout
from gateway.providers import http1
from gateway.providers.transport import Transport
from tests.support import free_port, serve

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


@dataclass
class Received:
    line: bytes
    headers: dict[str, str]
    body: bytes


@dataclass
class Peer:
    """One accepted connection, `n` its number (from 1), as a handler sees it."""

    up: Upstream
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    n: int

    async def read(self) -> Received | None:
        """The next request (recorded on the server), or None at the client's end."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        line, *lines = head[:-4].split(b"\r\n")
        headers = {}
        for h in lines:
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        self.up.requests.append(r := Received(line, headers, body))
        return r

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until_eof(self) -> None:
        await self.reader.read()  # the client closes (or aborts) the connection


Handler = Callable[[Peer], Awaitable[None]]


@dataclass
class Upstream:
    """A raw HTTP/1.1 server on 127.0.0.1 counting its connections, open and in all."""

    handler: Handler
    port: int = 0
    connections: int = 0
    open: int = 0
    max_open: int = 0
    requests: list[Received] = field(default_factory=list)
    tls: ssl.SSLContext | None = None  # serve https (tls_pair() makes one with its client side)
    _peers: list[tuple[asyncio.Task[Any], asyncio.StreamWriter]] = field(default_factory=list)
    _server: asyncio.Server | None = None

    def url(self, path: str = "/") -> str:
        if self.tls is not None:  # the certificate names localhost
            return f"https://localhost:{self.port}{path}"
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> Upstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for _, writer in self._peers:
            writer.transport.abort()  # handlers reading or writing end by themselves
        with contextlib.suppress(TimeoutError):  # one still stuck after a second is cancelled
            await asyncio.wait_for(asyncio.gather(*(t for t, _ in self._peers)), 1)
        await self._server.wait_closed()

    async def received(self, n: int) -> None:
        deadline = time.monotonic() + 2
        while len(self.requests) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._peers.append((task, writer))
        self.connections += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            await self.handler(Peer(self, reader, writer, self.connections))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()


def serving(answer: bytes, delay: float = 0.0) -> Handler:
    """Answers every request on the connection with `answer`, after `delay`."""

    async def handle(peer: Peer) -> None:
        while await peer.read() is not None:
            await asyncio.sleep(delay)
            await peer.send(answer)

    return handle


def first_then_ok(first: Handler) -> Handler:
    """The first connection gets `first`, later ones a keep-alive 200 "ok"."""

    async def handle(peer: Peer) -> None:
        await (first if peer.n == 1 else serving(OK))(peer)

    return handle


async def closes_mid_body(peer: Peer) -> None:
    await peer.read()
    await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")


async def garbage(peer: Peer) -> None:
    await peer.read()
    await peer.send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    await peer.until_eof()


async def silent(peer: Peer) -> None:
    await peer.read()
    await peer.until_eof()


@asynccontextmanager
async def pool(limit: int = 10, keepalive_s: float = 4.0) -> AsyncIterator[http1.Client]:
    client = http1.Client(limit=limit, keepalive_s=keepalive_s, connect_timeout_s=1.0)
    try:
        yield client
    finally:
        await client.aclose()


async def get(
    client: http1.Client, up: Upstream, timeout_s: float = 1.0
) -> tuple[int, dict[str, str], bytes]:
    return await client.request("POST", up.url("/v1/x"), {}, b"{}", timeout_s)


async def test_a_whole_answer_keeps_only_the_headers_read_and_the_request_is_as_sent() -> None:
    answer = (
        b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nRetry-After: 3\r\n"
        b"X-Request-ID: abc\r\nrequest-id: r1\r\nx-other: y\r\ncontent-length: 7\r\n\r\n"
        b'{"a":1}'
    )
    async with Upstream(serving(answer)) as up, pool() as c:
        headers = {"authorization": "Bearer k", "content-type": "application/json"}
        answered = await c.request("POST", up.url("/v1/chat?x=1"), headers, b'{"q":22}', 1.0)
    kept = {"retry-after": "3", "x-request-id": "abc", "request-id": "r1"}
    assert answered == (201, kept, b'{"a":1}')
    [got] = up.requests
    assert got.line == b"POST /v1/chat?x=1 HTTP/1.1"
    assert got.headers == {
        "host": f"127.0.0.1:{up.port}",
        "authorization": "Bearer k",
        "content-type": "application/json",
        "content-length": "8",
    }
    assert got.body == b'{"q":22}'


async def test_a_connection_idle_past_keepalive_s_is_not_reused() -> None:
    async with Upstream(serving(OK)) as up, pool(keepalive_s=0.2) as c:
        await get(c, up)
        await get(c, up)
        assert up.connections == 1
        await asyncio.sleep(0.3)
        assert await get(c, up) == (200, {}, b"ok")
    assert up.connections == 2


async def test_at_most_limit_connections_are_open_and_the_rest_wait_their_turn() -> None:
    async with Upstream(serving(OK, delay=0.1)) as up, pool(limit=2) as c:
        t0 = time.monotonic()
        answers = await asyncio.gather(*(get(c, up, 2.0) for _ in range(5)))
        elapsed = time.monotonic() - t0
    assert answers == [(200, {}, b"ok")] * 5
    assert up.max_open == 2 and up.connections == 2
    assert elapsed >= 0.25  # three rounds of 0.1 s on two connections


@pytest.mark.parametrize(
    ("parts", "connections"),
    [
        ([b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello", b" world"], 1),
        (
            [
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
                b"lo\r\n6\r\n world\r\n",
                b"0\r\n\r\n",
            ],
            1,
        ),
        ([b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 11\r\n\r\nhello world"], 2),
        ([b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nhello ", b"world", None], 2),
    ],
    ids=["content-length", "chunked", "connection-close", "until-eof"],
)
async def test_an_answer_is_read_whole_and_its_connection_reused_only_if_kept_alive(
    parts: list[bytes | None], connections: int
) -> None:
    async def answer(peer: Peer) -> None:  # the server would serve more on every connection
        while await peer.read() is not None:
            for part in parts:
                await asyncio.sleep(0.02)
                if part is None:
                    return  # the connection's end is the answer's
                await peer.send(part)

    async with Upstream(answer) as up, pool() as c:
        assert await get(c, up) == (200, {}, b"hello world")
        assert await get(c, up) == (200, {}, b"hello world")
    assert up.connections == connections


@pytest.mark.parametrize(
    ("first", "error"),
    [
        (closes_mid_body, http1.Disconnected),
        (garbage, http1.ProtocolError),
        (silent, http1.Timeout),
    ],
    ids=["closed-mid-body", "garbage", "no-answer"],
)
async def test_a_failed_answer_raises_and_frees_its_connection(
    first: Handler, error: type[Exception]
) -> None:
    async with Upstream(first_then_ok(first)) as up, pool(limit=1) as c:
        t0 = time.monotonic()
        with pytest.raises(error):
            await get(c, up, 0.3)
        elapsed = time.monotonic() - t0
        assert 0.25 <= elapsed < 0.6 if error is http1.Timeout else elapsed < 0.25
        assert await get(c, up) == (200, {}, b"ok")  # limit=1: the failed one's slot is free
    assert up.connections == 2


async def test_a_refused_connection_raises_connect_error_and_frees_its_slot() -> None:
    port = free_port()  # nothing listens there, yet
    async with pool(limit=1) as c:
        with pytest.raises(http1.ConnectError):
            await c.request("GET", f"http://127.0.0.1:{port}/", {}, b"", 1.0)
        async with Upstream(serving(OK), port=port) as up:
            assert await get(c, up) == (200, {}, b"ok")


async def test_a_cancelled_request_leaves_the_pool_usable() -> None:
    async with Upstream(first_then_ok(silent)) as up, pool(limit=1) as c:
        task = asyncio.create_task(get(c, up, 5.0))
        await up.received(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await get(c, up) == (200, {}, b"ok")
    assert up.connections == 2


async def test_a_waiter_cancelled_as_it_is_woken_passes_the_turn_on() -> None:
    async with Upstream(serving(OK, delay=0.05)) as up, pool(limit=1) as c:
        first = asyncio.create_task(get(c, up, 5.0))
        second = asyncio.create_task(get(c, up, 0.5))
        await get(c, up)  # runs first: takes the only connection; both tasks queue for it
        first.cancel()  # in the same step as the release that woke it
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await second == (200, {}, b"ok")


async def test_a_stream_gives_the_head_first_then_pieces_as_they_are_sent() -> None:
    go = asyncio.Event()

    async def two_parts(peer: Peer) -> None:
        while await peer.read() is not None:
            head = b"HTTP/1.1 200 OK\r\nx-request-id: s1\r\ntransfer-encoding: chunked\r\n\r\n"
            await peer.send(head + b"5\r\nfirst\r\n")
            await go.wait()
            await peer.send(b"6\r\nsecond\r\n0\r\n\r\n")

    async with Upstream(two_parts) as up, pool() as c:
        s = await c.stream("POST", up.url(), {}, b"{}", 1.0)
        assert (s.status, s.headers) == (200, {"x-request-id": "s1"})
        pieces = s.chunks()
        assert await anext(pieces) == b"first"
        go.set()
        assert b"".join([p async for p in pieces]) == b"second"
        await s.aclose()
        assert await get(c, up) == (200, {"x-request-id": "s1"}, b"firstsecond")
    assert up.connections == 1  # the stream read to its end left its connection for reuse


@pytest.mark.parametrize("read_timeout", [False, True], ids=["closed-early", "read-timeout"])
async def test_a_stream_left_before_its_end_closes_its_connection(read_timeout: bool) -> None:
    async def stalls(peer: Peer) -> None:
        await peer.read()
        await peer.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await peer.until_eof()

    async with Upstream(first_then_ok(stalls)) as up, pool(limit=1) as c:
        s = await c.stream("POST", up.url(), {}, b"{}", 0.3)
        pieces = s.chunks()
        assert await anext(pieces) == b"abc"
        if read_timeout:
            t0 = time.monotonic()
            with pytest.raises(http1.Timeout):
                await anext(pieces)
            assert 0.25 <= time.monotonic() - t0 < 0.6
        await s.aclose()
        assert await get(c, up) == (200, {}, b"ok")  # limit=1: the slot is free again
        await asyncio.sleep(0.05)
        assert up.open == 1  # the first connection is gone, not parked
    assert up.connections == 2


@pytest.mark.parametrize(
    "headers", [{"x-a": "v\r\nx-injected: 1"}, {"x-a": "v\nx"}, {"x-a\r\nx-b": "v"}]
)
async def test_a_line_break_in_a_header_is_refused(headers: dict[str, str]) -> None:
    async with Upstream(serving(OK)) as up, pool(limit=1) as c:
        with pytest.raises(ValueError):
            await c.request("POST", up.url(), headers, b"{}", 1.0)
        assert await get(c, up) == (200, {}, b"ok")
    assert [r.line for r in up.requests] == [b"POST /v1/x HTTP/1.1"]  # only the good one


async def test_against_uvicorn_a_whole_answer_and_a_stream() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = (await receive())["body"]
        if scope["path"] == "/stream":  # no content-length: uvicorn sends it chunked
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for piece in (b"a", b"b", b""):
                await send({"type": "http.response.body", "body": piece, "more_body": bool(piece)})
            return
        head = [(b"content-length", str(len(body)).encode()), (b"x-request-id", b"u1")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": body})

    with serve(app) as server:
        async with pool() as c:
            answer = await c.request("POST", f"{server.url}/echo", {}, b"hi", 2.0)
            assert answer == (200, {"x-request-id": "u1"}, b"hi")
            s = await c.stream("POST", f"{server.url}/stream", {}, b"", 2.0)
            try:
                assert b"".join([p async for p in s.chunks()]) == b"ab"
            finally:
                await s.aclose()


def _provider(base: str, timeout_s: float = 1.0) -> ProviderConfig:
    return ProviderConfig(name="p", kind="vllm", api_base=base, timeout_s=timeout_s)


@pytest.mark.parametrize(
    ("handler", "error", "message"),
    [
        (None, UpstreamConnectionError, "cannot connect"),
        (silent, UpstreamTimeout, "within 0.3 s"),
        (closes_mid_body, UpstreamConnectionError, "closed the connection"),
    ],
    ids=["refused", "timeout", "closed-mid-body"],
)
async def test_transport_maps_the_clients_errors(
    handler: Handler | None, error: type[UpstreamError], message: str
) -> None:
    async def send(base: str) -> None:
        provider = _provider(base, timeout_s=0.3)
        transport = Transport()
        try:
            await transport.send(provider, UpstreamRequest("POST", f"{base}/x", {}, b"{}", False))
        finally:
            await transport.aclose()

    with pytest.raises(error, match=message):
        if handler is None:
            await send(f"http://127.0.0.1:{free_port()}")
        else:
            async with Upstream(handler) as up:
                await send(up.url("/v1"))


def tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed certificate for localhost, and a client
    context that trusts it (and nothing else)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


async def test_https_answers_streams_and_keeps_its_connection(tmp_path: Path) -> None:
    server_tls, client_tls = tls_pair(tmp_path)

    async def handle(peer: Peer) -> None:
        while (r := await peer.read()) is not None:
            if r.line.startswith(b"POST /stream"):
                await peer.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                await peer.send(b"5\r\nfirst\r\n")
                await asyncio.sleep(0.05)
                await peer.send(b"6\r\nsecond\r\n0\r\n\r\n")
            else:
                await peer.send(OK)

    async with Upstream(handle, tls=server_tls) as up:
        client = http1.Client(connect_timeout_s=1.0, ssl_context=client_tls)
        try:
            assert await client.request("POST", up.url("/v1/x"), {}, b"{}", 1.0) == (
                200,
                {},
                b"ok",
            )
            streamed = await client.stream("POST", up.url("/stream"), {}, b"{}", 1.0)
            try:
                assert [c async for c in streamed.chunks()] == [b"first", b"second"]
            finally:
                await streamed.aclose()
            assert await client.request("POST", up.url("/v1/x"), {}, b"{}", 1.0) == (
                200,
                {},
                b"ok",
            )
        finally:
            await client.aclose()
        assert up.requests[0].headers["host"] == f"localhost:{up.port}"
    assert up.connections == 1  # one TLS handshake, three requests


async def test_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    server_tls, _ = tls_pair(tmp_path)
    async with Upstream(serving(OK), tls=server_tls) as up, pool() as c:  # the system's CAs
        with pytest.raises(http1.ConnectError, match="(?i)certificate"):
            await c.request("POST", up.url("/v1/x"), {}, b"{}", 1.0)
        assert up.requests == []
        transport = Transport()
        try:
            with pytest.raises(UpstreamConnectionError, match="cannot connect"):
                await transport.send(
                    _provider(up.url("/v1")),
                    UpstreamRequest("POST", up.url("/v1/x"), {}, b"{}", stream=False),
                )
        finally:
            await transport.aclose()

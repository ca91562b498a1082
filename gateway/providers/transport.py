"""The only module that talks to upstreams: one pooled HTTP/1.1 client per provider.

The client is `http1.py`'s own (keep-alive pools over asyncio protocols, httptools parsing):
aiohttp's client, used here before, cost a third of the gateway's CPU a request (http1.py has
the measurement); httpx's pool, before that, collapsed to ~180 req/s at 50 concurrent where
aiohttp's sustained ~3,150 (shared/bench/gwbench/README.md). The client's exceptions are mapped
to our `UpstreamError` subclasses here, once, so nothing above this module knows the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from gateway.config import ProviderConfig
from gateway.core import UpstreamRequest
from gateway.errors import (
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from gateway.providers import http1


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class UpstreamStream:
    status: int
    headers: dict[str, str]
    chunks: AsyncIterator[bytes]

    async def read_all(self) -> bytes:
        return b"".join([c async for c in self.chunks])


@contextmanager
def map_client_errors(provider: str, timeout_s: float) -> Iterator[None]:
    try:
        yield
    except Exception as e:
        mapped = client_error(e, provider, timeout_s)
        if mapped is None:
            raise
        raise mapped from None


def client_error(e: Exception, provider: str, timeout_s: float) -> UpstreamError | None:
    """The client's exception (or a timeout) as ours; None for anything else, ours included."""
    if isinstance(e, UpstreamError):
        return None
    if isinstance(e, TimeoutError):  # http1.Timeout included
        return UpstreamTimeout(f"{provider}: no answer from the upstream within {timeout_s:g} s")
    if isinstance(e, http1.ConnectError):
        return UpstreamConnectionError(
            f"{provider}: cannot connect to the upstream ({e.strerror or 'refused'})"
        )
    if isinstance(e, ConnectionError):  # http1.Disconnected, and resets while writing
        return UpstreamConnectionError(
            f"{provider}: the upstream closed the connection before answering completely"
        )
    if isinstance(e, http1.ProtocolError):
        return UpstreamProtocolError(f"{provider}: unreadable upstream answer ({e})")
    if isinstance(e, OSError):
        return UpstreamConnectionError(f"{provider}: upstream request failed ({type(e).__name__})")
    return None


class Transport:
    """One client (its pools) per provider, made on first use; closed with the app."""

    def __init__(self) -> None:
        self._clients: dict[str, http1.Client] = {}

    def _client(self, provider: ProviderConfig) -> http1.Client:
        c = self._clients.get(provider.name)
        if c is None:
            c = self._clients[provider.name] = http1.Client(
                limit=provider.max_connections,
                keepalive_s=provider.keepalive_s,
                connect_timeout_s=provider.connect_timeout_s,
            )
        return c

    async def send(self, provider: ProviderConfig, req: UpstreamRequest) -> UpstreamResponse:
        try:  # map_client_errors inlined: a generator context manager a request costs more
            status, headers, body = await self._client(provider).request(
                req.method, req.url, req.headers, req.body, provider.timeout_s
            )
        except Exception as e:
            mapped = client_error(e, provider.name, provider.timeout_s)
            if mapped is None:
                raise
            raise mapped from None
        return UpstreamResponse(status, headers, body)

    @asynccontextmanager
    async def stream(
        self, provider: ProviderConfig, req: UpstreamRequest
    ) -> AsyncIterator[UpstreamStream]:
        # a stream may legitimately run for minutes: each wait is bounded, not the total
        with map_client_errors(provider.name, provider.timeout_s):
            r = await self._client(provider).stream(
                req.method, req.url, req.headers, req.body, provider.timeout_s
            )
        try:
            yield UpstreamStream(r.status, r.headers, _chunks(r, provider))
        finally:
            await r.aclose()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            await c.aclose()


async def _chunks(r: http1.Streamed, provider: ProviderConfig) -> AsyncIterator[bytes]:
    with map_client_errors(provider.name, provider.timeout_s):
        async for chunk in r.chunks():
            yield chunk

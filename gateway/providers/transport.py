"""The only module that talks to upstreams: one pooled aiohttp session per provider.

aiohttp rather than httpx because of a measurement on these machines: a bare pass-through on
httpx.AsyncClient served ~180 req/s at 50 concurrent, on aiohttp's client ~3,150
(shared/bench/gwbench/README.md). aiohttp's exceptions are mapped to our `UpstreamError`
subclasses here, once, so nothing above this module knows which client we use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import aiohttp

from gateway.config import ProviderConfig
from gateway.core import UpstreamRequest
from gateway.errors import (
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)


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
    """aiohttp's exception (or a timeout) as ours; None for anything else, ours included."""
    if isinstance(e, UpstreamError):
        return None
    if isinstance(e, TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamTimeout(f"{provider}: no answer from the upstream within {timeout_s:g} s")
    if isinstance(e, aiohttp.ClientConnectorError):
        return UpstreamConnectionError(
            f"{provider}: cannot connect to the upstream ({e.os_error.strerror or 'refused'})"
        )
    if isinstance(
        e, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientOSError
    ):
        return UpstreamConnectionError(
            f"{provider}: the upstream closed the connection before answering completely"
        )
    if isinstance(e, aiohttp.ClientResponseError):
        return UpstreamProtocolError(f"{provider}: unreadable upstream answer ({e.message})")
    if isinstance(e, aiohttp.ClientError):
        return UpstreamConnectionError(f"{provider}: upstream request failed ({type(e).__name__})")
    return None


class Transport:
    """Pooled sessions keyed by provider name; created in the app's lifespan, closed on exit."""

    def __init__(self, providers: list[ProviderConfig] | tuple[ProviderConfig, ...]) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        # per provider: (timeout for a whole answer, timeout for a stream)
        self._timeouts = {
            p.name: (
                aiohttp.ClientTimeout(total=p.timeout_s, sock_connect=p.connect_timeout_s),
                # a stream may legitimately run for minutes: bound each read, not the total
                aiohttp.ClientTimeout(
                    total=None, sock_connect=p.connect_timeout_s, sock_read=p.timeout_s
                ),
            )
            for p in providers
        }

    def _session(self, provider: ProviderConfig) -> aiohttp.ClientSession:
        s = self._sessions.get(provider.name)
        if s is None:
            connector = aiohttp.TCPConnector(
                limit=provider.max_connections,
                ttl_dns_cache=300,
                enable_cleanup_closed=True,
                keepalive_timeout=provider.keepalive_s,
            )
            s = aiohttp.ClientSession(
                connector=connector,
                # fewer auto headers to compute per request; no Accept-Encoding means no
                # compressed answers to inflate on the hot path
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
                # the stream path and the body path set their own timeouts per request
                timeout=aiohttp.ClientTimeout(total=None),
            )
            self._sessions[provider.name] = s
        return s

    async def send(self, provider: ProviderConfig, req: UpstreamRequest) -> UpstreamResponse:
        timeout = self._timeouts[provider.name][0]
        try:  # map_client_errors inlined: a generator context manager a request costs more
            async with self._session(provider).request(
                req.method, req.url, data=req.body, headers=req.headers, timeout=timeout
            ) as r:
                body = await r.read()
                return UpstreamResponse(r.status, _headers(r), body)
        except Exception as e:
            mapped = client_error(e, provider.name, provider.timeout_s)
            if mapped is None:
                raise
            raise mapped from None

    @asynccontextmanager
    async def stream(
        self, provider: ProviderConfig, req: UpstreamRequest
    ) -> AsyncIterator[UpstreamStream]:
        timeout = self._timeouts[provider.name][1]
        with map_client_errors(provider.name, provider.timeout_s):
            async with self._session(provider).request(
                req.method, req.url, data=req.body, headers=req.headers, timeout=timeout
            ) as r:
                yield UpstreamStream(r.status, _headers(r), _chunks(r, provider))

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            await s.close()


async def _chunks(r: aiohttp.ClientResponse, provider: ProviderConfig) -> AsyncIterator[bytes]:
    with map_client_errors(provider.name, provider.timeout_s):
        async for chunk in r.content.iter_any():
            yield chunk


def _headers(r: aiohttp.ClientResponse) -> dict[str, str]:
    # only what adapters read; lower-cased keys
    out = {}
    for k in ("retry-after", "x-request-id", "request-id"):
        v = r.headers.get(k)
        if v is not None:
            out[k] = v
    return out

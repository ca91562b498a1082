"""The aiohttp transport against a bare HTTP/1.1 server on loopback: connection reuse."""

from __future__ import annotations

import asyncio

from gateway.config import ProviderConfig
from gateway.core import UpstreamRequest
from gateway.providers.transport import Transport


async def test_idle_connections_retire_before_the_upstreams_keepalive() -> None:
    """A pooled connection idle for `keepalive_s` is not reused (the upstream — vLLM's uvicorn
    after 5 s — may be closing it just then); a busy one is."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: 2\r\n\r\n{}"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    provider = ProviderConfig(name="p", kind="vllm", api_base=base, keepalive_s=0.2)
    transport = Transport()
    req = UpstreamRequest("POST", f"{base}/chat/completions", {}, b"{}", False)
    try:
        assert (await transport.send(provider, req)).body == b"{}"
        await transport.send(provider, req)
        assert connections == 1  # reused while fresh
        await asyncio.sleep(0.5)
        assert (await transport.send(provider, req)).status == 200
        assert connections == 2  # idle past keepalive_s: a new connection
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()


def test_keepalive_default_is_below_vllms() -> None:
    p = ProviderConfig(name="p", kind="vllm", api_base="http://127.0.0.1:1/v1")
    assert 0 < p.keepalive_s < 5  # vllm/envs.py VLLM_HTTP_TIMEOUT_KEEP_ALIVE defaults to 5

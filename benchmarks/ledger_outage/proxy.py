"""A TCP proxy on loopback that can cut the database away from the gateway, without touching
the database server that other people on the machine share.

    proxy = TcpProxy("127.0.0.1", 5432).start()   # its own thread and event loop
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/db"
    proxy.cut()        # existing connections reset, new ones refused (database down)
    proxy.blackhole()  # connections accepted, nothing forwarded either way (a partition)
    proxy.restore()
    proxy.stop()
"""

from __future__ import annotations

import asyncio
import threading
from typing import Literal

Mode = Literal["open", "cut", "blackhole"]


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.mode: Mode = "open"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._pairs: set[asyncio.StreamWriter] = set()

    def start(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.transport.abort()
            return
        self._pairs.add(writer)
        if self.mode == "blackhole":
            await reader.read()  # swallow until the client gives up
            self._pairs.discard(writer)
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._pairs.add(up_writer)
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._pairs.discard(w)
            w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if self.mode == "blackhole":
                continue  # a partition: bytes go nowhere, nobody is told
            if self.mode == "cut":
                break
            writer.write(data)
            await writer.drain()
        writer.transport.abort()

    def _set(self, mode: Mode) -> None:
        def apply() -> None:
            self.mode = mode
            if mode == "cut":
                for w in list(self._pairs):
                    w.transport.abort()
                self._pairs.clear()

        self._loop.call_soon_threadsafe(apply)

    def cut(self) -> None:
        self._set("cut")

    def blackhole(self) -> None:
        self._set("blackhole")

    def restore(self) -> None:
        self._set("open")

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._pairs):
                w.transport.abort()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

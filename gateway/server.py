"""uvicorn's server with the gateway's drain: what SIGTERM does (serving/drain.py has the phases).

uvicorn alone, on SIGTERM, closed its listener and every idle keep-alive connection at once —
requests already on their way over those connections were lost, with no answer and no row —
and after `timeout_graceful_shutdown` cancelled what still ran, which the ledger recorded as
499 `client_disconnected`. Here:

1. SIGTERM: the drain begins — /health/ready answers 503, every request is still served, and
   every response says `Connection: close`, so clients retire their connections.
2. After `server.drain_delay_s` (a second SIGTERM, or SIGINT at once): the listener closes.
   A connection is closed only once it has been idle for `LINGER_S`: a request that was
   already on its way over it is answered (503 `gateway_shutdown`, `Connection: close`)
   instead of meeting a closed socket.
3. After `server.drain_timeout_s` more: requests still running are cut by the gateway —
   streams end with an in-band error event, whole answers with a 503; their rows say
   `gateway_shutdown`. `CUT_GRACE_S` later, uvicorn's cancellation is the last resort.

One process only: `--workers N` runs uvicorn's own supervisor, whose workers stop the uvicorn
way (no delay, `drain_timeout_s` then cancellation) — see the README.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from types import FrameType
from typing import Any

import uvicorn

from gateway.config import ServerConfig
from gateway.serving.drain import Drain

log = logging.getLogger("gateway")

LINGER_S = 1.0  # an idle connection stays open this long after the listener closes
CUT_GRACE_S = 2.0  # after cutting, the time cut requests have to send their last bytes
POLL_S = 0.05


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain, settings: ServerConfig) -> None:
        super().__init__(config)
        self.drain = drain
        self.delay_s = settings.drain_delay_s
        self.timeout_s = settings.drain_timeout_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first = not self.drain.draining
        self.drain.begin()  # plain attribute writes: safe in a signal handler
        if first and sig == signal.SIGTERM and self.delay_s > 0:
            self._captured_signals.append(sig)  # re-raised after the shutdown, as uvicorn does
            log.info(
                "SIGTERM: not ready from now on; serving %.0f s more (server.drain_delay_s), "
                "then finishing requests in flight for up to %.0f s",
                self.delay_s,
                self.timeout_s,
            )
            return
        super().handle_exit(sig, frame)  # stop now (a second SIGINT forces, as in uvicorn)

    async def on_tick(self, counter: int) -> bool:
        since = self.drain.signalled_at
        if self.drain.phase == "draining" and since is not None:
            if time.monotonic() - since >= self.delay_s:
                self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.drain.stop()
        log.info(
            "drain: listener closed; %d requests in flight, up to %.0f s to finish",
            self.drain.running,
            self.timeout_s,
        )
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        loop = asyncio.get_running_loop()
        expiry = loop.call_later(self.timeout_s, self._expire)
        try:
            await self._close_connections(loop.time() + self.timeout_s + CUT_GRACE_S)
        finally:
            expiry.cancel()
        if self.server_state.tasks:
            # forced (a second Ctrl-C) or past the grace: the gateway still ends them, so
            # their rows say gateway_shutdown, not that the client left
            self.drain.expire()
            log.error("drain: cancelling %d tasks still running", len(self.server_state.tasks))
            for t in self.server_state.tasks:
                t.cancel(msg="the gateway's drain timeout was exceeded")
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    def _expire(self) -> None:
        n = self.drain.expire()
        if n:
            log.warning("drain timeout: ending %d requests still running (gateway_shutdown)", n)

    async def _close_connections(self, deadline: float) -> None:
        """Close each connection once it has been idle `LINGER_S`, until none is left."""
        loop = asyncio.get_running_loop()
        idle_since: dict[Any, float] = {}
        state = self.server_state
        while (state.connections or state.tasks) and not self.force_exit:
            now = loop.time()
            if now > deadline:
                return
            for conn in list(state.connections):
                cycle = getattr(conn, "cycle", None)
                if cycle is None or cycle.response_complete:
                    if now - idle_since.setdefault(conn, now) >= LINGER_S:
                        conn.shutdown()
                else:
                    idle_since.pop(conn, None)
            await asyncio.sleep(POLL_S)

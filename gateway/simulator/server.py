"""`run()`: serve the simulator with uvicorn (the `gateway simulate` command calls it).

uvloop + httptools and no access log: the simulator must cost as little CPU as possible next
to the gateway it stands behind. The `drop` fault works by raising inside the app after part of
a response went out (uvicorn then closes the connection); the filter below keeps those
intended drops out of uvicorn's error log.
"""

from __future__ import annotations

import logging
import socket

import uvicorn

from gateway.simulator.app import create_app
from gateway.simulator.engine import DropConnection
from gateway.simulator.quality import DEFAULT_QUALITY, Quality


class _HideSimulatedDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


def hide_simulated_drops() -> None:
    """Keep `drop` faults out of uvicorn's error log (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideSimulatedDrops) for f in logger.filters):
        logger.addFilter(_HideSimulatedDrops())


def run(
    host: str,
    port: int,
    profile: str,
    log_level: str = "warning",
    fd: int | None = None,
    quality: Quality = DEFAULT_QUALITY,
    seed: int = 0,
) -> None:
    """Serve the simulator on host:port until interrupted; `profile` serves the root paths.
    With `fd`, serve on that listening socket instead (`gateway serve` binds it, so a taken
    port is its error, said clearly, not this child's)."""
    config = uvicorn.Config(
        create_app(profile, quality=quality, seed=seed),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        proxy_headers=False,  # nothing sits in front of the simulator: skip that middleware
        log_level=log_level,
        lifespan="on",
    )  # Config sets up logging, so the filter goes on after it
    hide_simulated_drops()
    sockets = [socket.socket(fileno=fd)] if fd is not None else None
    uvicorn.Server(config).run(sockets=sockets)

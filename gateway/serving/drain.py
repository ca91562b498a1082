"""The gateway's shutdown as its requests see it: a small state machine and its true counts.

    serving ──SIGTERM──► draining ──drain_delay_s──► stopping ──drain_timeout_s──► expired
               ready: 503, all served,          listener closed,            what still runs
               responses say Connection: close  new requests: 503           is cut: in-band
                                                gateway_shutdown            error / 503, row
                                                                            `gateway_shutdown`

The server (runner.py's `DrainingServer`) moves the phases; the edge reads them (readiness,
`Connection: close`, the 503 for late requests) and registers each running request's `cut`,
which `expire()` calls. A cut request's ledger row says `gateway_shutdown`, never 499: the
client did not leave, the gateway ended it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from gateway.serving.outcome import RequestContext

log = logging.getLogger("gateway")

Phase = Literal["serving", "draining", "stopping", "expired"]


@dataclass(slots=True)
class DrainCounts:
    in_flight_at_signal: int = 0  # generation requests running when the signal came
    started_while_draining: int = 0  # served during the drain delay
    refused: int = 0  # answered 503 gateway_shutdown (arrived after the listener closed)
    cut: int = 0  # still running at the drain timeout: ended by the gateway
    finished: int = 0  # of those running at any point of the drain, ended by themselves


class Drain:
    def __init__(self) -> None:
        self.phase: Phase = "serving"
        self.signalled_at: float | None = None  # time.monotonic()
        self.counts = DrainCounts()
        # the requests running now: id(ctx) → (its task, ctx)
        self._running: dict[int, tuple[asyncio.Task[Any], RequestContext]] = {}

    # --- phases (the server's side) -------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self.phase != "serving"

    @property
    def stopping(self) -> bool:
        return self.phase in ("stopping", "expired")

    def begin(self) -> None:
        """SIGTERM: readiness fails from now on. Safe in a signal handler (no loop calls)."""
        if self.phase == "serving":
            self.phase = "draining"
            self.signalled_at = time.monotonic()
            self.counts.in_flight_at_signal = len(self._running)

    def stop(self) -> None:
        self.begin()
        if self.phase == "draining":
            self.phase = "stopping"

    def expire(self) -> int:
        """The drain timeout: cut every request still running; how many were cut."""
        self.stop()
        self.phase = "expired"
        cuts = list(self._running.values())
        for task, ctx in cuts:
            if not ctx.shutdown:
                ctx.shutdown = True
                self.counts.cut += 1
                task.cancel()
        return len(cuts)

    @property
    def running(self) -> int:
        return len(self._running)

    # --- requests (the edge's side) -------------------------------------------------------

    def enter(self, ctx: RequestContext, task: asyncio.Task[Any]) -> None:
        """One generation request starts: counted, and cut (`task` cancelled with
        `ctx.shutdown` set) if it is still running when the drain expires. The edge calls
        `leave` in a `finally` (a plain pair, not a context manager: it runs on every
        request)."""
        if self.phase != "serving":
            self.counts.started_while_draining += 1
        self._running[id(ctx)] = (task, ctx)

    def leave(self, ctx: RequestContext) -> None:
        del self._running[id(ctx)]
        if self.phase != "serving" and not ctx.shutdown:
            self.counts.finished += 1

    def refused(self) -> None:
        self.counts.refused += 1

    def log_summary(self) -> None:
        if self.signalled_at is None:
            return
        c = self.counts
        log.log(
            logging.WARNING if c.cut else logging.INFO,
            "drain done in %.1f s: %d requests in flight at the signal, %d started during the "
            "drain delay, %d finished during the drain, %d refused with 503 gateway_shutdown "
            "(arrived after the listener closed), %d cut at the drain timeout (in-band error "
            "or 503; rows say gateway_shutdown), %d still running",
            time.monotonic() - self.signalled_at,
            c.in_flight_at_signal,
            c.started_while_draining,
            c.finished,
            c.refused,
            c.cut,
            len(self._running),
        )

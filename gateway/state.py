"""AppState: the one object holding what the lifespan builds, closed in reverse order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import GatewayConfig
from gateway.conversations.store import ResponseStore
from gateway.core import Price
from gateway.ledger.writer import LedgerWriter
from gateway.metrics import GatewayMetrics
from gateway.providers.transport import Transport
from gateway.quality.evidence import Evidence
from gateway.routing.router import Router
from gateway.serving.drain import Drain
from gateway.serving.pipeline import Pipeline

if TYPE_CHECKING:
    from gateway.governance.admin import Admin
    from gateway.governance.governor import Governor
    from gateway.quality.shadow import Shadow
    from gateway.routing.capacity import CapacityMonitor
    from gateway.serving.access_log import AccessLog


@dataclass(slots=True)
class AppState:
    config: GatewayConfig
    prices: Mapping[str, Price]
    router: Router
    metrics: GatewayMetrics
    transport: Transport
    engine: AsyncEngine
    writer: LedgerWriter
    pipeline: Pipeline
    responses: ResponseStore
    capacity: CapacityMonitor | None = None
    governor: Governor | None = None  # auth on: keys, limits, budgets
    admin: Admin | None = None
    access_log: AccessLog | None = None
    drain: Drain = field(default_factory=Drain)  # the server moves it on SIGTERM (runner.py)
    evidence: Evidence | None = None  # quality: agreement per task × model
    shadow: Shadow | None = None  # routes with `shadow:` configured

    async def aclose(self) -> None:
        if self.shadow is not None:
            await self.shadow.aclose()  # before the transport its calls use
        if self.capacity is not None:
            await self.capacity.aclose()
        await self.transport.aclose()  # uvicorn has drained in-flight requests by now
        await self.responses.aclose()
        await self.writer.aclose()  # its last rows' consumers settle and log: closed after it
        if self.access_log is not None:
            self.access_log.flush()
        if self.governor is not None:
            await self.governor.aclose()
        await self.engine.dispose()

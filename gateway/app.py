"""create_app(config) → the Starlette app. The lifespan builds AppState and tears it down."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.types import ASGIApp

from gateway.api.auth import AuthMiddleware
from gateway.api.dispatch import HotPathRouter, record_refusal
from gateway.api.errors import EXCEPTION_HANDLERS
from gateway.api.middleware import RequestContextMiddleware
from gateway.api.routes import ROUTES
from gateway.config import GatewayConfig
from gateway.conversations.store import ResponseStore
from gateway.core import Target
from gateway.errors import Scrubber
from gateway.governance.admin import Admin
from gateway.governance.governor import Governor
from gateway.ledger.db import create_engine, redact_url
from gateway.ledger.durable import DurableResponses
from gateway.ledger.status import LedgerHooks
from gateway.ledger.writer import LedgerWriter
from gateway.metrics import GatewayMetrics
from gateway.pricing.table import build_price_table
from gateway.providers.transport import Transport
from gateway.quality.evidence import Evidence
from gateway.quality.shadow import Shadow
from gateway.quality.store import PairStore, load_evidence, spent_today
from gateway.routing.executor import Executor
from gateway.routing.router import Router, model_price
from gateway.serving import after
from gateway.serving.access_log import AccessLog
from gateway.serving.drain import Drain
from gateway.serving.pipeline import Pipeline
from gateway.state import AppState

if TYPE_CHECKING:
    from gateway.routing.capacity import CapacityMonitor

log = logging.getLogger("gateway")

GC_GEN0_THRESHOLD = 7_000  # allocations between young collections (Python: 700)


def build_state(
    config: GatewayConfig, registry: CollectorRegistry | None = None, workers: int = 1
) -> AppState:
    prices = build_price_table(config)
    pools = [p for p in config.providers if p.self_hosted]
    capacity = None
    if pools:  # only self-hosted (gpu:) providers are watched
        from gateway.routing.capacity import CapacityMonitor

        capacity = CapacityMonitor(pools)
    executor = Executor(config.reliability)
    if capacity is not None:
        executor = Executor(
            config.reliability,
            pick_replica=lambda t: _replica(capacity, t),
            on_start=lambda t, base: capacity.acquire(t.provider.name, base),
            on_end=lambda t, base, ok: capacity.release(t.provider.name, base, ok),
            on_unreachable=lambda t, base: capacity.record_failure(t.provider.name, base),
        )
    metrics = GatewayMetrics(registry)
    engine = create_engine(config.database_url)
    governor = Governor(config, engine, metrics) if config.auth.enabled else None
    access_log = (
        None if config.logging.access_log == "off" else AccessLog(config.logging.access_log)
    )
    evidence = Evidence()
    shadow = None
    if any(r.shadow is not None for r in config.routes):
        model_prices = {m.name: model_price(m, config, prices) for m in config.models}
        shadow = Shadow(
            config, evidence, metrics, model_prices, sink=PairStore(engine), share=1 / workers
        )
    router = Router(
        config,
        prices,
        capacity=capacity.snapshot if capacity else None,
        evidence=evidence,
        boost=shadow.boost if shadow is not None else None,
    )
    extra: dict[str, after.Consumer] = {}
    if governor is not None:
        extra["budgets"] = governor.settle
    if access_log is not None:
        extra["access_log"] = access_log
    if shadow is not None:
        extra["shadow"] = after.shadow_consumer(shadow)
    after_request = after.standard(metrics, router, extra)
    writer = LedgerWriter(
        engine,
        config.ledger,
        prepare=after_request.finalize,
        check_schema=True,
        hooks=LedgerHooks(
            written=metrics.ledger_rows.inc,
            write_errors=metrics.ledger_errors.inc,
            dead_lettered=metrics.ledger_dead_letters.inc,
            journaled=metrics.ledger_journaled.inc,
            replayed=metrics.ledger_replayed.inc,
            dropped=metrics.ledger_dropped.inc,
            clipped=metrics.ledger_clipped.inc,
        ),
    )
    transport = Transport()
    auth = config.auth
    secrets = Scrubber(
        [
            *(p.api_key for p in config.providers),
            auth.master_key,
            auth.key_hash_secret,
            auth.metrics_token,
        ]
    )
    pipeline = Pipeline(
        router,
        transport,
        executor,
        metrics,
        record=writer.submit,
        scrub=secrets,
        admission=governor,
        shadow=shadow,
    )
    responses = ResponseStore(
        engine,
        retention_days=config.responses.retention_days,
        purge_interval_s=config.responses.purge_interval_s,
    )
    admin = None
    if governor is not None:
        admin = Admin(engine, governor.hash_key, governor)
    return AppState(
        config,
        prices,
        router,
        metrics,
        transport,
        engine,
        writer,
        pipeline,
        responses,
        capacity,
        governor=governor,
        admin=admin,
        access_log=access_log,
        evidence=evidence,
        shadow=shadow,
    )


def _replica(capacity: CapacityMonitor, target: Target) -> str:
    """The least loaded healthy replica of a self-hosted pool; the provider's base otherwise."""
    if not target.provider.self_hosted:
        return target.provider.api_base
    replica = capacity.snapshot().pick(target.provider.name)
    return replica.api_base if replica is not None else target.provider.api_base


def create_app(
    config: GatewayConfig,
    registry: CollectorRegistry | None = None,
    drain: Drain | None = None,
    *,
    workers: int = 1,
) -> ASGIApp:
    """`workers`: how many processes serve this config (`--workers`); each takes its share
    of the per-process limits (the shadow calls' daily caps and concurrency). `drain`: the
    server's (runner.DrainingServer), which SIGTERM moves."""
    # Prices are resolved here, not in the lifespan, so a missing price fails before binding.
    state = build_state(config, registry, workers)
    if drain is not None:
        state.drain = drain

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        state.writer.start()
        state.responses.start()
        if state.capacity is not None:
            await state.capacity.start()
        if state.governor is not None:
            await state.governor.start()
        await start_quality(state)
        log_auth(config, state)
        # Everything allocated so far lives as long as the process: move it out of the
        # collector's sight so full collections stop scanning it (they paused the loop for
        # tens of ms under load and set the p99).
        gc.collect()
        gc.freeze()
        # Requests leave no cyclic garbage, but ~10 in flight keep enough tracked objects alive
        # that the default trigger (700 net allocations) fired every 16-23 requests in some
        # runs (every ~200-300 in others, same code): each collection re-scanned live objects
        # for nothing, up to 3% of a request's instructions (callgrind, 10 concurrent).
        gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
        for p in config.providers:
            if p.simulated:
                log.info("provider %s is SIMULATED (%s)", p.name, p.api_base)
        try:
            yield {"gw": state}
        finally:
            state.drain.log_summary()
            await state.aclose()

    app = Starlette(
        routes=ROUTES,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.gw = state  # for code that has the app but no request (tests, CLI)
    inner: ASGIApp = HotPathRouter(app, state)
    if config.auth.enabled:
        inner = AuthMiddleware(inner, state, config.auth)
    if config.ledger.durability == "sync":
        inner = DurableResponses(inner, state.writer)
    return RequestContextMiddleware(
        inner,
        config.max_body_bytes,
        max_header_bytes=config.limits.max_header_bytes,
        max_headers=config.limits.max_headers,
        on_refused=lambda scope, error: record_refusal(state, scope, error),
        draining=lambda: state.drain.draining,
    )


async def start_quality(state: AppState) -> None:
    """The evidence and today's shadow spend, from the ledger: a restart keeps both. A ledger
    that cannot be read leaves them empty (logged): serving does not wait for evidence."""
    if state.shadow is None and not state.config.tasks:
        return
    try:
        if state.evidence is not None:
            pairs = await load_evidence(state.engine, state.evidence)
            log.info("quality evidence: %d stored pairs loaded", pairs)
        if state.shadow is not None:
            now = datetime.now(UTC)
            state.shadow.restore(now.date(), await spent_today(state.engine, now))
    except Exception as e:  # a missing table (not migrated) or a database away
        log.warning("quality evidence not loaded from the ledger: %s", type(e).__name__)


def log_auth(config: GatewayConfig, state: AppState) -> None:
    """One clear start-up line: whether anyone can spend the provider keys."""
    if state.governor is None:
        log.warning(
            "auth is OFF (no auth.master_key): every request is accepted and nothing is "
            "limited — set auth.master_key to require keys"
        )
        return
    d = state.governor.directory
    log.info(
        "auth is ON: master key + %d virtual keys in %d teams; limits and budgets counted %s",
        len(d.keys()),
        len(d.teams()),
        f"in Redis {redact_url(config.redis_url)}" if config.redis_url else "in this process",
    )

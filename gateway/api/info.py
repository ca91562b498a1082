"""GET /v1/models, /health, /health/ready and /metrics."""

from __future__ import annotations

import asyncio

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.ledger.db import ping
from gateway.state import AppState


def _json(obj: object, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


async def models(request: Request) -> Response:
    gw: AppState = request.state.gw
    data = [
        {
            "id": t.model,
            "object": "model",
            "created": 0,
            "owned_by": t.provider.name,
            "upstream_model": t.upstream_model,
            "provider_kind": t.provider.kind,
            "simulated": t.provider.simulated,
        }
        for t in gw.router.targets()
    ] + [
        {
            "id": r.name,
            "object": "model",
            "created": 0,
            "owned_by": "gateway",
            "route_policy": r.policy,
            "candidates": list(r.candidates),
        }
        for r in gw.router.routes
    ]
    return _json({"object": "list", "data": data})


async def health(request: Request) -> Response:
    return _json({"status": "ok"})


async def ready(request: Request) -> Response:
    """Ready unless ledger rows are at risk (ledger/health.py). A database the journal stands
    in for is reported, not fatal: every row is safe on disk until it answers again."""
    gw: AppState = request.state.gw
    if gw.drain.draining:  # at once on SIGTERM, so load balancers stop sending (README: drain)
        return _json({"status": "draining", "phase": gw.drain.phase}, 503)
    try:
        await asyncio.wait_for(ping(gw.engine), timeout=1.0)
        database = "ok"
    except Exception as e:
        database = f"unavailable: {type(e).__name__}"
    health = gw.writer.health()
    body: dict[str, object] = {
        "status": "ready" if health.ready else "unavailable",
        "database": database,
        "ledger_backlog": health.backlog_rows,
        "ledger": health.as_dict(),
    }
    if gw.governor is not None:  # "local (redis unreachable)": limits hold per replica
        body["governance"] = gw.governor.status()
    return _json(body, 200 if health.ready else 503)


async def metrics(request: Request) -> Response:
    gw: AppState = request.state.gw
    h = gw.writer.health()
    m = gw.metrics
    m.ledger_backlog.set(h.backlog_rows)
    m.ledger_oldest_age.set(h.oldest_row_age_s or 0.0)
    m.ledger_journal_rows.set(h.journal_rows)
    m.ledger_journal_bytes.set(h.journal_bytes)
    m.ledger_stalled.set(0 if h.ready else 1)
    body, content_type = m.render()
    return Response(body, media_type=content_type)

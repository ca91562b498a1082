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
    gw: AppState = request.state.gw
    try:
        await asyncio.wait_for(ping(gw.engine), timeout=2.0)
    except Exception as e:
        return _json({"status": "unavailable", "database": type(e).__name__}, 503)
    status: dict[str, object] = {
        "status": "ready",
        "database": "ok",
        "ledger_backlog": gw.writer.backlog,
    }
    if gw.governor is not None:  # "local (redis unreachable)": limits hold per replica
        status["governance"] = gw.governor.status()
    return _json(status)


async def metrics(request: Request) -> Response:
    gw: AppState = request.state.gw
    gw.metrics.ledger_backlog.set(gw.writer.backlog)
    body, content_type = gw.metrics.render()
    return Response(body, media_type=content_type)

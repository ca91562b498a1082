"""POST /v1/route/explain: the routing decision for a request body, without calling upstream."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.generate import min_tier, task_header
from gateway.protocol.openai import parse_request
from gateway.state import AppState


async def explain(request: Request) -> Response:
    gw: AppState = request.state.gw
    req = parse_request("chat", await request.body(), gw.config.limits)
    req.min_tier = min_tier(request.scope["headers"])
    req.task = task_header(request.scope["headers"])
    return Response(orjson.dumps(gw.router.explain(req)), media_type="application/json")

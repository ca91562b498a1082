"""POST /v1/chat/completions, /v1/completions and /v1/embeddings: parse, delegate, render.

The three share one pipeline; which upstream path and which fields are validated follows from
the endpoint name. Nothing here routes, prices or touches the database.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.errors import GatewayError
from gateway.protocol.openai import parse_request
from gateway.providers.base import Endpoint, Target
from gateway.serving.proxy import RequestContext
from gateway.state import AppState

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _context(request: Request) -> RequestContext:
    scope = request.scope
    return RequestContext(
        request_id=scope.get("gateway.request_id", ""),
        started=scope.get("gateway.started", time.perf_counter()),
        created_at=datetime.now(timezone.utc),
    )


def _target_headers(target: Target) -> dict[str, str]:
    return {"x-gateway-provider": target.provider.name, "x-gateway-model": target.model}


async def _generate(request: Request, endpoint: Endpoint) -> Response:
    gw: AppState = request.state.gw
    ctx = _context(request)
    raw = await request.body()
    try:
        req = parse_request(endpoint, raw)
    except GatewayError as e:
        gw.proxy.reject(ctx, endpoint, None, e)
        raise
    if req.stream:
        chunks, target = await gw.proxy.open_stream(req, ctx)
        return StreamingResponse(chunks, media_type="text/event-stream",
                                 headers={**_SSE_HEADERS, **_target_headers(target)})
    result, target = await gw.proxy.complete(req, ctx)
    return Response(result.body, media_type="application/json", headers=_target_headers(target))


async def chat_completions(request: Request) -> Response:
    return await _generate(request, "chat")


async def completions(request: Request) -> Response:
    return await _generate(request, "completions")


async def embeddings(request: Request) -> Response:
    return await _generate(request, "embeddings")

"""POST /v1/messages: the Anthropic-compatible edge — parse, delegate, render.

Apps written against the Anthropic SDK point its base URL at the gateway. Errors leave in
Anthropic's envelope (protocol/anthropic.py), not OpenAI's, so the SDK raises its own typed
exceptions (RateLimitError, OverloadedError…). Nothing here routes, prices or touches the
database.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.errors import GatewayError
from gateway.protocol.anthropic import error_body, parse_messages_request
from gateway.providers.base import Target
from gateway.serving.messages import MessagesService
from gateway.serving.proxy import RequestContext
from gateway.state import AppState

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _target_headers(target: Target) -> dict[str, str]:
    return {"x-gateway-provider": target.provider.name, "x-gateway-model": target.model}


def _error(error: GatewayError) -> Response:
    return Response(error_body(error), status_code=error.status_code,
                    media_type="application/json", headers=error.headers or None)


async def messages(request: Request) -> Response:
    gw: AppState = request.state.gw
    scope = request.scope
    ctx = RequestContext(request_id=scope.get("gateway.request_id", ""),
                         started=scope.get("gateway.started", time.perf_counter()),
                         created_at=time.time())
    service = MessagesService(gw.proxy, ctx)
    try:
        try:
            req = parse_messages_request(await request.body(),
                                         request.headers.get("anthropic-beta"))
        except GatewayError as e:
            service.reject(None, e)
            raise
        if req.stream:
            chunks, target = await service.open_stream(req)
            return StreamingResponse(chunks, media_type="text/event-stream",
                                     headers={**_SSE_HEADERS, **_target_headers(target)})
        body, target = await service.complete(req)
    except GatewayError as e:
        return _error(e)
    return Response(body, media_type="application/json", headers=_target_headers(target))

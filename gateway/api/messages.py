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

from gateway.errors import GatewayError, InvalidRequest
from gateway.protocol.anthropic import error_body, parse_messages_request
from gateway.providers.base import Target
from gateway.routing.policies import Decision
from gateway.serving.messages import MessagesService
from gateway.serving.proxy import RequestContext
from gateway.state import AppState

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _target_headers(target: Target, decision: Decision) -> dict[str, str]:
    headers = {"x-gateway-provider": target.provider.name, "x-gateway-model": target.model}
    if decision.route is not None:
        headers["x-gateway-route"] = decision.route
    return headers


def _min_tier(request: Request) -> int | None:
    value = request.headers.get("x-gateway-min-tier")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(
            "The x-gateway-min-tier header must be an integer.", param="x-gateway-min-tier"
        ) from None


def _error(error: GatewayError) -> Response:
    return Response(
        error_body(error),
        status_code=error.status_code,
        media_type="application/json",
        headers=error.headers or None,
    )


async def messages(request: Request) -> Response:
    gw: AppState = request.state.gw
    scope = request.scope
    ctx = RequestContext(
        request_id=scope.get("gateway.request_id", ""),
        started=scope.get("gateway.started", time.perf_counter()),
        created_at=time.time(),
    )
    service = MessagesService(gw.proxy, ctx)
    try:
        try:
            req = parse_messages_request(
                await request.body(), request.headers.get("anthropic-beta")
            )
            tier = _min_tier(request)
        except GatewayError as e:
            service.reject(None, e)
            raise
        if req.stream:
            chunks, target, decision = await service.open_stream(req, tier)
            return StreamingResponse(
                chunks,
                media_type="text/event-stream",
                headers={**_SSE_HEADERS, **_target_headers(target, decision)},
            )
        body, target, decision = await service.complete(req, tier)
    except GatewayError as e:
        return _error(e)
    return Response(body, media_type="application/json", headers=_target_headers(target, decision))

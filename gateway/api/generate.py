"""POST /v1/chat/completions, /v1/completions and /v1/embeddings: parse, delegate, render.

Raw ASGI handlers (see api/http.py for why). The three share one pipeline; which upstream path
and which fields are validated follows from the endpoint name. Nothing here routes, prices or
touches the database.
"""

from __future__ import annotations

import time

from starlette.types import Receive, Scope, Send

from gateway.api.http import JSON, read_body, send_bytes, send_stream
from gateway.errors import GatewayError, InvalidRequest
from gateway.protocol.openai import parse_request
from gateway.providers.base import Endpoint, Target
from gateway.serving.proxy import RequestContext
from gateway.state import AppState


def _target_headers(target: Target, route: str | None) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-gateway-provider", target.provider.name.encode()),
        (b"x-gateway-model", target.model.encode()),
    ]
    if route is not None:
        headers.append((b"x-gateway-route", route.encode()))
    return headers


def min_tier(scope: Scope) -> int | None:
    """The `x-gateway-min-tier` header: routes skip models below this quality tier."""
    for k, v in scope["headers"]:
        if k == b"x-gateway-min-tier":
            try:
                return int(v)
            except ValueError:
                raise InvalidRequest(
                    "The x-gateway-min-tier header must be an integer.", param="x-gateway-min-tier"
                ) from None
    return None


async def generate(
    gw: AppState, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send
) -> None:
    ctx = RequestContext(
        request_id=scope["gateway.request_id"],
        started=scope["gateway.started"],
        created_at=time.time(),
    )
    raw = await read_body(receive)
    try:
        req = parse_request(endpoint, raw)
        req.min_tier = min_tier(scope)
    except GatewayError as e:
        gw.proxy.reject(ctx, endpoint, None, e)
        raise
    route = req.model if gw.router.is_route(req.model) else None
    if req.stream:
        chunks, target = await gw.proxy.open_stream(req, ctx)
        await send_stream(scope, receive, send, chunks, _target_headers(target, route))
        return
    result, target = await gw.proxy.complete(req, ctx)
    await send_bytes(send, 200, result.body, [JSON, *_target_headers(target, route)])

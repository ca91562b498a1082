"""POST /v1/chat/completions, /v1/completions and /v1/embeddings: parse, delegate, render.

Raw ASGI handlers (see api/http.py for why). The three share one pipeline; which upstream path
and which fields are validated follows from the endpoint name. Nothing here routes, prices or
touches the database.
"""

from __future__ import annotations

import time

from starlette.types import Receive, Scope, Send

from gateway.api.http import JSON, read_body, send_bytes, send_stream
from gateway.errors import GatewayError
from gateway.protocol.openai import parse_request
from gateway.providers.base import Endpoint, Target
from gateway.serving.proxy import RequestContext
from gateway.state import AppState


def _target_headers(target: Target) -> list[tuple[bytes, bytes]]:
    return [(b"x-gateway-provider", target.provider.name.encode()),
            (b"x-gateway-model", target.model.encode())]


async def generate(gw: AppState, endpoint: Endpoint, scope: Scope, receive: Receive,
                   send: Send) -> None:
    ctx = RequestContext(request_id=scope["gateway.request_id"],
                         started=scope["gateway.started"], created_at=time.time())
    raw = await read_body(receive)
    try:
        req = parse_request(endpoint, raw)
    except GatewayError as e:
        gw.proxy.reject(ctx, endpoint, None, e)
        raise
    if req.stream:
        chunks, target = await gw.proxy.open_stream(req, ctx)
        await send_stream(scope, receive, send, chunks, _target_headers(target))
        return
    result, target = await gw.proxy.complete(req, ctx)
    await send_bytes(send, 200, result.body, [JSON, *_target_headers(target)])

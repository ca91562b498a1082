"""Every generation endpoint's handler: parse with the endpoint's codec, run the pipeline, render.

Raw ASGI (see api/http.py for why). Which endpoint it is decides only the codec; nothing here
routes, prices or touches the database, and nothing here knows a provider.
"""

from __future__ import annotations

import time

from starlette.types import Receive, Scope, Send

from gateway.api.http import JSON, read_body, send_bytes, send_stream, until_disconnect
from gateway.codecs.base import Codec, Headers, header
from gateway.core import Target
from gateway.errors import GatewayError, InvalidRequest
from gateway.routing.policies import Decision
from gateway.serving.outcome import RequestContext
from gateway.state import AppState


def _target_headers(target: Target, decision: Decision) -> Headers:
    headers = [
        (b"x-gateway-provider", target.provider.name.encode()),
        (b"x-gateway-model", target.model.encode()),
    ]
    if decision.route is not None:
        headers.append((b"x-gateway-route", decision.route.encode()))
    return headers


def min_tier(headers: Headers) -> int | None:
    """The `x-gateway-min-tier` header: routes skip models below this quality tier."""
    value = header(headers, b"x-gateway-min-tier")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(
            "The x-gateway-min-tier header must be an integer.", param="x-gateway-min-tier"
        ) from None


async def generate(gw: AppState, codec: Codec, scope: Scope, receive: Receive, send: Send) -> None:
    ctx = RequestContext(
        request_id=scope["gateway.request_id"],
        started=scope["gateway.started"],
        created_at=time.time(),
    )
    raw = await read_body(receive)
    try:
        req = codec.parse(raw, scope["headers"])
        req.min_tier = min_tier(scope["headers"])
    except GatewayError as e:
        gw.pipeline.reject(ctx, codec.endpoint, None, e)
        raise
    if req.stream:
        streaming = await gw.pipeline.open_stream(req, ctx)
        headers = _target_headers(streaming.target, streaming.decision)
        await send_stream(receive, send, streaming.chunks, codec.stream_renderer(req), headers)
        return
    async with until_disconnect(receive) as gone:
        answer = await gw.pipeline.complete(req, ctx)
    if gone.is_set():
        return  # nobody to answer; the pipeline recorded the 499
    headers = [JSON, *_target_headers(answer.target, answer.decision)]
    await send_bytes(send, 200, codec.render(answer.result), headers)

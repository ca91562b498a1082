"""Every generation endpoint's handler: parse with the endpoint's codec, run the pipeline, render.

Raw ASGI (see api/http.py for why). Which endpoint it is decides only the codec; nothing here
routes, prices or touches the database, and nothing here knows a provider.
"""

from __future__ import annotations

import time

from starlette.types import Receive, Scope, Send

from gateway.api.http import JSON, DisconnectWatch, read_body, send_bytes, send_stream
from gateway.codecs.base import Codec, Conversation, Headers, header
from gateway.core import ClientRequest, Target
from gateway.errors import InvalidRequest
from gateway.governance.records import Principal
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
    caller: Principal | None = scope.get("gateway.principal")  # api/auth.py, when auth is on
    ctx = RequestContext(
        request_id=scope["gateway.request_id"],
        started=scope["gateway.started"],
        created_at=time.time(),
        api_key_id=None if caller is None else caller.key_id,
        team=None if caller is None else caller.team,
    )
    scope["gateway.ctx"] = ctx  # a refusal raised from here is recorded by the dispatcher
    raw = await read_body(receive)
    req = codec.parse(raw, scope["headers"])
    ctx.requested_model = req.model
    req.min_tier = min_tier(scope["headers"])
    if codec.conversation is not None:
        await resume(gw, codec.conversation, req, ctx)
    if req.stream:
        streaming = await gw.pipeline.open_stream(req, ctx)
        headers = _target_headers(streaming.target, streaming.decision)
        headers += codec.headers(req, streaming.native) + ctx.headers
        await send_stream(receive, send, streaming.chunks, codec.stream_renderer(req), headers)
        return
    async with DisconnectWatch(receive) as watch:
        answer = await gw.pipeline.complete(req, ctx)
    if watch.gone:
        return  # nobody to answer; the pipeline recorded the 499
    headers = [JSON, *_target_headers(answer.target, answer.decision)]
    headers += codec.headers(req, answer.result.wire == req.wire) + ctx.headers
    await send_bytes(send, 200, codec.render(answer.result, req), headers)


async def resume(
    gw: AppState, conversation: Conversation, req: ClientRequest, ctx: RequestContext
) -> None:
    """A stateful API's request: named, given its store, and continued from the stored
    response it names (the one read on the request's path: see conversations/store.py)."""
    previous = conversation.start(req, ctx.request_id, ctx.created_at, ctx.team, gw.responses.save)
    if previous is not None:
        stored = await gw.responses.load(previous, ctx.team)
        if stored is None:
            raise conversation.missing(previous)
        conversation.extend(req, stored)

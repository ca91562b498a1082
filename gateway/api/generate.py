"""Every generation endpoint's handler: parse with the endpoint's codec, run the pipeline, render.

Raw ASGI (see api/http.py for why). Which endpoint it is decides only the codec; nothing here
routes, prices or touches the database, and nothing here knows a provider.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from starlette.types import Receive, Scope, Send

from gateway.api.http import JSON, DisconnectWatch, read_body, send_bytes, send_stream
from gateway.codecs.base import Codec, Conversation, Headers, header
from gateway.core import ClientRequest, Target
from gateway.errors import GatewayError, GatewayShutdown, InvalidRequest
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


# a refused body is read again for its model only up to this size: the refusal path must
# not cost much more than the parse that failed (a deep or malformed body fails in orjson)
MODEL_PEEK_BYTES = 1 << 20


def model_named(raw: bytes) -> str | None:
    """The `model` a refused body names, when it is a JSON object that names one."""
    if len(raw) > MODEL_PEEK_BYTES:
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


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


def task_header(headers: Headers) -> str | None:
    """The `x-gateway-task` header: the task this request's quality evidence counts under."""
    value = header(headers, b"x-gateway-task")
    return value.strip() or None if value is not None else None


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
    task = asyncio.current_task()
    assert task is not None
    gw.drain.enter(ctx, task)
    try:
        await _generate(gw, codec, ctx, scope, receive, send)
    except asyncio.CancelledError:
        if not ctx.shutdown:
            raise
        # the drain's timeout: a whole answer not ready yet is a 503 (its row, if the
        # pipeline had not made it, comes from the dispatcher with this error)
        task.uncancel()
        raise GatewayShutdown() from None
    finally:
        gw.drain.leave(ctx)


async def _generate(
    gw: AppState, codec: Codec, ctx: RequestContext, scope: Scope, receive: Receive, send: Send
) -> None:
    raw = await read_body(receive)
    try:
        req = codec.parse(raw, scope["headers"])
    except GatewayError:
        ctx.requested_model = model_named(raw)  # for the refusal's ledger row
        raise
    ctx.requested_model = req.model
    req.min_tier = min_tier(scope["headers"])
    req.task = task_header(scope["headers"])
    if codec.conversation is not None:
        await resume(gw, codec.conversation, req, ctx)
    if req.stream:
        streaming = await gw.pipeline.open_stream(req, ctx)
        headers = _target_headers(streaming.target, streaming.decision)
        headers += codec.headers(req, streaming.native) + ctx.headers
        renderer = codec.stream_renderer(req)
        await send_stream(receive, send, streaming.chunks, renderer, headers, ctx)
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

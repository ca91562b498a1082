"""The gateway's ASGI entry: generation endpoints served raw, everything else by Starlette.

RequestContextMiddleware → HotPathRouter ─┬→ api/generate.py  (a codec a path: routes.generation)
                                          └→ Starlette app    (models, health, metrics, …)

Every generation request leaves one ledger row. The pipeline records those it sees; a request
refused or failed before or outside it — a bad body, a 405, the middleware's 413 and 431, an
unexpected exception answered 500 — is recorded here, by `record_refusal`, the one path for
them (it checks the request has no row yet, so nothing is recorded twice).
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.generate import generate
from gateway.api.http import send_error
from gateway.api.routes import GENERATION, generation
from gateway.errors import GatewayError, GatewayShutdown, MethodNotAllowed, clip
from gateway.serving.outcome import RequestContext
from gateway.state import AppState

log = logging.getLogger("gateway")


class HotPathRouter:
    def __init__(self, fallback: ASGIApp, state: AppState) -> None:
        self.fallback = fallback
        self.state = state
        self.codecs = generation(state.config.limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        codec = self.codecs.get(scope.get("path", "")) if scope["type"] == "http" else None
        if codec is None:
            await self.fallback(scope, receive, send)
            return
        try:
            if self.state.drain.stopping:  # arrived on a kept-alive connection: answered
                self.state.drain.refused()
                raise GatewayShutdown(
                    "The gateway is shutting down and takes no new requests; retry it "
                    "(another replica will answer)."
                )
            if scope["method"] != "POST":
                raise MethodNotAllowed(
                    f"Method {clip(scope['method'])} is not allowed on {scope['path']}; use POST."
                )
            await generate(self.state, codec, scope, receive, send)
        except GatewayError as e:
            record_refusal(self.state, scope, e)
            await send_error(send, e.status_code, codec.error_body(e), e)
        except Exception:
            log.exception("unhandled error on %s", scope["path"])
            err = GatewayError(
                "The gateway failed to handle this request; it has been logged.",
                code="internal_error",
            )
            record_refusal(self.state, scope, err)
            await send_error(send, err.status_code, codec.error_body(err), err)


def record_refusal(gw: AppState, scope: Scope, error: GatewayError) -> None:
    """The ledger row of a generation request answered `error` outside the pipeline (other
    paths have no rows). Never raises: it runs while an answer is being made."""
    codec = GENERATION.get(scope.get("path", ""))
    if codec is None:
        return
    ctx = scope.get("gateway.ctx")
    if not isinstance(ctx, RequestContext):
        ctx = RequestContext(
            request_id=scope["gateway.request_id"],
            started=scope["gateway.started"],
            created_at=time.time(),
        )
        scope["gateway.ctx"] = ctx
    if ctx.recorded:
        return
    try:
        gw.pipeline.reject(ctx, codec.endpoint, ctx.requested_model, error)
    except Exception:
        log.exception("could not record the refusal of %s", ctx.request_id)

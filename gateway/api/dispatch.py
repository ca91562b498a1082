"""The gateway's ASGI entry: generation endpoints served raw, everything else by Starlette.

RequestContextMiddleware → HotPathRouter ─┬→ api/generate.py  (GENERATION: a codec a path)
                                          └→ Starlette app    (models, health, metrics, …)
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.generate import generate
from gateway.api.http import send_error
from gateway.api.routes import GENERATION
from gateway.errors import GatewayError, MethodNotAllowed
from gateway.state import AppState

log = logging.getLogger("gateway")


class HotPathRouter:
    def __init__(self, fallback: ASGIApp, state: AppState) -> None:
        self.fallback = fallback
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        codec = GENERATION.get(scope.get("path", "")) if scope["type"] == "http" else None
        if codec is None:
            await self.fallback(scope, receive, send)
            return
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed(
                    f"Method {scope['method']} is not allowed on {scope['path']}; use POST."
                )
            await generate(self.state, codec, scope, receive, send)
        except GatewayError as e:
            await send_error(send, e.status_code, codec.error_body(e), e)
        except Exception:
            log.exception("unhandled error on %s", scope["path"])
            err = GatewayError("The gateway failed to handle this request; it has been logged.")
            await send_error(send, err.status_code, codec.error_body(err), err)

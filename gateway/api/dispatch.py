"""The gateway's ASGI entry: hot endpoints served raw, everything else by Starlette.

RequestContextMiddleware → HotPathRouter ─┬→ api/generate.py   (POST /v1/chat/completions, …)
                                          └→ Starlette app     (models, health, metrics, …)
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.generate import generate
from gateway.api.http import send_error
from gateway.errors import GatewayError, MethodNotAllowed
from gateway.providers.base import Endpoint
from gateway.state import AppState

log = logging.getLogger("gateway")

HOT_ROUTES: dict[str, Endpoint] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
}


class HotPathRouter:
    def __init__(self, fallback: ASGIApp, state: AppState) -> None:
        self.fallback = fallback
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = HOT_ROUTES.get(scope.get("path", "")) if scope["type"] == "http" else None
        if endpoint is None:
            await self.fallback(scope, receive, send)
            return
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed(
                    f"Method {scope['method']} is not allowed on {scope['path']}; use POST."
                )
            await generate(self.state, endpoint, scope, receive, send)
        except GatewayError as e:
            await send_error(send, e)
        except Exception:
            log.exception("unhandled error on %s", scope["path"])
            await send_error(
                send, GatewayError("The gateway failed to handle this request; it has been logged.")
            )

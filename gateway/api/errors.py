"""Exception → response: every error leaves the gateway in OpenAI's envelope, via errors.py."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import GatewayError, MethodNotAllowed, NotFound

log = logging.getLogger("gateway")


def render(error: GatewayError) -> Response:
    return Response(error.body(), status_code=error.status_code, media_type="application/json",
                    headers=error.headers or None)


async def gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return render(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return render(MethodNotAllowed(f"Method {request.method} is not allowed on "
                                       f"{request.url.path}."))
    return render(NotFound(f"Unknown path {request.url.path}. The gateway serves "
                           "/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/messages and /v1/models."))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return render(GatewayError("The gateway failed to handle this request; it has been logged."))


EXCEPTION_HANDLERS = {
    GatewayError: gateway_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}

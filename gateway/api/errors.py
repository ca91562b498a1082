"""Exception → response for the Starlette routes: an error leaves in the envelope of the path's
client API — its codec's, for a generation endpoint; OpenAI's (errors.py) everywhere else."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.routes import GENERATION
from gateway.errors import GatewayError, MethodNotAllowed, NotFound, clip

log = logging.getLogger("gateway")


def error_body(path: str, error: GatewayError) -> bytes:
    """The error in the envelope the client of `path` expects."""
    codec = GENERATION.get(path)
    return codec.error_body(error) if codec is not None else error.body()


def render(error: GatewayError, path: str = "") -> Response:
    return Response(
        error_body(path, error),
        status_code=error.status_code,
        media_type="application/json",
        headers=error.headers or None,
    )


async def gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return render(exc, request.url.path)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return render(
            MethodNotAllowed(
                f"Method {clip(request.method)} is not allowed on {clip(request.url.path)}."
            ),
            request.url.path,
        )
    return render(
        NotFound(
            f"Unknown path {clip(request.url.path)}. The gateway serves "
            "/v1/chat/completions, /v1/completions, /v1/embeddings, "
            "/v1/messages, /v1/responses and /v1/models (GET /openapi.json describes them all)."
        )
    )


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return render(
        GatewayError("The gateway failed to handle this request; it has been logged."),
        request.url.path,
    )


EXCEPTION_HANDLERS = {
    GatewayError: gateway_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}

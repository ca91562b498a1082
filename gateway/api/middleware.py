"""Pure-ASGI middleware (BaseHTTPMiddleware would buffer streams and break contextvars):
assigns the request id and start time, adds `x-request-id` to every response, and enforces the
request body limit (413) before the body is read into memory, in the envelope of the path's
API."""

from __future__ import annotations

import random
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.errors import error_body
from gateway.errors import RequestTooLarge


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = new_request_id()
        scope["gateway.request_id"] = rid
        scope["gateway.started"] = started
        rid_header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        limit = self.max_body_bytes
        for k, v in scope["headers"]:
            if k == b"content-length":
                if v.isdigit() and int(v) > limit:
                    await self._too_large(send_with_id, scope["path"], limit)
                    return
                break
        else:
            receive = self._limited(receive, limit)  # chunked upload: count as it arrives
        await self.app(scope, receive, send_with_id)

    @staticmethod
    def _limited(receive: Receive, limit: int) -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large_error(limit)
            return message

        return limited

    @staticmethod
    async def _too_large(send: Send, path: str, limit: int) -> None:
        body = error_body(path, _too_large_error(limit))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def new_request_id() -> str:
    """32 hex chars: 48 bits of milliseconds then 80 random bits (UUIDv7's layout, minus the
    version bits). Time-ordered ids append to the ledger's primary-key index instead of
    splitting random pages. Ids need to be unique, not secret: Python's PRNG (seeded from the
    OS per process) avoids a getrandbits syscall per request that showed up in the profile."""
    return f"{int(time.time() * 1000):012x}{random.getrandbits(80):020x}"


def _too_large_error(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"The request body exceeds the gateway's limit of "
        f"{limit / 1024 / 1024:g} MB (max_request_body_mb)."
    )

"""Pure-ASGI middleware (BaseHTTPMiddleware would buffer streams and break contextvars):
assigns the request id and start time, adds `x-request-id` to every response, and refuses
what is too big before anything reads it — a header block over `limits.max_header_bytes` or
`limits.max_headers` fields (431), a body over the limit (413, checked before the body is read
into memory) — in the envelope of the path's API, telling `on_refused` so the refusal gets its
ledger row.

Headers are checked here because nothing below does: uvicorn's httptools protocol (what the
gateway runs) passes any number and size of headers through (`h11_max_incomplete_event_size`
bounds only the h11 protocol), so a 1 MB header or 8,000 headers reached the app and were
served. They are in memory by now; the check stops the work they would cost past this point.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import chain

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.errors import error_body
from gateway.core import new_request_id
from gateway.errors import GatewayError, HeadersTooLarge, RequestTooLarge

OnRefused = Callable[[Scope, GatewayError], None]
CLOSE = (b"connection", b"close")


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        *,
        max_header_bytes: int = 65_536,
        max_headers: int = 100,
        on_refused: OnRefused | None = None,
        draining: Callable[[], bool] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.on_refused = on_refused
        self.draining = draining or (lambda: False)

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
                headers = [*message.get("headers", ()), rid_header]
                # draining: the client's next request must go out on a new connection, which
                # the load balancer sends elsewhere (a connection the server closes while idle
                # can meet a request on its way, which is then lost)
                if self.draining() and not any(k == b"connection" for k, _ in headers):
                    headers.append(CLOSE)
                message["headers"] = headers
            await send(message)

        headers = scope["headers"]
        refusal = self._headers_refusal(headers)
        if refusal is not None:
            await self._refuse(scope, send_with_id, refusal)
            return
        limit = self.max_body_bytes
        for k, v in headers:
            if k == b"content-length":
                if v.isdigit() and int(v) > limit:
                    await self._refuse(scope, send_with_id, _too_large_error(limit))
                    return
                break
        else:
            receive = self._limited(receive, limit)  # chunked upload: count as it arrives
        await self.app(scope, receive, send_with_id)

    def _headers_refusal(self, headers: list[tuple[bytes, bytes]]) -> GatewayError | None:
        if len(headers) > self.max_headers:
            return HeadersTooLarge(
                f"The request has {len(headers):,} header fields; the gateway accepts at most "
                f"{self.max_headers} (limits.max_headers)."
            )
        size = sum(map(len, chain.from_iterable(headers)))  # C speed: no frame per header
        if size > self.max_header_bytes:
            return HeadersTooLarge(
                f"The request's headers are {size:,} bytes; the gateway accepts at most "
                f"{self.max_header_bytes:,} (limits.max_header_bytes)."
            )
        return None

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

    async def _refuse(self, scope: Scope, send: Send, error: GatewayError) -> None:
        if self.on_refused is not None:
            self.on_refused(scope, error)
        body = error_body(scope["path"], error)
        await send(
            {
                "type": "http.response.start",
                "status": error.status_code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _too_large_error(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"The request body exceeds the gateway's limit of "
        f"{limit / 1024 / 1024:g} MB (max_request_body_mb)."
    )

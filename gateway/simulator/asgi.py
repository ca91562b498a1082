"""The few raw-ASGI helpers the simulator needs: a request holder, body reading, responses.

The simulator is a raw ASGI app rather than a Starlette one because it shares two CPU cores
with the gateway and the load driver in benchmarks: each request here is one dict lookup for
the route and two `send` calls for the response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.simulator import wire
from gateway.simulator.engine import Message, Receive, Send

JSON = b"application/json"
PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"

Scope = dict[str, Any]


@dataclass(slots=True)
class Request:
    scope: Scope
    receive: Receive
    send: Send
    body: bytes
    arrival: float  # event-loop time when the request was read

    def query(self, name: str) -> str | None:
        raw: bytes = self.scope.get("query_string", b"")
        for pair in raw.decode("latin-1").split("&"):
            key, _, value = pair.partition("=")
            if key == name:
                return value
        return None


async def read_body(receive: Receive) -> bytes:
    message: Message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while message.get("more_body", False):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", b"%d" % len(body)),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def respond_error(
    send: Send,
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    await respond(send, status, wire.error_body(status, message, param, code), JSON, headers)


def now() -> float:
    return asyncio.get_running_loop().time()

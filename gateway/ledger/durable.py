"""`durability: sync`: a response completes only once its ledger row is fsynced in the journal.

Pure ASGI, between the request-id middleware and the router: the last message of a response
(the body part with `more_body` false) is held until `LedgerWriter.durable(request_id)` — the
row was recorded before that message on every path (`Pipeline.record` runs before an answer,
an error or a refusal is rendered, and before a stream's closing message). Many requests share
one fsync (group commit, see intake.py), so the cost is about one fsync, not one per request.
A stream's events, `[DONE]` included, flow as they come; only its end waits.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.ledger.writer import LedgerWriter


class DurableResponses:
    def __init__(self, app: ASGIApp, writer: LedgerWriter) -> None:
        self.app = app
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = scope["gateway.request_id"]
        durable = self.writer.durable

        async def send_when_durable(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await durable(key)
            await send(message)

        await self.app(scope, receive, send_when_durable)

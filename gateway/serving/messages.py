"""`POST /v1/messages` as a use case: route an Anthropic Messages request to any model.

Two ways through, both ending in one `Outcome` (endpoint "messages") for the ledger:
- an Anthropic-kind model: native pass-through. The body goes upstream with the upstream's
  model name (and the system prompt marked cacheable when the model has
  `auto_cache_system_prompt`); the answer's bytes, or the stream's events, reach the client
  as they came, while usage and the message id are read on the way.
- any other model: the body is translated to OpenAI chat (`messages_bridge.py`) and sent
  through that model's own adapter, whose OpenAI-shaped answer or chunks are translated back.

Composes the pipeline's parts (router, executor, adapters, transport, `record`) rather than
`ProxyService.complete`, which records the row as endpoint "chat": the same decision, fallback,
retries, circuit breakers and in-flight accounting as the OpenAI endpoints. No HTTP types here.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import orjson

from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.pricing.cost import Usage
from gateway.protocol.anthropic import MessagesRequest, error_event
from gateway.protocol.anthropic import error_type as anthropic_error_type
from gateway.providers.anthropic import (
    anthropic_headers,
    cache_system_prompt,
    error_from_anthropic,
    messages_url,
    usage_from_anthropic,
)
from gateway.providers.base import ClientRequest, StreamState, Target, UpstreamRequest
from gateway.providers.registry import adapter_for
from gateway.providers.transport import UpstreamStream
from gateway.routing.policies import Decision
from gateway.serving.messages_bridge import ChatToMessagesStream, to_chat_body, to_message
from gateway.serving.metering import Outcome
from gateway.serving.proxy import ProxyService, RequestContext, at_replica
from gateway.sse import SSEDecoder

ENDPOINT = "messages"


class MessagesService:
    """One per request: cheap, holds only the pipeline and the request's context."""

    __slots__ = ("ctx", "proxy")

    def __init__(self, proxy: ProxyService, ctx: RequestContext) -> None:
        self.proxy = proxy
        self.ctx = ctx

    # --- bookkeeping ----------------------------------------------------------------------

    def reject(self, model: str | None, error: GatewayError) -> None:
        """A request refused before any upstream call still gets its ledger row."""
        self.proxy.reject(self.ctx, ENDPOINT, model, error)

    def _record(
        self, req: ClientRequest, decision: Decision, target: Target, status: int, **kw: Any
    ) -> None:
        self.proxy.record(
            Outcome(
                request_id=self.ctx.request_id,
                created_at=self.ctx.created_at,
                request=req,
                endpoint=ENDPOINT,
                requested_model=req.model,
                target=target,
                status_code=status,
                latency_s=time.perf_counter() - self.ctx.started,
                route_reason=decision.reason,
                route=decision.route,
                prefix_key=decision.prefix_key,
                api_key_id=self.ctx.api_key_id,
                team=self.ctx.team,
                **kw,
            )
        )

    def _failed(self, req: ClientRequest, decision: Decision, error: GatewayError) -> None:
        self._record(
            req,
            decision,
            error.target or decision.targets[0],
            error.status_code,
            error_type=error.error_type,
            attempts=error.attempts,
        )

    def _decide(self, req: MessagesRequest, min_tier: int | None) -> tuple[Decision, ClientRequest]:
        """The decision, and the request's chat view (what a route's policy reads: tokens,
        tools, images; also what a refusal's ledger row is priced from)."""
        view = ClientRequest("chat", to_chat_body(req.body, req.stream), req.model, req.stream)
        view.min_tier = min_tier
        return self.proxy.decide(view, self.ctx, ledger_endpoint=ENDPOINT), view

    # --- requests to the upstream ---------------------------------------------------------

    @staticmethod
    def _native(req: MessagesRequest, target: Target) -> tuple[ClientRequest, UpstreamRequest]:
        body = {**req.body, "model": target.upstream_model}
        if body.get("system") and target.config and target.config.auto_cache_system_prompt:
            body["system"] = cache_system_prompt(body["system"])
        headers = anthropic_headers(target)
        if req.beta:
            headers["anthropic-beta"] = req.beta
        up = UpstreamRequest("POST", messages_url(target), headers, orjson.dumps(body), req.stream)
        return ClientRequest("chat", req.body, req.model, req.stream), up

    @staticmethod
    def _bridged(req: MessagesRequest, target: Target) -> tuple[ClientRequest, UpstreamRequest]:
        # include_usage: the upstream's usage chunk is needed for message_delta and the ledger
        chat = ClientRequest(
            "chat", to_chat_body(req.body, req.stream), req.model, req.stream, include_usage=True
        )
        return chat, adapter_for(target.provider.kind).build_request(chat, target)

    def _build(
        self, req: MessagesRequest, target: Target, api_base: str
    ) -> tuple[ClientRequest, UpstreamRequest]:
        native = target.provider.kind == "anthropic"
        chat, up = (self._native if native else self._bridged)(req, target)
        return chat, at_replica(up, target, api_base)

    def _error(
        self, target: Target, status: int, body: bytes, headers: dict[str, str]
    ) -> GatewayError:
        if target.provider.kind == "anthropic":
            return error_from_anthropic(status, body, headers, target)
        return adapter_for(target.provider.kind).parse_error(status, body, headers, target)

    # --- complete answers -----------------------------------------------------------------

    async def complete(
        self, req: MessagesRequest, min_tier: int | None = None
    ) -> tuple[bytes, Target, Decision]:
        decision, view = self._decide(req, min_tier)

        async def attempt(
            target: Target, api_base: str
        ) -> tuple[ClientRequest, bytes, Usage | None, str | None]:
            chat, up = self._build(req, target, api_base)
            resp = await self.proxy.transport.send(target.provider, up)
            if resp.status >= 400:
                raise self._error(target, resp.status, resp.body, resp.headers)
            return (chat, *self._answer(chat, target, resp.body))

        try:
            done = await self.proxy.executor.run(
                decision.targets, attempt, self.proxy.attempt_failed
            )
        except GatewayError as e:
            self._failed(view, decision, e)
            raise
        chat, body, usage, rid = done.result
        self._record(
            chat,
            decision,
            done.target,
            200,
            usage=usage,
            upstream_request_id=rid,
            attempts=done.attempts,
        )
        return body, done.target, decision

    @staticmethod
    def _answer(
        chat: ClientRequest, target: Target, raw: bytes
    ) -> tuple[bytes, Usage | None, str | None]:
        if target.provider.kind != "anthropic":
            result = adapter_for(target.provider.kind).parse_response(raw, chat, target)
            message = to_message(orjson.loads(result.body), result.usage)
            return orjson.dumps(message), result.usage, result.upstream_request_id
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamProtocolError(
                f"{target.provider.name}: the upstream answer is not an Anthropic message"
            )
        rid = data.get("id")
        return raw, usage_from_anthropic(data.get("usage")), rid if isinstance(rid, str) else None

    # --- streams --------------------------------------------------------------------------

    async def open_stream(
        self, req: MessagesRequest, min_tier: int | None = None
    ) -> tuple[AsyncIterator[bytes], Target, Decision]:
        """Connect and check the upstream's status before the client gets a byte; a failed
        attempt moves on to the decision's next target (never once a byte has gone out)."""
        decision, view = self._decide(req, min_tier)

        async def attempt(
            target: Target, api_base: str
        ) -> tuple[ClientRequest, UpstreamStream, AsyncExitStack]:
            chat, up = self._build(req, target, api_base)
            stack = AsyncExitStack()
            try:
                upstream = await stack.enter_async_context(
                    self.proxy.transport.stream(target.provider, up)
                )
                if upstream.status >= 400:
                    body = await upstream.read_all()
                    raise self._error(target, upstream.status, body, upstream.headers)
            except BaseException:
                await stack.aclose()
                raise
            return chat, upstream, stack

        try:
            done = await self.proxy.executor.run(
                decision.targets, attempt, self.proxy.attempt_failed, hold=True
            )
        except GatewayError as e:
            self._failed(view, decision, e)
            raise
        chat, upstream, stack = done.result
        target = done.target
        stack.callback(self.proxy.executor.end, target, done.api_base, True)
        relay: Relay = (
            NativeRelay() if target.provider.kind == "anthropic" else BridgedRelay(chat, target)
        )
        chunks = self._relay(chat, decision, target, upstream.chunks, relay, stack, done.attempts)
        return chunks, target, decision

    async def _relay(
        self,
        chat: ClientRequest,
        decision: Decision,
        target: Target,
        chunks: AsyncIterator[bytes],
        relay: Relay,
        stack: AsyncExitStack,
        attempts: int,
    ) -> AsyncIterator[bytes]:
        ttft: float | None = None
        status, error_type = 200, None
        try:
            async for chunk in chunks:
                out = relay.feed(chunk)
                if out:
                    if ttft is None:
                        ttft = time.perf_counter() - self.ctx.started
                    yield out
            tail = relay.finish()
            if tail:
                yield tail
            if relay.state.error is not None:
                status, error_type = 502, str(relay.state.error.get("type") or "upstream_error")
        except GatewayError as e:
            # the headers are gone: the error travels in-band, as Anthropic sends it
            status, error_type = e.status_code, e.error_type
            self.proxy.metrics.upstream_error(target.model, target.provider.name, e.error_type)
            yield error_event(anthropic_error_type(e), e.message)
        except (asyncio.CancelledError, GeneratorExit):
            status, error_type = 499, "client_disconnected"
            raise
        finally:
            await stack.aclose()
            st = relay.state
            self._record(
                chat,
                decision,
                target,
                status,
                ttft_s=ttft,
                usage=st.usage,
                error_type=error_type,
                upstream_request_id=st.upstream_request_id,
                output_chunks=st.chunks,
                attempts=attempts,
            )


class Relay(ABC):
    """Upstream bytes in, client bytes out; what it learned lands in `state`."""

    def __init__(self) -> None:
        self.state = StreamState()
        self.decoder = SSEDecoder()

    @abstractmethod
    def feed(self, chunk: bytes) -> bytes: ...

    @abstractmethod
    def finish(self) -> bytes: ...


class NativeRelay(Relay):
    """Anthropic → Anthropic: bytes forwarded as received; only the events that carry the
    id, usage or an error are parsed (content deltas are counted by their event name)."""

    def __init__(self) -> None:
        super().__init__()
        self._usage: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> bytes:
        for ev in self.decoder.feed(chunk):
            self._inspect(ev.event, ev.data)
        return chunk

    def finish(self) -> bytes:
        for ev in self.decoder.flush():
            self._inspect(ev.event, ev.data)
        if not self.state.done and self.state.error is None:
            self.state.error = {"type": "upstream_protocol_error"}
            return error_event("api_error", "the upstream stream ended before message_stop")
        return b""

    def _inspect(self, name: str | None, data: bytes) -> None:
        if name == "content_block_delta":
            self.state.chunks += 1
            return
        if name not in ("message_start", "message_delta", "message_stop", "error"):
            return
        self.state.done = self.state.done or name == "message_stop"
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(obj, dict):
            return
        if name == "error":
            err = obj.get("error")
            self.state.error = err if isinstance(err, dict) else {"type": "api_error"}
            return
        msg = obj.get("message") if name == "message_start" else obj
        if isinstance(msg, dict):
            if name == "message_start" and isinstance(msg.get("id"), str):
                self.state.upstream_request_id = msg["id"]
            if isinstance(msg.get("usage"), dict):
                self._usage.update({k: v for k, v in msg["usage"].items() if v is not None})
                self.state.usage = usage_from_anthropic(self._usage)


class BridgedRelay(Relay):
    """OpenAI-family → Anthropic: the model's adapter turns its upstream events into OpenAI
    chunks (with usage), which `ChatToMessagesStream` turns into Anthropic events."""

    def __init__(self, chat: ClientRequest, target: Target) -> None:
        super().__init__()
        self._inner = adapter_for(target.provider.kind).stream_translator(chat, target)
        self.state = self._inner.state
        self._chunks = SSEDecoder()
        self._out = ChatToMessagesStream(target.upstream_model)

    def feed(self, chunk: bytes) -> bytes:
        return self._translate([b for ev in self.decoder.feed(chunk) for b in self._inner.feed(ev)])

    def finish(self) -> bytes:
        tail = [b for ev in self.decoder.flush() for b in self._inner.feed(ev)]
        out = self._translate(tail + self._inner.finish())
        out += b"".join(self._out.finish())
        if self._out.error is not None and self.state.error is None:
            self.state.error = self._out.error
        return out

    def _translate(self, openai_sse: list[bytes]) -> bytes:
        if not openai_sse:
            return b""
        events = self._chunks.feed(b"".join(openai_sse))
        return b"".join(b for ev in events for b in self._out.feed(ev))

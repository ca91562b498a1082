"""The request pipeline: decide → build → send → parse/translate → record.

`ProxyService.complete()` returns a complete `Result`; `open_stream()` connects to the upstream
and checks its status *before* the client gets any byte (so an upstream error is still a proper
HTTP error), then returns the iterator of SSE bytes that the edge forwards as they arrive.
Every path ends in exactly one `Outcome` handed to the ledger writer — success, upstream error,
mid-stream failure and client disconnect alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from gateway.errors import GatewayError, UnsupportedEndpoint, UpstreamError
from gateway.metrics import GatewayMetrics
from gateway.providers.base import ClientRequest, Endpoint, Result, StreamTranslator, Target
from gateway.providers.registry import adapter_for
from gateway.providers.transport import Transport
from gateway.routing.router import Decision, Router
from gateway.serving.metering import Outcome
from gateway.sse import SSEDecoder


@dataclass(slots=True)
class RequestContext:
    request_id: str
    started: float  # perf_counter at the edge
    created_at: float  # wall clock (time.time()); made a datetime off the request path
    api_key_id: str | None = None
    team: str | None = None


class ProxyService:
    def __init__(
        self,
        router: Router,
        transport: Transport,
        metrics: GatewayMetrics,
        record: Callable[[Outcome], None],
    ) -> None:
        self.router = router
        self.transport = transport
        self.metrics = metrics
        self.record = record

    def decide(self, request: ClientRequest, ctx: RequestContext) -> tuple[Decision, Target]:
        try:
            decision = self.router.decide(request.model)
        except GatewayError as e:
            self.reject(ctx, request.endpoint, request.model, e)
            raise
        target = decision.targets[0]
        if request.endpoint not in adapter_for(target.provider.kind).endpoints:
            unsupported = UnsupportedEndpoint(
                f"model `{request.model}` ({target.provider.kind} provider "
                f"{target.provider.name}) does not serve /v1/{request.endpoint}", param="model")
            self.reject(ctx, request.endpoint, request.model, unsupported)
            raise unsupported
        return decision, target

    def _outcome(self, ctx: RequestContext, req: ClientRequest, decision: Decision | None,
                 target: Target | None, status: int, **kw: object) -> Outcome:
        return Outcome(
            request_id=ctx.request_id, created_at=ctx.created_at, request=req,
            endpoint=req.endpoint, requested_model=req.model, target=target,
            status_code=status, latency_s=time.perf_counter() - ctx.started,
            route_reason=decision.reason if decision else None,
            api_key_id=ctx.api_key_id, team=ctx.team, **kw,  # type: ignore[arg-type]
        )

    def reject(self, ctx: RequestContext, endpoint: Endpoint, model: str | None,
               error: GatewayError) -> None:
        """A request refused before any upstream call still gets its ledger row."""
        self.record(Outcome(
            request_id=ctx.request_id, created_at=ctx.created_at, request=None,
            endpoint=endpoint, requested_model=model, target=None,
            status_code=error.status_code, latency_s=time.perf_counter() - ctx.started,
            error_type=error.error_type, api_key_id=ctx.api_key_id, team=ctx.team))

    def _failed(self, ctx: RequestContext, req: ClientRequest, decision: Decision,
                target: Target, error: GatewayError) -> None:
        if isinstance(error, UpstreamError):
            self.metrics.upstream_error(target.model, target.provider.name, error.error_type)
        self.record(self._outcome(ctx, req, decision, target, error.status_code,
                                  error_type=error.error_type))

    async def complete(self, req: ClientRequest, ctx: RequestContext) -> tuple[Result, Target]:
        decision, target = self.decide(req, ctx)
        adapter = adapter_for(target.provider.kind)
        try:
            up = adapter.build_request(req, target)
            resp = await self.transport.send(target.provider, up)
            if resp.status >= 400:
                raise adapter.parse_error(resp.status, resp.body, resp.headers, target)
            result = adapter.parse_response(resp.body, req, target)
        except GatewayError as e:
            self._failed(ctx, req, decision, target, e)
            raise
        self.record(self._outcome(ctx, req, decision, target, 200, usage=result.usage,
                                  upstream_request_id=result.upstream_request_id))
        return result, target

    async def open_stream(
        self, req: ClientRequest, ctx: RequestContext
    ) -> tuple[AsyncIterator[bytes], Target]:
        decision, target = self.decide(req, ctx)
        adapter = adapter_for(target.provider.kind)
        stack = AsyncExitStack()
        try:
            up = adapter.build_request(req, target)
            upstream = await stack.enter_async_context(self.transport.stream(target.provider, up))
            if upstream.status >= 400:
                body = await upstream.read_all()
                raise adapter.parse_error(upstream.status, body, upstream.headers, target)
        except GatewayError as e:
            await stack.aclose()
            self._failed(ctx, req, decision, target, e)
            raise
        except BaseException:
            await stack.aclose()
            raise
        translator = adapter.stream_translator(req, target)
        return self._relay(req, ctx, decision, target, upstream.chunks, translator, stack), target

    async def _relay(self, req: ClientRequest, ctx: RequestContext, decision: Decision,
                     target: Target, chunks: AsyncIterator[bytes], tr: StreamTranslator,
                     stack: AsyncExitStack) -> AsyncIterator[bytes]:
        decoder = SSEDecoder()
        ttft: float | None = None
        status, error_type = 200, None
        try:
            async for chunk in chunks:
                out = [b for ev in decoder.feed(chunk) for b in tr.feed(ev)]
                if out:
                    if ttft is None:
                        ttft = time.perf_counter() - ctx.started
                    yield b"".join(out)
            tail = [b for ev in decoder.flush() for b in tr.feed(ev)] + tr.finish()
            if tail:
                yield b"".join(tail)
            if tr.state.error is not None:
                status = 502
                err_type = tr.state.error.get("type")
                error_type = err_type if isinstance(err_type, str) else "upstream_error"
        except GatewayError as e:
            # headers are gone: the error travels in-band, as OpenAI and vLLM do
            status, error_type = e.status_code, e.error_type
            self.metrics.upstream_error(target.model, target.provider.name, e.error_type)
            yield e.sse_event()
        except (asyncio.CancelledError, GeneratorExit):
            status, error_type = 499, "client_disconnected"
            raise
        finally:
            await stack.aclose()
            st = tr.state
            self.record(self._outcome(
                ctx, req, decision, target, status, ttft_s=ttft, usage=st.usage,
                error_type=error_type, upstream_request_id=st.upstream_request_id,
                output_chunks=st.chunks))

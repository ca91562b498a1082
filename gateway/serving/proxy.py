"""The request pipeline: decide → build → send → parse/translate → record.

`ProxyService.complete()` returns a complete `Result`; `open_stream()` connects to the upstream
and checks its status *before* the client gets any byte (so an upstream error is still a proper
HTTP error), then returns the iterator of SSE bytes that the edge forwards as they arrive.
Every path ends in exactly one `Outcome` handed to the ledger writer — success, upstream error,
mid-stream failure and client disconnect alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from gateway.errors import GatewayError, InvalidRequest, UnsupportedEndpoint
from gateway.metrics import GatewayMetrics
from gateway.providers.base import (
    ClientRequest,
    Result,
    StreamTranslator,
    Target,
    UpstreamRequest,
)
from gateway.providers.registry import adapter_for
from gateway.providers.transport import Transport, UpstreamStream
from gateway.routing.executor import Executor
from gateway.routing.policies import Decision
from gateway.routing.router import Router
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
        executor: Executor,
    ) -> None:
        self.router = router
        self.transport = transport
        self.metrics = metrics
        self.record = record
        self.executor = executor

    def decide(
        self, request: ClientRequest, ctx: RequestContext, ledger_endpoint: str | None = None
    ) -> Decision:
        """The router's decision, refused (and recorded under `ledger_endpoint`, by default the
        request's own) when no target can serve the request's endpoint."""
        try:
            decision = self.router.decide(request)
            if not decision.targets:
                raise InvalidRequest(
                    f"No model behind `{request.model}` can serve this "
                    f"request ({decision.reason}).",
                    param="model",
                    code="no_eligible_model",
                )
            for target in decision.targets:
                if request.endpoint not in adapter_for(target.provider.kind).endpoints:
                    raise UnsupportedEndpoint(
                        f"model `{target.model}` ({target.provider.kind} provider "
                        f"{target.provider.name}) does not serve /v1/{request.endpoint}",
                        param="model",
                    )
        except GatewayError as e:
            self.reject(ctx, ledger_endpoint or request.endpoint, request.model, e)
            raise
        return decision

    def _outcome(
        self,
        ctx: RequestContext,
        req: ClientRequest,
        decision: Decision | None,
        target: Target | None,
        status: int,
        **kw: object,
    ) -> Outcome:
        return Outcome(
            request_id=ctx.request_id,
            created_at=ctx.created_at,
            request=req,
            endpoint=req.endpoint,
            requested_model=req.model,
            target=target,
            status_code=status,
            latency_s=time.perf_counter() - ctx.started,
            route_reason=decision.reason if decision else None,
            route=decision.route if decision else None,
            prefix_key=decision.prefix_key if decision else None,
            api_key_id=ctx.api_key_id,
            team=ctx.team,
            **kw,  # type: ignore[arg-type]
        )

    def reject(
        self, ctx: RequestContext, endpoint: str, model: str | None, error: GatewayError
    ) -> None:
        """A request refused before any upstream call still gets its ledger row."""
        self.record(
            Outcome(
                request_id=ctx.request_id,
                created_at=ctx.created_at,
                request=None,
                endpoint=endpoint,
                requested_model=model,
                target=None,
                status_code=error.status_code,
                latency_s=time.perf_counter() - ctx.started,
                error_type=error.error_type,
                api_key_id=ctx.api_key_id,
                team=ctx.team,
            )
        )

    def attempt_failed(self, target: Target, error: GatewayError) -> None:
        """One failed attempt: counted per provider (the executor may go on to the next)."""
        self.metrics.upstream_error(target.model, target.provider.name, error.error_type)

    def _failed(
        self, ctx: RequestContext, req: ClientRequest, decision: Decision, error: GatewayError
    ) -> None:
        target = error.target or decision.targets[0]
        self.record(
            self._outcome(
                ctx,
                req,
                decision,
                target,
                error.status_code,
                error_type=error.error_type,
                attempts=error.attempts,
            )
        )

    async def complete(self, req: ClientRequest, ctx: RequestContext) -> tuple[Result, Target]:
        decision = self.decide(req, ctx)

        async def attempt(target: Target, api_base: str) -> Result:
            adapter = adapter_for(target.provider.kind)
            up = at_replica(adapter.build_request(req, target), target, api_base)
            resp = await self.transport.send(target.provider, up)
            if resp.status >= 400:
                raise adapter.parse_error(resp.status, resp.body, resp.headers, target)
            return adapter.parse_response(resp.body, req, target)

        try:
            done = await self.executor.run(decision.targets, attempt, self.attempt_failed)
        except GatewayError as e:
            self._failed(ctx, req, decision, e)
            raise
        result = done.result
        self.record(
            self._outcome(
                ctx,
                req,
                decision,
                done.target,
                200,
                usage=result.usage,
                upstream_request_id=result.upstream_request_id,
                attempts=done.attempts,
            )
        )
        return result, done.target

    async def open_stream(
        self, req: ClientRequest, ctx: RequestContext
    ) -> tuple[AsyncIterator[bytes], Target]:
        decision = self.decide(req, ctx)

        async def attempt(target: Target, api_base: str) -> tuple[UpstreamStream, AsyncExitStack]:
            adapter = adapter_for(target.provider.kind)
            stack = AsyncExitStack()
            try:
                up = at_replica(adapter.build_request(req, target), target, api_base)
                upstream = await stack.enter_async_context(
                    self.transport.stream(target.provider, up)
                )
                if upstream.status >= 400:
                    body = await upstream.read_all()
                    raise adapter.parse_error(upstream.status, body, upstream.headers, target)
            except BaseException:
                await stack.aclose()
                raise
            return upstream, stack

        try:
            done = await self.executor.run(
                decision.targets, attempt, self.attempt_failed, hold=True
            )
        except GatewayError as e:
            self._failed(ctx, req, decision, e)
            raise
        upstream, stack = done.result
        target = done.target
        stack.callback(self.executor.end, target, done.api_base, True)
        translator = adapter_for(target.provider.kind).stream_translator(req, target)
        relay = self._relay(
            req, ctx, decision, target, upstream.chunks, translator, stack, done.attempts
        )
        return relay, target

    async def _relay(
        self,
        req: ClientRequest,
        ctx: RequestContext,
        decision: Decision,
        target: Target,
        chunks: AsyncIterator[bytes],
        tr: StreamTranslator,
        stack: AsyncExitStack,
        attempts: int,
    ) -> AsyncIterator[bytes]:
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
            self.record(
                self._outcome(
                    ctx,
                    req,
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
            )


def at_replica(up: UpstreamRequest, target: Target, api_base: str) -> UpstreamRequest:
    """The same request sent to another replica of the target's provider."""
    if api_base == target.provider.api_base:
        return up
    return dataclasses.replace(up, url=api_base + up.url[len(target.provider.api_base) :])

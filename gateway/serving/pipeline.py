"""The request pipeline every generation endpoint goes through: decide → attempt → relay → record.

`complete()` returns a whole `Result`; `open_stream()` connects to the upstream and checks its
status *before* the client gets any byte (so an upstream error is still a proper HTTP error,
and the executor may still fall back), then returns the typed chunks for the edge to render as
they arrive. Which client API asked, and in which wire format, is the codec's business; which
API family answers is the adapter's. Every path ends in exactly one `Outcome` handed to
`record` — success, refusal, upstream error, mid-stream failure and client disconnect alike —
whose ledger row, metrics and router learning are made off the request's path
(`serving/after.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from gateway.core import (
    Chunk,
    ClientRequest,
    Result,
    StreamError,
    Target,
    Usage,
    new_request_id,
)
from gateway.errors import GatewayError, Scrubber
from gateway.metrics import GatewayMetrics
from gateway.providers.base import StreamTranslator
from gateway.providers.registry import adapter_for
from gateway.providers.transport import Transport, UpstreamStream
from gateway.quality.shadow import Shadow, ShadowAnswer, Tap
from gateway.routing.executor import Attempted, Executor
from gateway.routing.policies import Decision
from gateway.routing.router import Router
from gateway.serving.admission import Admission
from gateway.serving.attempts import _Ended, at_replica, native_targets, observe, redacted
from gateway.serving.metering import estimate_prompt_tokens, price
from gateway.serving.outcome import Outcome, RequestContext
from gateway.sse import SSEDecoder

DRAIN_S = 2.0  # how long an upstream may keep a stream's connection open after its answer


@dataclass(slots=True)
class Answer:
    result: Result
    target: Target
    decision: Decision


@dataclass(slots=True)
class Streaming:
    chunks: AsyncIterator[list[Chunk]]  # one list per upstream read; closing it records the row
    target: Target
    decision: Decision
    native: bool = False  # the upstream speaks the client's wire: chunks are `Raw` events


class Pipeline:
    def __init__(
        self,
        router: Router,
        transport: Transport,
        executor: Executor,
        metrics: GatewayMetrics,
        record: Callable[[Outcome], None],
        scrub: Scrubber | None = None,
        admission: Admission | None = None,
        shadow: Shadow | None = None,
    ) -> None:
        self.router = router
        self.transport = transport
        self.executor = executor
        self.metrics = metrics
        self.record = record  # the ledger writer's queue: never waits
        self._draining: set[asyncio.Task[None]] = set()
        # every message that came from an upstream passes through here before a client sees it
        self.scrub = scrub or Scrubber(())
        self.admission = admission  # governance (auth on): limits, budgets, reservations
        # quality evidence: samples requests at decision time; its calls come back through
        # `shadow_call`, after the client's answer (quality/shadow.py)
        self.shadow = shadow
        if shadow is not None:
            shadow.bind(self.shadow_call)

    # --- decisions and refusals -------------------------------------------------------------

    def decide(self, req: ClientRequest, ctx: RequestContext) -> Decision:
        """The router's decision; a refusal (a model the caller may not use, an unknown one,
        nothing eligible) gets its row."""
        try:
            degrade = self.admission.authorize(req, ctx) if self.admission else False
            decision = self.router.decide(req, budget_degraded=degrade)
            if req.native_only is not None:
                decision = native_targets(decision, req, req.native_only)
            return decision
        except GatewayError as e:
            self.reject(ctx, req.endpoint, req.model, e)
            raise

    async def admit(self, req: ClientRequest, ctx: RequestContext) -> Decision:
        """Decide, then pass admission (limits, budgets: the maximum cost is reserved)."""
        decision = self.decide(req, ctx)
        if self.admission is not None:
            try:
                await self.admission.admit(req, ctx, decision)
            except GatewayError as e:
                self.reject(ctx, req.endpoint, req.model, e)
                raise
        return decision

    def reject(
        self, ctx: RequestContext, endpoint: str, model: str | None, error: GatewayError
    ) -> None:
        """A request refused before any upstream call still gets its ledger row."""
        self._record(
            ctx,
            Outcome(
                request_id=ctx.request_id,
                created_at=ctx.created_at,
                endpoint=endpoint,
                requested_model=model,
                status_code=error.status_code,
                latency_s=time.perf_counter() - ctx.started,
                error_type=error.error_type,
                attempts=0,
                api_key_id=ctx.api_key_id,
                team=ctx.team,
            ),
        )

    def _record(self, ctx: RequestContext, outcome: Outcome) -> None:
        ctx.recorded = True
        self.record(outcome)

    def attempt_failed(self, target: Target, error: GatewayError) -> None:
        """One failed attempt: counted per provider (the executor may go on to the next)."""
        self.metrics.upstream_error(target.model, target.provider.name, error.error_type)

    def _outcome(
        self,
        ctx: RequestContext,
        req: ClientRequest,
        decision: Decision,
        target: Target,
        status: int,
        *,
        attempts: int,
        usage: Usage | None = None,
        error_type: str | None = None,
        upstream_request_id: str | None = None,
        ttft_s: float | None = None,
        output_chunks: int = 0,
        shadow_of: str | None = None,
    ) -> Outcome:
        return Outcome(
            request_id=ctx.request_id,
            created_at=ctx.created_at,
            endpoint=req.endpoint,
            requested_model=req.model,
            status_code=status,
            latency_s=time.perf_counter() - ctx.started,
            target=target,
            stream=req.stream,
            usage=usage,
            prompt_estimate=estimate_prompt_tokens(req) if usage is None else None,
            output_chunks=output_chunks,
            ttft_s=ttft_s,
            error_type=error_type,
            upstream_request_id=upstream_request_id,
            route=decision.route,
            route_reason=decision.reason,
            prefix_key=decision.prefix_key,
            attempts=attempts,
            api_key_id=ctx.api_key_id,
            team=ctx.team,
            shadow_of=shadow_of,
        )

    def _tap(self, req: ClientRequest, ctx: RequestContext, decision: Decision) -> Tap | None:
        if self.shadow is None or decision.route is None:
            return None
        return self.shadow.tap(req, decision.route, ctx.request_id, ctx.created_at)

    def _failed(
        self,
        ctx: RequestContext,
        req: ClientRequest,
        decision: Decision,
        error: GatewayError,
        shadow_of: str | None = None,
    ) -> None:
        target = error.target or decision.targets[0]
        self._record(
            ctx,
            self._outcome(
                ctx,
                req,
                decision,
                target,
                error.status_code,
                error_type=error.error_type,
                attempts=error.attempts,
                shadow_of=shadow_of,
            ),
        )

    # --- whole answers ----------------------------------------------------------------------

    async def complete(self, req: ClientRequest, ctx: RequestContext) -> Answer:
        decision = await self.admit(req, ctx)
        tap = self._tap(req, ctx, decision)
        answer = await self._complete(req, ctx, decision)
        if tap is not None:  # before the writer's task runs the consumers: no await between
            tap.result = answer.result
        return answer

    async def shadow_call(
        self, req: ClientRequest, *, shadow_of: str, team: str | None
    ) -> ShadowAnswer:
        """A shadow call (quality/shadow.py): the pinned model through the same executor,
        without admission — the client's key is not charged — recorded as a row of its own."""
        ctx = RequestContext(new_request_id(), time.perf_counter(), time.time(), team=team)
        decision = self.router.decide(req)
        answer = await self._complete(req, ctx, decision, shadow_of=shadow_of)
        usage = answer.result.usage
        cost = price(
            self._outcome(ctx, req, decision, answer.target, 200, attempts=1, usage=usage)
        ).total_usd
        return ShadowAnswer(answer.result, ctx.request_id, cost)

    async def _complete(
        self,
        req: ClientRequest,
        ctx: RequestContext,
        decision: Decision,
        shadow_of: str | None = None,
    ) -> Answer:
        trying = decision.targets[0]

        async def attempt(target: Target, api_base: str) -> Result:
            nonlocal trying
            trying = target
            adapter = adapter_for(target.provider.kind)
            up = at_replica(adapter.build_request(req, target), target, api_base)
            resp = await self.transport.send(target.provider, up)
            if resp.status >= 400:
                error = adapter.parse_error(resp.status, resp.body, resp.headers, target)
                raise redacted(error, target)
            return adapter.parse_response(resp.body, req, target)

        try:
            done = await self.executor.run(decision.targets, attempt, self.attempt_failed)
        except GatewayError as e:
            self._failed(ctx, req, decision, e, shadow_of)
            raise self.scrub.error(e) from None
        except asyncio.CancelledError:  # the client went away: the upstream call is abandoned
            self._record(
                ctx,
                self._outcome(
                    ctx,
                    req,
                    decision,
                    trying,
                    499,
                    error_type="client_disconnected",
                    attempts=1,
                    shadow_of=shadow_of,
                ),
            )
            raise
        result = done.result
        self._record(
            ctx,
            self._outcome(
                ctx,
                req,
                decision,
                done.target,
                200,
                usage=result.usage,
                upstream_request_id=result.upstream_request_id,
                attempts=done.attempts,
                shadow_of=shadow_of,
            ),
        )
        return Answer(result, done.target, decision)

    # --- streams ----------------------------------------------------------------------------

    async def open_stream(self, req: ClientRequest, ctx: RequestContext) -> Streaming:
        decision = await self.admit(req, ctx)
        tap = self._tap(req, ctx, decision)

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
                    error = adapter.parse_error(upstream.status, body, upstream.headers, target)
                    raise redacted(error, target)
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
            raise self.scrub.error(e) from None
        upstream, stack = done.result
        target = done.target
        adapter = adapter_for(target.provider.kind)
        translator = adapter.stream_translator(req, target)
        relay = self._relay(req, ctx, decision, done, upstream.chunks, translator, stack, tap)
        return Streaming(relay, target, decision, adapter.native(req, target))

    def _close_later(self, reads: AsyncIterator[bytes], stack: AsyncExitStack) -> None:
        """Read what the upstream still sends after the answer's end, then close it — in the
        background, so the client's response ends with the answer, whenever the upstream closes
        its side. A connection read to its end goes back to the pool for the next request; one
        still open after `DRAIN_S` is closed."""

        async def drain() -> None:
            try:
                async with asyncio.timeout(DRAIN_S):
                    async for _ in reads:
                        pass
            except (TimeoutError, GatewayError):
                pass
            finally:
                await stack.aclose()

        task = asyncio.create_task(drain())
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def _relay(
        self,
        req: ClientRequest,
        ctx: RequestContext,
        decision: Decision,
        done: Attempted[tuple[UpstreamStream, AsyncExitStack]],
        reads: AsyncIterator[bytes],
        tr: StreamTranslator,
        stack: AsyncExitStack,
        tap: Tap | None = None,
    ) -> AsyncIterator[list[Chunk]]:
        target = done.target
        decoder = SSEDecoder()
        ended = _Ended()
        answered = False  # the translator saw the answer's end (or an error that ends it)
        try:
            async for data in reads:
                chunks = [c for ev in decoder.feed(data) for c in tr.feed(ev)]
                if chunks:
                    observe(chunks, ended, ctx.started, self.scrub)
                    if tap is not None:  # a sampled request: its answer, for comparison
                        tap.chunks.extend(chunks)
                    yield chunks
                if tr.state.done:
                    answered = True
                    break
            else:
                tail = [c for ev in decoder.flush() for c in tr.feed(ev)] + tr.finish()
                if tail:
                    observe(tail, ended, ctx.started, self.scrub)
                    if tap is not None:
                        tap.chunks.extend(tail)
                    yield tail
        except GatewayError as e:
            # the headers are gone: the error travels in-band, in the client's format
            ended.status, ended.error_type = e.status_code, e.error_type
            self.metrics.upstream_error(target.model, target.provider.name, e.error_type)
            yield [StreamError(e.type, self.scrub(e.message), e.status_code, e.code)]
        except (asyncio.CancelledError, GeneratorExit):
            ended.status, ended.error_type = 499, "client_disconnected"
            raise
        finally:
            self.executor.end(target, done.api_base, True)  # the GPU pool's slot is free again
            if answered:
                self._close_later(reads, stack)
            else:
                await stack.aclose()
            st = tr.state
            self._record(
                ctx,
                self._outcome(
                    ctx,
                    req,
                    decision,
                    target,
                    ended.status,
                    usage=st.usage,
                    error_type=ended.error_type,
                    upstream_request_id=st.upstream_request_id,
                    ttft_s=ended.ttft_s,
                    output_chunks=st.chunks,
                    attempts=done.attempts,
                ),
            )

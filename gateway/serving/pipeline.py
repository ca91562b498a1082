"""The request pipeline every generation endpoint goes through: decide → attempt → relay → record.

`complete()` returns a whole `Result`; `open_stream()` connects to the upstream and checks its
status *before* the client gets any byte (so an upstream error is still a proper HTTP error,
and the executor may still fall back), then returns the typed chunks for the edge to render as
they arrive (`relay.py`). Which client API asked, and in which wire format, is the codec's
business; which API family answers is the adapter's. Every path ends in exactly one `Outcome`
handed to `record` — success, refusal, upstream error, mid-stream failure and client disconnect
alike — whose ledger row, metrics and router learning are made off the request's path
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
    Target,
    new_request_id,
)
from gateway.errors import GatewayError, Scrubber
from gateway.metrics import GatewayMetrics
from gateway.providers.registry import adapter_for
from gateway.providers.transport import Transport, UpstreamStream
from gateway.quality.shadow import Shadow, ShadowAnswer, Tap
from gateway.routing.executor import Executor
from gateway.routing.policies import Decision
from gateway.routing.router import Router
from gateway.serving.admission import Admission
from gateway.serving.attempts import at_replica, native_targets, outcome_of, redacted
from gateway.serving.metering import price
from gateway.serving.outcome import Outcome, RequestContext
from gateway.serving.relay import Relay, cut_reason


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
        self.relay = Relay(executor, metrics, self.scrub, self._record)

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
            outcome_of(
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
            outcome_of(ctx, req, decision, answer.target, 200, attempts=1, usage=usage)
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
        except asyncio.CancelledError:  # the client went away (or the drain ended it)
            status, why = cut_reason(ctx)
            self._record(
                ctx,
                outcome_of(
                    ctx,
                    req,
                    decision,
                    trying,
                    status,
                    error_type=why,
                    attempts=1,
                    shadow_of=shadow_of,
                ),
            )
            raise
        result = done.result
        self._record(
            ctx,
            outcome_of(
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
        relay = self.relay.stream(req, ctx, decision, done, upstream.chunks, translator, stack, tap)
        return Streaming(relay, target, decision, adapter.native(req, target))

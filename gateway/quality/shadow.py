"""Shadow calls: a sample of a route's requests sent again, to its reference model, after the
client has its answer — then compared, and kept as evidence.

How a request flows through here (the pipeline and the after-request consumer call it):

1. `tap(req, route, request_id)` — at decision time, O(1) but for the task's hash: is the
   route shadowed, and does this request fall in the sample? If so a `Tap` is returned (and
   kept under the request id) for the pipeline to fill with the primary's answer: the `Result`,
   or the stream's chunks as they pass (a list append per read).
2. `finished(request_id, ok, model, usage, cost_usd)` — from the after-request consumer, in
   the ledger writer's task, after the request's `Outcome` is recorded: at a stream's end, or
   just before a whole answer's body is written (the consumer runs no sooner than the
   handler's next await, and the shadow call's first await is its upstream I/O). If the primary
   succeeded and the caps allow, the shadow call starts as a background task; otherwise the
   sample is dropped and counted (`gateway_shadow_samples_total{outcome}`); nothing queues.
3. The task sends the request to the reference through the same pipeline and executor
   (`ShadowCall`: no admission — the client key's rate limits and budgets are not charged —
   but a ledger row of its own, `shadow = true`, `shadow_of` = the client's request id, team
   `evidence.team`), compares the two answers with the task's comparator (or judge), adds
   the pair to `Evidence` and stores it (`quality_pairs`).

The quality gate (routing) raises a task's sample rate while it explores with
`Shadow.boost(task, rate)`: every shadowed route then samples that task at `rate` at least,
until `boost(task, 0.0)`. When the primary answer came from the reference itself there is
nothing to compare, unless the gate named a `challenger` for the task (`boost(task, rate,
challenger=model)`, for `unknown: reference`): the shadow call then goes to the challenger and
the pair is stored as (challenger, reference). Both are O(1) and safe on the hot path.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Protocol

from gateway.config import GatewayConfig, ShadowConfig
from gateway.core import ZERO, Chunk, ClientRequest, Price, Result, Usage
from gateway.errors import GatewayError
from gateway.metrics import GatewayMetrics
from gateway.pricing.cost import cost
from gateway.quality.answers import Answer, from_chunks, from_result
from gateway.quality.budget import DailySpend, utc_day
from gateway.quality.compare import Verdict, compare
from gateway.quality.evidence import Evidence
from gateway.quality.judge import judge_request
from gateway.quality.judge import verdict as judge_verdict
from gateway.quality.tasks import task_config, task_of

log = logging.getLogger("gateway.quality")

MAX_PENDING = 10_000  # sampled requests still running; past it the oldest samples are dropped


@dataclass(slots=True)
class Tap:
    """A sampled request and, once it ends, the primary's answer."""

    request: ClientRequest
    task: str
    route: str
    request_id: str
    created_at: float
    result: Result | None = None
    chunks: list[Chunk] = field(default_factory=list)

    def answer(self) -> Answer:
        if self.result is not None:
            return from_result(self.result)
        return from_chunks(self.chunks)


@dataclass(frozen=True, slots=True)
class ShadowAnswer:
    result: Result
    request_id: str  # the shadow call's own ledger row
    cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class _Pair:
    model: str  # the model under test
    answer: Answer
    reference: Answer
    model_cost: Decimal
    reference_cost: Decimal
    shadow_request_id: str


class ShadowCall(Protocol):
    """One call through the pipeline, outside admission, recorded as a shadow row."""

    async def __call__(
        self, req: ClientRequest, *, shadow_of: str, team: str | None
    ) -> ShadowAnswer: ...


class PairSink(Protocol):
    async def add(self, pair: dict[str, object]) -> None: ...

    def close(self) -> None: ...


def shadow_request(req: ClientRequest, model: str) -> ClientRequest:
    """The request as the reference gets it: a whole (non-streamed) chat completion."""
    body = {k: v for k, v in req.body.items() if k not in ("stream", "stream_options")}
    body["model"] = model
    return ClientRequest(endpoint="chat", body=body, model=model, task=req.task)


class Shadow:
    def __init__(
        self,
        config: GatewayConfig,
        evidence: Evidence,
        metrics: GatewayMetrics,
        prices: Mapping[str, Price],
        *,
        sink: PairSink | None = None,
        rand: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.time,
        share: float = 1.0,
    ) -> None:
        """`share`: this process's part of the caps and concurrency (1 / workers)."""
        self.evidence = evidence
        self._routes: dict[str, ShadowConfig] = {
            r.name: r.shadow for r in config.routes if r.shadow is not None
        }
        self._tasks = config.tasks
        self._evidence_cfg = config.evidence
        self._metrics = metrics
        self._prices = prices
        self._sink = sink
        self._rand = rand or random.Random().random
        self._clock = clock
        self._share = Decimal(str(share))
        cap = config.evidence.max_usd_per_day
        self.spend = DailySpend(total_cap=None if cap is None else Decimal(str(cap)) * self._share)
        self._boost: dict[str, float] = {}
        self._challenger: dict[str, str] = {}
        self._pending: OrderedDict[str, Tap] = OrderedDict()
        self._inflight: dict[str, int] = dict.fromkeys(self._routes, 0)
        self._running: set[asyncio.Task[None]] = set()
        self._call: ShadowCall | None = None

    @property
    def routes(self) -> Mapping[str, ShadowConfig]:
        return self._routes

    def bind(self, call: ShadowCall) -> None:
        """The pipeline's shadow call (the pipeline is built after this object)."""
        self._call = call

    def restore(self, today: date, spent: Mapping[str, Decimal]) -> None:
        """Today's spend from the ledger (every process's): this process takes its share."""
        self.spend.restore(today, {route: usd * self._share for route, usd in spent.items()})

    # --- the gate's knobs ---------------------------------------------------------------

    def boost(self, task: str, rate: float, challenger: str | None = None) -> None:
        if rate <= 0:
            self._boost.pop(task, None)
            self._challenger.pop(task, None)
            return
        self._boost[task] = min(1.0, rate)
        if challenger is not None:
            self._challenger[task] = challenger

    # --- the request path: O(1) ---------------------------------------------------------

    def tap(
        self, req: ClientRequest, route: str | None, request_id: str, created_at: float
    ) -> Tap | None:
        cfg = self._routes.get(route) if route is not None else None
        if cfg is None or req.operation != "chat" or req.native_only is not None:
            return None
        task = req.task = task_of(req, self._tasks)
        rate = max(cfg.sample_rate, self._boost.get(task, 0.0))
        if rate <= 0 or self._rand() >= rate:
            return None
        assert route is not None
        tap = Tap(req, task, route, request_id, created_at)
        self._pending[request_id] = tap
        if len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
        return tap

    # --- after the request: off its path ------------------------------------------------

    def finished(
        self, request_id: str, ok: bool, model: str | None, usage: Usage, cost_usd: Decimal
    ) -> None:
        tap = self._pending.pop(request_id, None)
        if tap is None or not ok or model is None or self._call is None:
            return
        cfg = self._routes[tap.route]
        reference = cfg.reference
        other = reference
        if model == reference:
            challenger = self._challenger.get(tap.task)
            if challenger is None or challenger == reference:
                return  # the reference answered: nothing to compare it with
            other = challenger
        if self._inflight[tap.route] >= max(1, math.floor(cfg.max_concurrency * self._share)):
            self._count(tap.route, "dropped_concurrency")
            return
        price = self._prices.get(other)
        estimate = cost(usage, price).total_usd if price is not None else ZERO
        today = utc_day(self._clock())
        cap = Decimal(str(cfg.max_usd_per_day)) * self._share
        refusal = self.spend.refusal(today, tap.route, cap, estimate)
        if refusal is not None:
            self._count(tap.route, refusal)
            return
        self.spend.reserve(tap.route, estimate)
        self._inflight[tap.route] += 1
        run = self._run(tap, cfg, model, other, estimate, cost_usd)
        task = asyncio.get_running_loop().create_task(run)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(
        self,
        tap: Tap,
        cfg: ShadowConfig,
        model: str,
        other: str,
        estimate: Decimal,
        primary_cost: Decimal,
    ) -> None:
        actual = ZERO
        try:
            assert self._call is not None
            shadow = await self._call(
                shadow_request(tap.request, other),
                shadow_of=tap.request_id,
                team=self._evidence_cfg.team,
            )
            actual = shadow.cost_usd
            self._metrics.shadow_cost.labels(tap.route).inc(float(actual))
            primary, theirs = tap.answer(), from_result(shadow.result)
            if other == cfg.reference:  # the model's answer against the reference's
                pair = _Pair(model, primary, theirs, primary_cost, actual, shadow.request_id)
            else:  # the reference served; the challenger's answer is under test
                pair = _Pair(other, theirs, primary, actual, primary_cost, shadow.request_id)
            verdict, judged = await self._compare(tap, pair.answer, pair.reference)
            actual += judged
            if verdict is None:
                self._count(tap.route, "failed")  # the judge gave no verdict
                return
            await self._keep(tap, cfg.reference, pair, verdict)
            self._count(tap.route, "compared")
        except GatewayError as e:
            log.info("shadow call for %s failed: %s", tap.request_id, e.error_type)
            self._count(tap.route, "failed")
        except Exception:
            log.exception("shadow call for %s failed", tap.request_id)
            self._count(tap.route, "failed")
        finally:
            self._inflight[tap.route] -= 1
            self.spend.settle(utc_day(self._clock()), tap.route, estimate, actual)

    async def _compare(
        self, tap: Tap, candidate: Answer, reference: Answer
    ) -> tuple[Verdict | None, Decimal]:
        """The task's comparator's verdict, or its judge's; and what the judge cost."""
        tc = task_config(tap.task, self._tasks)
        if tc is None or tc.judge is None:
            return compare(tc.compare if tc is not None else "text", candidate, reference), ZERO
        assert self._call is not None
        asked = judge_request(tc.judge, tap.request, candidate, reference)
        reply = await self._call(asked, shadow_of=tap.request_id, team=self._evidence_cfg.team)
        self._metrics.shadow_cost.labels(tap.route).inc(float(reply.cost_usd))
        return judge_verdict(from_result(reply.result)), reply.cost_usd

    async def _keep(self, tap: Tap, reference: str, pair: _Pair, verdict: Verdict) -> None:
        self.evidence.add(tap.task, pair.model, reference, verdict.score, verdict.passed)
        if self._sink is None:
            return
        limit = self._evidence_cfg.sample_chars
        a, b = pair.answer.sample(), pair.reference.sample()
        await self._sink.add(
            {
                "id": pair.shadow_request_id,
                "created_at": datetime.fromtimestamp(self._clock(), UTC),
                "task": tap.task,
                "route": tap.route,
                "model": pair.model,
                "reference": reference,
                "comparator": verdict.comparator,
                "score": verdict.score,
                "passed": verdict.passed,
                "request_id": tap.request_id,
                "shadow_request_id": pair.shadow_request_id,
                "model_cost_usd": pair.model_cost,
                "reference_cost_usd": pair.reference_cost,
                "model_sample": a[:limit],
                "reference_sample": b[:limit],
                "truncated": len(a) > limit or len(b) > limit,
            }
        )

    def _count(self, route: str, outcome: str) -> None:
        self._metrics.shadow_samples.labels(route, outcome).inc()

    async def aclose(self) -> None:
        """Shadow calls still running are cancelled: evidence is never worth a slow exit."""
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self._sink is not None:
            self._sink.close()

"""Turn the model name a client sent into a `Decision`: ordered targets plus the reason.

A configured model's own name pins it. A route name (`auto`, `fast`, …) runs the route's policy
over its candidates: each is checked for eligibility, given an expected cost (its price, or for a
self-hosted pool the GPU's amortised or marginal cost; a likely prompt-cache hit at the cache-read
rate; output tokens from max_tokens capped by the route's recent average) and a predicted time
to first token (live vLLM capacity for self-hosted pools, observed TTFTs otherwise). The router
learns from outcomes in `observe`, which the ledger writer calls off the request path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from gateway.config import GatewayConfig, ModelConfig, RouteConfig
from gateway.core import ClientRequest, Operation, Price, Target, Usage
from gateway.errors import InvalidRequest, ModelNotFound, UnsupportedEndpoint
from gateway.pricing.cost import cost
from gateway.pricing.gpu import amortized_price, routing_cost
from gateway.providers.registry import operations as provider_operations
from gateway.quality.tasks import MAX_TASK_CHARS, task_of
from gateway.routing.candidates import (
    RequestFacts,
    ineligibility,
    over_price_cap,
    request_facts,
)
from gateway.routing.gate import Boost, EvidenceView, QualityGate, Verdict, cheaper_than
from gateway.routing.memory import RecentKeys
from gateway.routing.policies import CandidateView, Decision, rank

PREFIX_MEMORY = 10_000  # distinct (provider, system prompt) pairs remembered
TASK_MEMORY = 10_000  # system prompts whose task name is remembered (one sha256 each)
DEFAULT_OUTPUT_TOKENS = 256  # expected output before a route has seen any
EWMA = 0.2  # weight of the newest observation in running averages


class _Replica(Protocol):
    @property
    def predicted_ttft_s(self) -> float | None: ...


class CapacityView(Protocol):
    """What the router reads from live capacity (gateway.routing.capacity.CapacitySnapshot)."""

    def has_headroom(self, provider: str) -> bool: ...

    def describe(self, provider: str) -> str: ...

    def pick(self, provider: str) -> _Replica | None: ...


class NoCapacity:
    """No self-hosted pools monitored: everything has headroom, nothing is predicted."""

    def has_headroom(self, provider: str) -> bool:
        return True

    def describe(self, provider: str) -> str:
        return ""

    def pick(self, provider: str) -> None:
        return None


def model_price(model: ModelConfig, config: GatewayConfig, prices: Mapping[str, Price]) -> Price:
    """A self-hosted model without an explicit price costs its GPU's amortised share."""
    gpu = config.provider(model.provider).gpu
    if gpu is not None and model.price is None:
        return amortized_price(gpu.hourly_usd, gpu.count, gpu.throughput_tokens_per_s)
    return prices[model.name]


class Router:
    def __init__(
        self,
        config: GatewayConfig,
        prices: Mapping[str, Price],
        capacity: Callable[[], CapacityView] | None = None,
        clock: Callable[[], float] = time.monotonic,
        operations: Callable[[str], frozenset[Operation]] = provider_operations,
        prefix_memory: int = PREFIX_MEMORY,
        evidence: EvidenceView | None = None,
        boost: Boost | None = None,
    ) -> None:
        """`evidence` (quality/evidence.py) is what routes with a quality gate read; `boost`
        (`Shadow.boost`) raises a task's shadow rate while the gate explores it."""
        self._models = {m.name: m for m in config.models}
        self._targets: dict[str, Target] = {}
        self._pinned: dict[str, Decision] = {}
        self._operations: dict[str, frozenset[Operation]] = {}  # model → what it can do
        for m in config.models:
            provider = config.provider(m.provider)
            t = Target(m.name, m.target_model, provider, model_price(m, config, prices), m)
            self._targets[m.name] = t
            self._operations[m.name] = operations(provider.kind)
            self._pinned[m.name] = Decision(
                (t,), f"pinned: {m.name} → {provider.name} ({m.target_model})"
            )
        self._routes = {r.name: r for r in config.routes}
        self._candidates = {r.name: r.candidates for r in config.routes}
        self._gates: dict[str, QualityGate] = {}
        if evidence is not None:
            for r in config.routes:
                if r.quality is None or r.shadow is None:
                    continue
                ref = r.shadow.reference
                prices_now = {n: t.price for n, t in self._targets.items()}
                free = frozenset(
                    c
                    for c in r.candidates
                    if r.local_cost_mode == "marginal" and self._targets[c].provider.self_hosted
                )
                gated = cheaper_than(ref, r.candidates, prices_now, free)
                self._gates[r.name] = QualityGate(r.quality, r.shadow, gated)
                if ref not in r.candidates:  # what serves when the gate refuses the rest
                    self._candidates[r.name] = (*r.candidates, ref)
        self._evidence = evidence
        self._boost = boost
        self._boosted: set[str] = set()  # tasks whose shadow rate the gate raised
        self._task_configs = config.tasks
        self._task_by_prefix: dict[int, str] = {}
        self._capacity: Callable[[], CapacityView] = capacity or NoCapacity
        self._clock = clock
        self._output_avg: dict[str, float] = {}  # route → recent completion tokens
        self._ttft: dict[str, float] = {}  # model → recent streaming TTFT (s)
        # (provider, prefix) → last sent; prompt caches forget after their TTL, and so does this
        ttl = max((m.prompt_cache.ttl_s for m in config.models), default=0.0)
        self._prefix_seen = RecentKeys(prefix_memory, ttl)

    @property
    def model_names(self) -> list[str]:
        return [*self._targets, *self._routes]

    def is_route(self, name: str) -> bool:
        return name in self._routes

    def targets(self) -> list[Target]:
        return list(self._targets.values())

    @property
    def routes(self) -> list[RouteConfig]:
        return list(self._routes.values())

    def decide(self, req: ClientRequest, *, budget_degraded: bool = False) -> Decision:
        """The targets to try, in order; refuses a request nothing configured can serve.
        `budget_degraded`: the caller's team is past its soft budget, so a route with
        `degrade_max_usd_per_mtok` keeps only the candidates priced at or below it."""
        decision = self._decide(req, budget_degraded)
        if not decision.targets:
            raise InvalidRequest(
                f"No model behind `{req.model}` can serve this request ({decision.reason}).",
                param="model",
                code="no_eligible_model",
            )
        return decision

    def _decide(
        self, req: ClientRequest, budget_degraded: bool = False, explaining: bool = False
    ) -> Decision:
        pinned = self._pinned.get(req.model)
        if pinned is not None:
            if req.operation not in self._operations[req.model]:
                t = pinned.targets[0]
                raise UnsupportedEndpoint(
                    f"model `{t.model}` ({t.provider.kind} provider {t.provider.name}) does not "
                    f"serve /v1/{req.operation}",
                    param="model",
                )
            return pinned
        route = self._routes.get(req.model)
        if route is None:
            raise ModelNotFound(req.model, self.model_names)
        facts = request_facts(req, req.min_tier)
        cap = route.degrade_max_usd_per_mtok if budget_degraded else None
        price_cap = None if cap is None else Decimal(str(cap))
        slo = route.slo.ttft_p95_ms / 1000 if route.slo.ttft_p95_ms else None
        gate = self._gates.get(route.name)
        if gate is None or req.operation != "chat" or self._evidence is None:
            return rank(
                route.policy,
                route.name,
                self._views(route, facts, price_cap),
                slo,
                prefix_key=facts.prefix_key,
                prefix_tokens=facts.prefix_tokens,
            )
        task, evidence = self._task(req, facts), self._evidence
        views = self._views(route, facts, price_cap, lambda m: gate.judge(evidence, task, m))
        unproven, refused = self._gated(gate, views)
        to_reference = unproven is not None and not gate.explore
        decision = rank(
            route.policy,
            route.name,
            views,
            slo,
            prefix_key=facts.prefix_key,
            prefix_tokens=facts.prefix_tokens,
            first=gate.reference if to_reference else None,
            first_note=unproven.note if unproven is not None and to_reference else "",
        )
        if not explaining and self._boost is not None:
            chosen = decision.targets[0].model if decision.targets else None
            view = next((v for v in views if v.target.model == chosen), None)
            self._sample(gate, task, view, unproven, refused)
        return decision

    def _task(self, req: ClientRequest, facts: RequestFacts) -> str:
        """The request's task (quality/tasks.py), kept on the request for the shadow tap; a
        system prompt is hashed once, then remembered by the key the router already has."""
        if req.task:
            return req.task
        meta = req.body.get("metadata")
        named = meta.get("task") if isinstance(meta, dict) else None
        key = facts.prefix_key
        if isinstance(named, str) and named:
            task = named[:MAX_TASK_CHARS]
        elif key is not None and key in self._task_by_prefix:
            task = self._task_by_prefix[key]
        else:
            task = task_of(req, self._task_configs)
            if key is not None:
                if len(self._task_by_prefix) >= TASK_MEMORY:
                    self._task_by_prefix.clear()
                self._task_by_prefix[key] = task
        req.task = task
        return task

    def _gated(
        self, gate: QualityGate, views: list[CandidateView]
    ) -> tuple[Verdict | None, Verdict | None]:
        """The first unproven and the first refused of the candidates otherwise eligible."""
        unproven: Verdict | None = None
        refused: Verdict | None = None
        for v in views:
            verdict = v.quality
            if verdict is None or not v.fit:
                continue
            if not verdict.proven:
                unproven = unproven or verdict
            elif not verdict.serves:
                refused = refused or verdict
        return unproven, refused

    def _sample(
        self,
        gate: QualityGate,
        task: str,
        chosen: CandidateView | None,
        unproven: Verdict | None,
        refused: Verdict | None,
    ) -> None:
        """This request's shadow sampling (`Shadow.tap` reads it right after the decision):
        at `explore_rate` when the model that will answer is unproven, or when the reference
        answers in an unproven model's place (that model the challenger); at the route's rate
        with a refused model as the challenger when the reference or an ungated model answers,
        so that a model that improves can earn its way back; else as configured."""
        assert self._boost is not None
        verdict = chosen.quality if chosen is not None else None
        reference = chosen is not None and chosen.target.model == gate.reference
        if verdict is not None and not verdict.proven:
            self._boost(task, gate.config.explore_rate, None)
        elif reference and unproven is not None and not gate.explore:
            self._boost(task, gate.config.explore_rate, unproven.model)
        elif verdict is None and refused is not None and gate.sample_rate > 0:
            self._boost(task, gate.sample_rate, refused.model)
        elif task in self._boosted:
            self._boost(task, 0.0, None)
            self._boosted.discard(task)
            return
        else:
            return
        self._boosted.add(task)

    def _views(
        self,
        route: RouteConfig,
        facts: RequestFacts,
        price_cap: Decimal | None = None,
        judge: Callable[[str], Verdict | None] | None = None,
    ) -> list[CandidateView]:
        cap = self._capacity()
        now = self._clock()
        expected_out = facts.max_output_tokens or DEFAULT_OUTPUT_TOKENS
        if route.name in self._output_avg:
            expected_out = min(expected_out, round(self._output_avg[route.name]))
        views = []
        for name in self._candidates[route.name]:
            t = self._targets[name]
            model = self._models[name]
            local = t.provider.self_hosted
            headroom = cap.has_headroom(t.provider.name) if local else True
            cached = 0
            if (
                facts.prefix_key is not None
                and facts.prefix_tokens >= model.prompt_cache.min_tokens
            ):
                seen = self._prefix_seen.last_seen((t.provider.name, facts.prefix_key))
                if seen is not None and now - seen <= model.prompt_cache.ttl_s:
                    cached = facts.prefix_tokens
            usage = Usage(facts.prompt_tokens, expected_out, cached_prompt_tokens=cached)
            est = cost(usage, t.price).total_usd
            if local:
                est = routing_cost(est, route.local_cost_mode, headroom)
            replica = cap.pick(t.provider.name) if local else None
            ttft = (replica.predicted_ttft_s if replica else None) or self._ttft.get(name)
            ineligible = ineligibility(model, facts, self._operations[name]) or over_price_cap(
                t.price, price_cap
            )
            verdict = judge(name) if judge is not None else None
            views.append(
                CandidateView(
                    target=t,
                    local=local,
                    headroom=headroom,
                    expected_cost_usd=est,
                    predicted_ttft_s=ttft,
                    capacity_note=cap.describe(t.provider.name) if local else "",
                    ineligible=ineligible
                    or (verdict.note if verdict is not None and not verdict.serves else None),
                    quality=verdict,
                    fit=ineligible is None,
                )
            )
        return views

    def observe(
        self,
        route: str | None,
        target: Target | None,
        *,
        completion_tokens: int,
        ttft_s: float | None,
        prefix_key: int | None,
        ok: bool,
    ) -> None:
        """Learn from a finished request (called from the ledger writer, off the hot path)."""
        if not ok or target is None:
            return
        if route is not None:
            prev = self._output_avg.get(route)
            self._output_avg[route] = (
                completion_tokens if prev is None else prev + EWMA * (completion_tokens - prev)
            )
        if ttft_s is not None:
            prev = self._ttft.get(target.model)
            self._ttft[target.model] = ttft_s if prev is None else prev + EWMA * (ttft_s - prev)
        if prefix_key is not None:
            self._prefix_seen.touch((target.provider.name, prefix_key), self._clock())

    def explain(self, req: ClientRequest) -> dict[str, Any]:
        decision = self._decide(req, explaining=True)

        def view(v: CandidateView) -> dict[str, Any]:
            return {
                "model": v.target.model,
                "provider": v.target.provider.name,
                "self_hosted": v.local,
                "eligible": v.ineligible is None,
                "ineligible_because": v.ineligible,
                "headroom": v.headroom,
                "capacity": v.capacity_note or None,
                # plain decimals, never exponent notation ("0E-9")
                "expected_cost_usd": format(v.expected_cost_usd.quantize(Decimal("1e-9")), "f"),
                "predicted_ttft_ms": None
                if v.predicted_ttft_s is None
                else round(v.predicted_ttft_s * 1000, 1),
                "quality": None if v.quality is None else v.quality.to_json(),
            }

        return {
            "model": req.model,
            "route": decision.route,
            "task": req.task if decision.route in self._gates else None,
            "reason": decision.reason,
            "order": [t.model for t in decision.targets],
            "candidates": [view(v) for v in decision.views],
        }

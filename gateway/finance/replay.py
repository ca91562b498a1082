"""Recorded traffic replayed offline through another routing set-up, minute by minute — pure.

Each minute's requests (summed per name asked for, served model and tier: `Slice`s) are
ranked by the replayed route's own policy (`routing.policies.POLICIES`), every local pool
assumed to have headroom; a request that fits the pool ranked first goes there. A pool serves
at most `tokens_per_s × 60` tokens (prompt + output) a minute. When a minute asks more of a
pool, every request that ranked it first gets the same share of it (a fluid model: nothing
queues into the next minute) and the rest goes to its next candidate that is not a full pool;
with none left, it stays on the pool and is counted as over capacity. Latency, TTFT
predictions and concurrency limits are not replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import groupby

from gateway.config import ModelConfig
from gateway.core import ENDPOINTS, Operation, Target, Usage
from gateway.finance.reprice import slice_cost
from gateway.finance.whatif_lines import ZERO, Groups
from gateway.finance.whatif_query import Slice
from gateway.pricing.cost import cost
from gateway.pricing.gpu import CostMode, routing_cost
from gateway.pricing.tiers import TieredPrice, bucket_prompt
from gateway.routing.candidates import RequestFacts, ineligibility
from gateway.routing.policies import POLICIES, CandidateView

SIXTY = Decimal(60)


@dataclass(frozen=True, slots=True)
class Candidate:
    target: Target
    price: TieredPrice
    model: ModelConfig
    operations: frozenset[Operation]
    pool: str | None  # the self-hosted provider's name, None for an API


@dataclass(frozen=True, slots=True)
class Plan:
    """What the replayed config does with one name a client sends: a route, or a pinned model
    (policy `ordered` over that one candidate)."""

    name: str
    policy: str
    candidates: tuple[Candidate, ...]
    slo_s: float | None = None
    cost_mode: CostMode = "marginal"


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    gpus: int
    tokens_per_s: Decimal  # the whole pool's, for `gpus` GPUs
    hourly_usd: Decimal  # one GPU's
    capacity_source: str  # "calibration <run id>" or "config"

    @property
    def per_minute(self) -> Decimal:
        return self.tokens_per_s * SIXTY


@dataclass(slots=True)
class PoolUse:
    demand_tokens: Decimal = ZERO  # asked of it, spilled from other pools included
    fitted_tokens: Decimal = ZERO
    spilled_tokens: Decimal = ZERO  # sent to another candidate
    over_tokens: Decimal = ZERO  # no other candidate: served beyond capacity
    minutes: int = 0  # minutes with any demand
    minutes_full: int = 0  # minutes whose demand exceeded capacity
    peak_minute_tokens: Decimal = ZERO


@dataclass(slots=True)
class Spill:
    requests: Decimal = ZERO
    tokens: Decimal = ZERO
    usd: Decimal = ZERO


@dataclass(slots=True)
class Replay:
    groups: Groups
    pools: dict[str, PoolUse] = field(default_factory=dict)
    spills: dict[str, Spill] = field(default_factory=dict)  # destination model → spilled
    kept: dict[str, int] = field(default_factory=dict)  # unknown name → requests kept as is
    api_whatif_usd: Decimal = ZERO  # counterfactual cost of what went to APIs


@dataclass(slots=True)
class _Item:
    s: Slice
    order: list[Candidate]
    frac: Decimal = Decimal(1)
    pos: int = 0
    spilled: bool = False


class Replayer:
    def __init__(
        self,
        plans: Mapping[str, Plan],
        pools: Mapping[str, Pool],
        groups: Groups,
        floors: tuple[int, ...],
        name_of: Callable[[Slice], str],
        output_ratio: Decimal,
    ) -> None:
        self.plans, self.pool_cfg, self.floors = plans, pools, floors
        self.name_of, self.ratio = name_of, output_ratio
        self.out = Replay(groups, {p: PoolUse() for p in pools})

    def run(self, slices: Iterable[Slice]) -> Replay:
        ordered = sorted(slices, key=lambda s: (s.minute is None, s.minute))
        for _minute, in_minute in groupby(ordered, key=lambda s: s.minute):
            self._minute(list(in_minute))
        return self.out

    def _ratio(self, s: Slice, c: Candidate) -> Decimal:
        return Decimal(1) if c.target.model == self.name_of(s) else self.ratio

    def _tokens(self, s: Slice, c: Candidate) -> Decimal:
        return s.tokens.prompt + s.tokens.completion * self._ratio(s, c)

    def _order(self, plan: Plan, s: Slice) -> list[Candidate]:
        n = max(1, s.tokens.requests)
        prompt = bucket_prompt(s.bucket, self.floors)
        avg = Usage(
            s.tokens.prompt // n,
            s.tokens.completion // n,
            s.tokens.cached // n,
            s.tokens.cache_write // n,
        )
        op = ENDPOINTS.get(s.endpoint, ENDPOINTS["chat"])[0]  # type: ignore[call-overload]
        facts = RequestFacts(operation=op, prompt_tokens=s.max_prompt, max_output_tokens=None)
        if len(plan.candidates) == 1:  # a pinned model: nothing to rank
            (c,) = plan.candidates
            return [] if ineligibility(c.model, facts, c.operations) else [c]
        views = []
        for c in plan.candidates:
            est = cost(avg, c.price.for_prompt(prompt)).total_usd
            if c.pool is not None:
                est = routing_cost(est, plan.cost_mode, True)
            views.append(
                CandidateView(
                    target=c.target,
                    local=c.pool is not None,
                    headroom=True,
                    expected_cost_usd=est,
                    predicted_ttft_s=None,
                    ineligible=ineligibility(c.model, facts, c.operations),
                )
            )
        by_model = {c.target.model: c for c in plan.candidates}
        # the policy's own order, as `rank` gets it, without the reason a replay never shows
        eligible = [v for v in views if v.ineligible is None]
        return [by_model[v.target.model] for v in POLICIES[plan.policy](eligible, plan.slo_s)]

    def _minute(self, slices: list[Slice]) -> None:
        items: list[_Item] = []
        for s in slices:
            plan = self.plans.get(s.requested or "")
            order = self._order(plan, s) if plan is not None else []
            if not order:  # a name the replayed config does not serve: kept as recorded
                name = self.name_of(s)
                key = self.out.groups.key(s, name, s.provider)
                self.out.groups.actual(key, s.tokens.requests, s.actual_usd)
                self.out.groups.whatif(key, s.tokens.requests, s.actual_usd)
                label = s.requested or "(none)"
                self.out.kept[label] = self.out.kept.get(label, 0) + s.tokens.requests
                if s.provider not in self.pool_cfg:
                    self.out.api_whatif_usd += s.actual_usd
                continue
            name = self.name_of(s)
            self.out.groups.actual(
                self.out.groups.key(s, name, s.provider), s.tokens.requests, s.actual_usd
            )
            items.append(_Item(s, order))
        remaining = {p: cfg.per_minute for p, cfg in self.pool_cfg.items()}
        asked: dict[str, Decimal] = {}
        while items:
            items = self._round(items, remaining, asked)
        for p, d in asked.items():
            use = self.out.pools[p]
            use.minutes += 1
            use.demand_tokens += d
            use.peak_minute_tokens = max(use.peak_minute_tokens, d)
            if d > self.pool_cfg[p].per_minute:
                use.minutes_full += 1

    def _round(
        self, items: list[_Item], remaining: dict[str, Decimal], asked: dict[str, Decimal]
    ) -> list[_Item]:
        demand: dict[str, Decimal] = {}
        for it in items:
            c = it.order[it.pos]
            if c.pool is not None:
                demand[c.pool] = demand.get(c.pool, ZERO) + it.frac * self._tokens(it.s, c)
        share = {}
        for p, d in demand.items():
            share[p] = min(Decimal(1), remaining[p] / d) if d else Decimal(1)
            remaining[p] = max(ZERO, remaining[p] - d)
            asked[p] = asked.get(p, ZERO) + d
        nxt: list[_Item] = []
        for it in items:
            c = it.order[it.pos]
            if c.pool is None:
                self._place(it, c, it.frac)
                continue
            fit = it.frac * share[c.pool]
            if fit:
                self._place(it, c, fit)
                it.frac -= fit
            if it.frac == 0:
                continue
            rest = it.frac * self._tokens(it.s, c)
            if self._advance(it, remaining):
                it.spilled = True
                self.out.pools[c.pool].spilled_tokens += rest
                nxt.append(it)
            else:  # nowhere else to go: the pool serves it late
                self.out.pools[c.pool].over_tokens += rest
                self._place(it, c, it.frac, over=True)
        return nxt

    @staticmethod
    def _advance(it: _Item, remaining: dict[str, Decimal]) -> bool:
        """Move `it` to its next candidate that is not a full pool; False when none is left."""
        for pos in range(it.pos + 1, len(it.order)):
            c = it.order[pos]
            if c.pool is None or remaining.get(c.pool, ZERO) > 0:
                it.pos = pos
                return True
        return False

    def _place(self, it: _Item, c: Candidate, frac: Decimal, over: bool = False) -> None:
        s = it.s
        usd = frac * slice_cost(s, c.price, self.floors, self._ratio(s, c))
        key = self.out.groups.key(s, c.target.model, c.target.provider.name)
        self.out.groups.whatif(key, frac * s.tokens.requests, usd)
        if c.pool is None:
            self.out.api_whatif_usd += usd
            if it.spilled:
                spill = self.out.spills.setdefault(c.target.model, Spill())
                spill.requests += frac * s.tokens.requests
                spill.tokens += frac * self._tokens(s, c)
                spill.usd += usd
        elif not over:
            self.out.pools[c.pool].fitted_tokens += frac * self._tokens(s, c)

"""Routing policies: candidates (with their estimates) in, an ordered `Decision` out — pure.

Every policy returns all eligible candidates in the order they should be tried, so the executor
can fall back down the list, and a one-line reason naming what was chosen and why.

    ordered      the configured order
    cost         lowest expected cost first; candidates predicted to miss the TTFT SLO go last
    latency      lowest predicted time to first token first
    local-first  self-hosted candidates with headroom first (a GPU already paid for), then the
                 cheapest APIs within the SLO; a full self-hosted pool is the last resort
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from gateway.core import Target
from gateway.routing.gate import Verdict


@dataclass(frozen=True, slots=True)
class CandidateView:
    target: Target
    local: bool  # self-hosted (a `gpu:` provider)
    headroom: bool  # capacity left (always True for hosted APIs)
    expected_cost_usd: Decimal  # in the route's cost mode
    predicted_ttft_s: float | None  # None until something was observed
    capacity_note: str = ""  # e.g. "running=3 waiting=0"
    ineligible: str | None = None  # why it cannot serve this request
    quality: Verdict | None = None  # the quality gate's, on a gated route (routing/gate.py)
    fit: bool = True  # eligible but for the quality gate

    def within(self, slo_s: float | None) -> bool:
        return slo_s is None or self.predicted_ttft_s is None or self.predicted_ttft_s <= slo_s


@dataclass(frozen=True, slots=True)
class Decision:
    targets: tuple[Target, ...]
    reason: str
    route: str | None = None
    views: tuple[CandidateView, ...] = ()
    prefix_key: int | None = None
    prefix_tokens: int = 0


def _by_cost(views: Sequence[CandidateView], slo_s: float | None) -> list[CandidateView]:
    return sorted(views, key=lambda v: (not v.within(slo_s), v.expected_cost_usd))


def ordered(views: Sequence[CandidateView], slo_s: float | None) -> list[CandidateView]:
    return list(views)


def cost(views: Sequence[CandidateView], slo_s: float | None) -> list[CandidateView]:
    return _by_cost(views, slo_s)


def latency(views: Sequence[CandidateView], slo_s: float | None) -> list[CandidateView]:
    return sorted(views, key=lambda v: v.predicted_ttft_s or 0.0)


def local_first(views: Sequence[CandidateView], slo_s: float | None) -> list[CandidateView]:
    ready = [v for v in views if v.local and v.headroom]
    full = [v for v in views if v.local and not v.headroom]
    apis = _by_cost([v for v in views if not v.local], slo_s)
    return ready + apis + full


POLICIES: dict[str, Callable[[Sequence[CandidateView], float | None], list[CandidateView]]] = {
    "ordered": ordered,
    "cost": cost,
    "latency": latency,
    "local-first": local_first,
}


def _describe(v: CandidateView) -> str:
    note = f" {v.capacity_note}" if v.capacity_note else ""
    return f"{v.target.model} ({v.target.provider.name}{note}) est ${v.expected_cost_usd:.6f}"


def rank(
    policy: str,
    route: str,
    views: Sequence[CandidateView],
    slo_s: float | None,
    *,
    prefix_key: int | None = None,
    prefix_tokens: int = 0,
    first: str | None = None,
    first_note: str = "",
) -> Decision:
    """`first`: a model to try before the policy's order, when eligible (the quality gate's
    reference), said in the reason with `first_note`."""
    eligible = [v for v in views if v.ineligible is None]
    order = POLICIES[policy](eligible, slo_s)
    forced = first is not None and any(v.target.model == first for v in order)
    if forced:
        order.sort(key=lambda v: v.target.model != first)
    skipped = [f"{v.target.model} ({v.ineligible})" for v in views if v.ineligible]
    if order:
        first_view, rest = order[0], order[1:]
        why = "" if first_view.headroom else " (full: nothing else eligible)"
        reason = f"{policy}: {_describe(first_view)} → chosen{why}"
        note = first_note if forced else first_view.quality.note if first_view.quality else ""
        if note:
            reason += f" ({note})"
        if rest:
            reason += "; vs " + ", ".join(_describe(v) for v in rest)
    else:
        reason = f"{policy}: no eligible candidate"
    if skipped:
        reason += "; ineligible: " + ", ".join(skipped)
    return Decision(
        tuple(v.target for v in order), reason, route, tuple(views), prefix_key, prefix_tokens
    )

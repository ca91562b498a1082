"""The quality gate: may a candidate cheaper than the route's reference serve this task? — O(1).

A route with `quality:` (and `shadow:`, whose reference is the yardstick) gates every candidate
whose price is below the reference's (input + output per token; a self-hosted model is
cheaper on a route in `marginal` cost mode, else compared at its GPU's amortised price). For
a chat request of task T, a gated candidate M:

- has evidence — at least `min_samples` compared pairs (T, M) — and serves only if the lower
  bound of its agreement's 95% interval is at or above `min_agreement`;
- has not: `unknown: explore` lets it serve while T is shadowed at `explore_rate` or more
  (`Shadow.boost`); `unknown: reference` sends T to the reference instead, with M named as the
  challenger the shadow call goes to, until the pairs are in.

Candidates as dear as the reference or dearer are not gated, and nor is the reference. Each
verdict is one `Evidence.agreement` dict lookup and a comparison: no I/O, nothing that grows
with the request. Evidence changes only off the request path (a shadow pair compared), so the
gate flips as soon as the pair that crosses the bar is in, in either direction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from gateway.config import QualityGateConfig, ShadowConfig
from gateway.core import Price
from gateway.quality.evidence import Agreement

Boost = Callable[[str, float, str | None], None]  # Shadow.boost(task, rate, challenger)


class EvidenceView(Protocol):
    """What the gate reads (gateway.quality.evidence.Evidence)."""

    def agreement(self, task: str, model: str) -> Agreement | None: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    task: str
    model: str
    serves: bool
    proven: bool  # at least min_samples pairs: the verdict rests on the interval
    bar: float
    min_samples: int
    agreement: Agreement | None
    # unproven: the task's raised shadow rate while it serves (explore), or None when the
    # reference serves instead
    explore_rate: float | None = None
    reference: str = ""

    @property
    def note(self) -> str:
        """What decisions and `route_reason` say; made only when said (it formats floats)."""
        a = self.agreement
        if self.proven and a is not None:
            return f"quality: {a.describe()} {'≥' if self.serves else '<'} {self.bar:g}"
        n = 0 if a is None else a.n
        head = f"quality: {self.task} {self.model}"
        if self.explore_rate is not None:
            rate = f"shadowed at ≥ {self.explore_rate:g}"
            return f"{head} exploring, n={n} < {self.min_samples} ({rate})"
        return f"{head} unproven, n={n} < {self.min_samples}: to {self.reference}"

    def to_json(self) -> dict[str, object]:
        a = self.agreement
        return {
            "task": self.task,
            "serves": self.serves,
            "proven": self.proven,
            "min_agreement": self.bar,
            "min_samples": self.min_samples,
            "reference": None if a is None else a.reference,
            "n": 0 if a is None else a.n,
            "agreement": None if a is None else round(a.mean, 4),
            "low": None if a is None else round(a.low, 4),
            "high": None if a is None else round(a.high, 4),
            "note": self.note,
        }


def _blended(price: Price) -> Decimal:
    return price.input + price.output


def cheaper_than(
    reference: str,
    candidates: Iterable[str],
    prices: Mapping[str, Price],
    free: frozenset[str] = frozenset(),
) -> frozenset[str]:
    """The candidates the gate applies to: priced below the reference as the route prices
    them — `free` are self-hosted models on a route in marginal cost mode (a GPU already
    paid for), cheaper than any API whatever their amortised price."""
    ref = _blended(prices[reference])
    return frozenset(
        c for c in candidates if c != reference and (c in free or _blended(prices[c]) < ref)
    )


class QualityGate:
    def __init__(
        self, config: QualityGateConfig, shadow: ShadowConfig, gated: frozenset[str]
    ) -> None:
        self.config = config
        self.reference = shadow.reference
        self.sample_rate = shadow.sample_rate
        self.gated = gated
        self.explore = config.unknown == "explore"
        self._bars = {t: config.bar(t) for t in config.tasks}
        self._default = (config.min_agreement, config.min_samples)

    def judge(self, evidence: EvidenceView, task: str, model: str) -> Verdict | None:
        """None when `model` is not gated on this route."""
        if model not in self.gated:
            return None
        bar, need = self._bars.get(task, self._default)
        a = evidence.agreement(task, model)
        if a is not None and a.n >= need:
            return Verdict(task, model, a.low >= bar, True, bar, need, a)
        rate = self.config.explore_rate if self.explore else None
        return Verdict(task, model, self.explore, False, bar, need, a, rate, self.reference)

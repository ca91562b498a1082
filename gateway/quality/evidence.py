"""How well each model agrees with a reference model, per task: in memory, read on the hot path.

`Evidence.agreement(task, model)` is one dict lookup: the router's quality gate calls it for
every candidate of every request. `add` (a shadow pair was compared) updates the tallies and
the interval off the request path; at start the tallies are filled from the stored pairs
(`quality/store.py` `load_evidence`). A pair is kept under (task, model, reference); what
`agreement` returns for (task, model) is the reference with the most samples.

Pass/fail pairs (label, tool_call, a judge) are counted and get a Wilson interval; scores
(text, json_fields) keep the newest `SCORE_WINDOW` values for a bootstrap interval, recomputed
on every pair up to `EXACT_UP_TO` samples and then each time the count grows by 1%, which
bounds the bootstrap's cost to a few milliseconds per hundred pairs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.quality.intervals import bootstrap, wilson

SCORE_WINDOW = 10_000
EXACT_UP_TO = 200


@dataclass(frozen=True)
class Agreement:
    task: str
    model: str
    reference: str
    n: int  # the samples the estimate is made from
    mean: float  # the share of pairs that agree, or the mean score
    low: float  # 95% interval
    high: float

    def describe(self) -> str:
        """As decisions and reports name it: `agreement 0.962 [0.951, 0.972] n=812`."""
        return (
            f"{self.task} {self.model} vs {self.reference} agreement {self.mean:.3f} "
            f"[{self.low:.3f}, {self.high:.3f}] n={self.n}"
        )


@dataclass
class _Tally:
    task: str
    model: str
    reference: str
    n: int = 0
    passes: int = 0
    pass_fail: bool = True  # every pair had a verdict: Wilson; else a bootstrap of scores
    scores: deque[float] = field(default_factory=lambda: deque(maxlen=SCORE_WINDOW))
    computed_at: int = 0
    current: Agreement | None = None

    def add(self, score: float, passed: bool | None) -> None:
        self.n += 1
        if passed is None:
            self.pass_fail = False
        else:
            self.passes += passed
        self.scores.append(float(passed) if passed is not None else min(1.0, max(0.0, score)))

    def agreement(self) -> Agreement:
        if self.pass_fail:
            low, high = wilson(self.passes, self.n)
            return Agreement(
                self.task, self.model, self.reference, self.n, self.passes / self.n, low, high
            )
        n = len(self.scores)
        if self.current is None or self.n <= EXACT_UP_TO or self.n - self.computed_at >= n // 100:
            low, high = bootstrap(list(self.scores))
            self.computed_at = self.n
        else:  # the interval of a few pairs ago: moves by far less than its width
            low, high = self.current.low, self.current.high
        mean = sum(self.scores) / n
        return Agreement(self.task, self.model, self.reference, n, mean, low, high)


class Evidence:
    def __init__(self) -> None:
        self._tallies: dict[tuple[str, str, str], _Tally] = {}
        self._best: dict[tuple[str, str], Agreement] = {}

    def agreement(self, task: str, model: str) -> Agreement | None:
        return self._best.get((task, model))

    def add(
        self, task: str, model: str, reference: str, score: float, passed: bool | None
    ) -> Agreement:
        key = (task, model, reference)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally(task, model, reference)
        tally.add(score, passed)
        tally.current = tally.agreement()
        best = self._best.get((task, model))
        if best is None or best.reference == reference or tally.current.n > best.n:
            self._best[(task, model)] = tally.current
        return tally.current

    def load(self, pairs: Iterable[tuple[str, str, str, float, bool | None]]) -> None:
        """Stored pairs (task, model, reference, score, passed), oldest first: each interval is
        computed once, at the end, not once a pair."""
        touched: set[tuple[str, str, str]] = set()
        for task, model, reference, score, passed in pairs:
            key = (task, model, reference)
            tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = _Tally(task, model, reference)
            tally.add(score, passed)
            touched.add(key)
        for key in touched:
            tally = self._tallies[key]
            tally.current = None
            tally.current = tally.agreement()
        for tally in self._tallies.values():
            a = tally.current
            best = self._best.get((a.task, a.model)) if a is not None else None
            if a is not None and (best is None or a.n > best.n):
                self._best[(a.task, a.model)] = a

    def all(self) -> list[Agreement]:
        """Every (task, model, reference) tally, sorted by task then model."""
        return sorted(
            (t.current for t in self._tallies.values() if t.current is not None),
            key=lambda a: (a.task, a.model, a.reference),
        )

"""Actual against counterfactual, per group and in total: the rows a what-if prints — pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from gateway.finance.whatif_query import Slice

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Line:
    key: tuple[str, ...]  # one value per group key, in `--group-by` order
    requests: int  # as recorded
    actual_usd: Decimal  # the ledger's cost_usd
    whatif_requests: Decimal  # where the counterfactual put them (fractional in a replay)
    whatif_usd: Decimal

    @property
    def delta_usd(self) -> Decimal:
        return self.whatif_usd - self.actual_usd

    @property
    def delta_pct(self) -> Decimal | None:
        if self.actual_usd == 0:
            return None
        return self.delta_usd * 100 / self.actual_usd


@dataclass(slots=True)
class _Tally:
    requests: int = 0
    actual: Decimal = ZERO
    whatif_requests: Decimal = ZERO
    whatif: Decimal = ZERO


@dataclass(slots=True)
class Groups:
    """Sums actual and counterfactual money under each group's key."""

    group_by: tuple[str, ...]
    _tallies: dict[tuple[str, ...], _Tally] = field(default_factory=dict)

    def key(self, s: Slice, model: str, provider: str) -> tuple[str, ...]:
        known = dict(s.keys)
        known["model"], known["provider"] = model, provider
        return tuple(known[k] for k in self.group_by)

    def actual(self, key: tuple[str, ...], requests: int, usd: Decimal) -> None:
        tally = self._tallies.setdefault(key, _Tally())
        tally.requests += requests
        tally.actual += usd

    def whatif(self, key: tuple[str, ...], requests: Decimal | int, usd: Decimal) -> None:
        tally = self._tallies.setdefault(key, _Tally())
        tally.whatif_requests += requests
        tally.whatif += usd

    def lines(self) -> list[Line]:
        return [
            Line(k, v.requests, v.actual, v.whatif_requests, v.whatif)
            for k, v in sorted(self._tallies.items())
        ]


def total(lines: Sequence[Line], width: int) -> Line:
    return Line(
        ("total",) + ("",) * max(0, width - 1),
        sum((x.requests for x in lines), 0),
        sum((x.actual_usd for x in lines), ZERO),
        sum((x.whatif_requests for x in lines), ZERO),
        sum((x.whatif_usd for x in lines), ZERO),
    )

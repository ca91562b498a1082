"""What shadow calls may still spend today: per route (`shadow.max_usd_per_day`) and in all
(`evidence.max_usd_per_day`), by UTC day — pure bookkeeping, no I/O.

A call is let through only if what was spent, plus what calls in flight are expected to cost,
plus its own expected cost stays within both caps; when it ends its expectation is replaced by
what it cost. Expectations are the primary's usage at the reference's price, so the caps can
be passed by at most the error of the calls in flight (`max_concurrency` per route).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from gateway.core import ZERO


def utc_day(ts: float) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


@dataclass
class DailySpend:
    total_cap: Decimal | None = None
    day: date | None = None
    spent: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    expected: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def _roll(self, today: date) -> None:
        if self.day != today:  # a new day: what calls still in flight expect carries over
            self.day = today
            self.spent.clear()

    def restore(self, today: date, spent: Mapping[str, Decimal]) -> None:
        """Today's spend as the ledger has it (a restart keeps counting from there)."""
        self._roll(today)
        for route, usd in spent.items():
            self.spent[route] += usd

    def refusal(self, today: date, route: str, cap: Decimal, estimate: Decimal) -> str | None:
        """None when the call fits both caps, else which one it would pass."""
        self._roll(today)
        if self.spent[route] + self.expected[route] + estimate > cap or cap <= ZERO:
            return "dropped_cap"
        if self.total_cap is not None:
            total = sum(self.spent.values(), ZERO) + sum(self.expected.values(), ZERO)
            if total + estimate > self.total_cap:
                return "dropped_budget"
        return None

    def reserve(self, route: str, estimate: Decimal) -> None:
        self.expected[route] += estimate

    def settle(self, today: date, route: str, estimate: Decimal, actual: Decimal) -> None:
        self.expected[route] -= estimate
        self._roll(today)
        self.spent[route] += actual

    def spent_today(self, route: str) -> Decimal:
        return self.spent[route]

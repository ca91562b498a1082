"""What one request is checked against, and what the counters' answers mean — pure.

A request is checked in two scopes, its key's ("k:<id>") and its team's ("t:<name>"), each
with its own limits. Before the call, `admit_op` reserves the request's maximum cost: its
estimated prompt tokens at the input price plus its maximum output tokens at the output price,
for the dearest target the decision may try. When it ends, `settle_op` releases the reservation
and charges the actual cost and completion tokens. Money is integer nanodollars; budget
windows are the UTC day and month of the request's arrival (the ledger's `created_at`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import NamedTuple

from gateway.core import ClientRequest, Price, Target
from gateway.governance.counters import Op, Reply
from gateway.governance.records import ApiKey, Limits, Team

NANO = Decimal(1_000_000_000)
NONE = -1  # no limit, in an operation
DEFAULT_MAX_OUTPUT = 4096  # a model without config: ModelConfig.default_max_tokens' default


def nano(usd: Decimal) -> int:
    return int((usd * NANO).to_integral_value(ROUND_CEILING))


def usd(nanodollars: int) -> Decimal:
    return Decimal(nanodollars) / NANO


@dataclass(frozen=True, slots=True)
class Window:
    """The UTC day and month of an instant, as the counters number them."""

    day: int  # days since the epoch
    month: int  # year * 12 + month - 1
    day_ends: datetime
    month_ends: datetime

    @classmethod
    def at(cls, ts: float) -> Window:
        t = datetime.fromtimestamp(ts, UTC)
        day_start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        month_start = day_start.replace(day=1)
        next_month = (month_start + timedelta(days=32)).replace(day=1)
        return cls(
            int(ts // 86_400),
            t.year * 12 + t.month - 1,
            day_start + timedelta(days=1),
            next_month,
        )

    @property
    def day_starts(self) -> datetime:
        return self.day_ends - timedelta(days=1)

    @property
    def month_starts(self) -> datetime:
        return self.day_starts.replace(day=1)

    def ends(self, name: str) -> datetime:
        return self.day_ends if name == "day" else self.month_ends


class Windows:
    """`Window.at` for request timestamps, computed once a day."""

    __slots__ = ("_end", "_start", "_window")

    def __init__(self) -> None:
        self._window: Window | None = None
        self._start = self._end = 0.0

    def at(self, ts: float) -> Window:
        if not self._start <= ts < self._end or self._window is None:
            self._window = Window.at(ts)
            self._end = self._window.day_ends.timestamp()
            self._start = self._end - 86_400
        return self._window


@dataclass(frozen=True, slots=True)
class Scope:
    """One of a request's two scopes, with the names people read in messages and its limits
    as the counters take them (-1: none; budgets in nanodollars)."""

    id: str  # "k:<key id>" / "t:<team>"
    kind: str  # "key" / "team"
    name: str
    limits: Limits
    rpm: int
    tpm: int
    day_nd: int
    month_nd: int

    @classmethod
    def of(cls, id: str, kind: str, name: str, lim: Limits) -> Scope:
        return cls(
            id,
            kind,
            name,
            lim,
            NONE if lim.rpm is None else lim.rpm,
            NONE if lim.tpm is None else lim.tpm,
            NONE if lim.budget_usd_day is None else nano(lim.budget_usd_day),
            NONE if lim.budget_usd_month is None else nano(lim.budget_usd_month),
        )

    @property
    def entry(self) -> tuple[str, int, int, int, int]:
        return (self.id, self.rpm, self.tpm, self.day_nd, self.month_nd)


def key_scope(key_id: str) -> str:
    return "k:" + key_id


def team_scope(team: str) -> str:
    return "t:" + team


def scopes_of(key: ApiKey, team: Team | None) -> tuple[Scope, ...]:
    k = Scope.of(key_scope(key.id), "key", key.id, key.limits)
    t = Scope.of(team_scope(key.team), "team", key.team, team.limits if team else Limits())
    return (k, t)


def max_output_tokens(req: ClientRequest, target: Target) -> int:
    if req.operation == "embeddings":
        return 0
    body = req.body
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(asked, int) and asked > 0:
        return asked
    return target.config.default_max_tokens if target.config else DEFAULT_MAX_OUTPUT


def max_cost(req: ClientRequest, targets: Sequence[Target], prompt_tokens: int) -> int:
    """The most the request can cost at any target it may be sent to, in nanodollars
    (rounded up: a reservation is an upper bound)."""
    worst = 0.0
    for t in targets:
        rates = _NANO_RATES.get(t.price)
        if rates is None:
            nano_in, nano_out = float(t.price.input * NANO), float(t.price.output * NANO)
            rates = _NANO_RATES[t.price] = (nano_in, nano_out)
        worst = max(worst, prompt_tokens * rates[0] + max_output_tokens(req, t) * rates[1])
    return math.ceil(worst * (1 + 1e-12))


# a price's USD per token as nanodollars per token; prices are few and immutable
_NANO_RATES: dict[Price, tuple[float, float]] = {}


def admit_op(
    rid: str,
    scopes: Sequence[Scope],
    prompt_tokens: int,
    reserve: int,
    window: Window,
    ttl_ms: int,
) -> Op:
    return [
        "a",
        rid,
        prompt_tokens,
        reserve,
        window.day,
        window.month,
        ttl_ms,
        scopes[0].id,  # the key's scope: the one a revocation marks
        [s.entry for s in scopes],
    ]


def settle_op(
    rids: list[str], costs: list[int], tokens: list[int], day: int, month: int, scopes: list[str]
) -> Op:
    """Requests of one key (same scopes) in one window that ended: released and charged."""
    return ["s", rids, costs, tokens, day, month, scopes]


def seed_op(scope: str, window: Window, day_usd: Decimal, month_usd: Decimal) -> Op:
    return ["seed", scope, window.day, nano(day_usd), window.month, nano(month_usd)]


def revoke_op(key_id: str) -> Op:
    return ["x", key_scope(key_id)]


# --- answers ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # revoked | rpm | tpm | day | month
    scope: Scope
    used: int
    retry_ms: int  # -1: not by waiting within the rate window
    now_ms: int


class Usage(NamedTuple):  # made for every request: a tuple, not a frozen dataclass
    """A scope's counters right after the request was admitted."""

    scope: Scope
    requests: int
    tokens: int
    day_nd: int
    month_nd: int
    reserved_nd: int


class Admitted(NamedTuple):
    now_ms: int
    usage: tuple[Usage, ...]


def read_admit(reply: Reply, scopes: Sequence[Scope]) -> Admitted | Refusal:
    if reply[0] == 1:
        return Admitted(
            reply[1], tuple(Usage(s, *v) for s, v in zip(scopes, reply[2], strict=True))
        )
    _, now, reason, index, used, retry = reply
    return Refusal(reason, scopes[index], used, retry, now)


def duration(ms: float) -> str:
    """OpenAI's reset format: "20ms", "1.5s", "6m0s"."""
    if ms < 1000:
        return f"{max(math.ceil(ms), 0)}ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.3g}s"
    m, rest = divmod(s, 60)
    return f"{int(m)}m{rest:.3g}s"

"""The counters' semantics — rate windows, reservations, budgets, revocation — on both
implementations: in process (`LocalCounters`) and governor.lua on the machine's Redis, fed
the same operations at the same (given) times."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from gateway.governance.counters import LocalCounters, Op, Reply
from gateway.governance.redis_counters import RedisCounters
from tests.conftest import REDIS_URL

T0 = 1_800_000_000_000  # ms, on a second boundary
DAY, MONTH = T0 // 86_400_000, 24_000
TTL = 30_000
NONE = -1


class RedisSync:
    """RedisCounters driven synchronously, on its own event loop (tests only)."""

    def __init__(self, prefix: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.counters = RedisCounters(REDIS_URL, prefix, 2.0)

    def run(self, ops: Sequence[Op], now_ms: int | None = None) -> list[Reply]:
        return self.loop.run_until_complete(self.counters.run(ops, now_ms))

    def close(self) -> None:
        self.loop.run_until_complete(self.counters.aclose())
        self.loop.close()


@pytest.fixture(params=["local", "redis"])
def counters(request: pytest.FixtureRequest, redis_prefix: str) -> Iterator[Any]:
    if request.param == "local":
        yield LocalCounters()
        return
    r = RedisSync(redis_prefix)
    yield r
    r.close()


def admit(
    rid: str,
    *,
    key: list[Any] | None = None,
    team: list[Any] | None = None,
    pt: int = 0,
    reserve: int = 0,
    day: int = DAY,
) -> Op:
    scopes = [key or ["k:a", NONE, NONE, NONE, NONE], team or ["t:x", NONE, NONE, NONE, NONE]]
    return ["a", rid, pt, reserve, day, MONTH, TTL, "k:a", scopes]


def settle(rid: str, cost: int, ct: int = 0, day: int = DAY) -> Op:
    return ["s", [rid], [cost], [ct], day, MONTH, ["k:a", "t:x"]]


def one(c: Any, op: Op, now: int) -> Reply:
    return c.run([op], now)[0]  # type: ignore[no-any-return]


def test_requests_per_minute_hold_in_every_60_s_window(counters: Any) -> None:
    rpm = ["k:a", 3, NONE, NONE, NONE]
    times = [T0 + 100, T0 + 200, T0 + 30_500]
    for i, t in enumerate(times):
        assert one(counters, admit(f"r{i}", key=rpm), t)[0] == 1
    refused = one(counters, admit("r3", key=rpm), T0 + 59_900)
    # refused, with the wait until the first two requests' second has left the window
    assert refused[:5] == [0, T0 + 59_900, "rpm", 0, 3]
    assert refused[5] == (T0 // 1000 + 61) * 1000 - (T0 + 59_900)
    assert one(counters, admit("r4", key=rpm), T0 + 60_500)[0] == 0  # still inside 60 s
    ok = one(counters, admit("r5", key=rpm), T0 + 61_000)  # the first second expired
    assert ok[0] == 1 and ok[2][0][0] == 2  # the 30.5 s request and this one
    assert one(counters, admit("r6", key=rpm), T0 + 61_001)[0] == 1
    assert one(counters, admit("r7", key=rpm), T0 + 61_002)[0] == 0


def test_the_team_limit_applies_across_its_keys(counters: Any) -> None:
    team = ["t:x", 2, NONE, NONE, NONE]
    a = ["k:a", NONE, NONE, NONE, NONE]
    b = ["k:b", NONE, NONE, NONE, NONE]
    assert one(counters, admit("1", key=a, team=team), T0)[0] == 1
    assert one(counters, admit("2", key=b, team=team), T0)[0] == 1
    refused = one(counters, admit("3", key=a, team=team), T0 + 1)
    assert refused[2:4] == ["rpm", 1]  # the team's scope (index 1) refused it


def test_tokens_per_minute_count_prompt_first_and_completion_after(counters: Any) -> None:
    tpm = ["k:a", NONE, 100, NONE, NONE]
    assert one(counters, admit("1", key=tpm, pt=40), T0)[2][0][1] == 40
    counters.run([settle("1", 0, ct=50)], T0 + 10)  # 90 counted now
    refused = one(counters, admit("2", key=tpm, pt=20), T0 + 20)
    assert refused[2:5] == ["tpm", 0, 90]
    assert refused[5] == 61_000 - 20  # when the first second's tokens leave the window
    assert one(counters, admit("3", key=tpm, pt=10), T0 + 30)[0] == 1
    too_big = one(counters, admit("4", key=tpm, pt=500), T0 + 40)
    assert too_big[2] == "tpm" and too_big[5] == -1  # never fits: no point waiting


def test_reservations_count_until_settled_then_the_actual_cost(counters: Any) -> None:
    budget = ["t:x", NONE, NONE, 1_000, NONE]
    assert one(counters, admit("1", team=budget, reserve=400), T0)[2][1][4] == 400
    assert one(counters, admit("2", team=budget, reserve=400), T0)[2][1][4] == 800
    refused = one(counters, admit("3", team=budget, reserve=400), T0)
    assert refused[2:5] == ["day", 1, 0]  # 0 spent, but 800 reserved + 400 > 1,000
    assert counters.run([settle("1", 150)], T0 + 5)[0] == [1, [[150, 150], [150, 150]]]
    ok = one(counters, admit("4", team=budget, reserve=400), T0 + 6)
    assert ok[2][1][2:5] == [150, 150, 800]  # spent 150, reserved 400 + 400
    counters.run([settle("2", 400), settle("4", 400)], T0 + 7)
    # 950 spent: a request that may cost 50 fits exactly, then nothing does
    assert one(counters, admit("5", team=budget, reserve=50), T0 + 8)[0] == 1
    assert one(counters, admit("6", team=budget, reserve=1), T0 + 8)[2] == "day"


def test_a_reservation_never_settled_expires(counters: Any) -> None:
    budget = ["k:a", NONE, NONE, 500, NONE]
    assert one(counters, admit("dead", key=budget, reserve=500), T0)[0] == 1
    assert one(counters, admit("2", key=budget, reserve=1), T0 + TTL - 1)[0] == 0
    ok = one(counters, admit("3", key=budget, reserve=1), T0 + TTL)
    assert ok[0] == 1 and ok[2][0][4] == 1  # the dead replica's 500 released
    # a settlement that arrives after its reservation expired still charges the cost
    assert counters.run([settle("dead", 200)], T0 + TTL + 1)[0][1][0] == [200, 200]


def test_a_settlement_that_may_have_run_applies_only_while_its_reservation_is_held(
    counters: Any,
) -> None:
    budget = ["k:a", NONE, NONE, 1_000, NONE]
    one(counters, admit("1", key=budget, reserve=100), T0)
    one(counters, admit("2", key=budget, reserve=100), T0)
    counters.run([settle("1", 40)], T0 + 1)  # it did run before the call timed out
    maybe = ["s?", ["1", "2"], [40, 40], [0, 0], DAY, MONTH, ["k:a", "t:x"]]
    assert counters.run([maybe], T0 + 2) == [[1, [[80, 80], [80, 80]]]]  # only 2's 40 counts
    assert one(counters, admit("3", key=budget), T0 + 3)[2][0][2:5] == [80, 80, 0]


def test_requests_of_one_key_settle_together(counters: Any) -> None:
    budget = ["t:x", NONE, 1_000, 1_000, NONE]
    for rid in ("1", "2", "3"):
        one(counters, admit(rid, team=budget, pt=10, reserve=100), T0)
    group = ["s", ["1", "2", "gone"], [30, 40, 5], [3, 4, 1], DAY, MONTH, ["k:a", "t:x"]]
    assert counters.run([group], T0 + 1) == [[1, [[75, 75], [75, 75]]]]
    ok = one(counters, admit("4", team=budget), T0 + 2)
    assert ok[2][1][1:5] == [38, 75, 75, 100]  # 30 prompt + 8 completion; 3's 100 still held


def test_budget_windows_roll_with_the_utc_day_and_month(counters: Any) -> None:
    budget = ["k:a", NONE, NONE, 100, 150]
    assert one(counters, admit("1", key=budget, reserve=90), T0)[0] == 1
    counters.run([settle("1", 90)], T0 + 1)
    assert one(counters, admit("2", key=budget, reserve=20), T0 + 2)[2:4] == ["day", 0]
    tomorrow = T0 + 86_400_000
    ok = one(counters, admit("3", key=budget, reserve=20, day=DAY + 1), tomorrow)
    assert ok[2][0][2:4] == [0, 90]  # a new day; the month goes on
    counters.run([settle("3", 20, day=DAY + 1)], tomorrow + 1)
    refused = one(counters, admit("4", key=budget, reserve=50, day=DAY + 1), tomorrow + 2)
    assert refused[2:5] == ["month", 0, 110]
    # a late settlement of yesterday's request does not count against today
    counters.run([settle("1", 5, day=DAY)], tomorrow + 3)
    assert one(counters, admit("5", key=budget, day=DAY + 1), tomorrow + 4)[2][0][2] == 20


def test_revocation_and_seeding(counters: Any) -> None:
    assert one(counters, admit("1"), T0)[0] == 1
    counters.run([["x", "k:a"]], T0 + 1)
    assert one(counters, admit("2"), T0 + 2)[2] == "revoked"
    # the ledger's spend: a scope's current window keeps the larger of the two amounts (the
    # counters hold what the ledger writer has not flushed yet; the ledger what they lost)
    counters.run([["seed", "t:x", DAY, 700, MONTH, 900]], T0 + 3)
    counters.run([["seed", "t:x", DAY, 5, MONTH, 5]], T0 + 4)
    counters.run([["seed", "t:y", DAY - 1, 300, MONTH, 300]], T0 + 4)  # yesterday's
    budget = ["t:x", NONE, NONE, 1_000, NONE]
    ok = one(counters, admit("3", key=["k:b", NONE, NONE, NONE, NONE], team=budget), T0 + 5)
    assert ok[2][1][2:4] == [700, 900]
    other = ["t:y", NONE, NONE, 1_000, NONE]
    ok = one(counters, admit("4", key=["k:b", NONE, NONE, NONE, NONE], team=other), T0 + 6)
    assert ok[2][1][2:4] == [0, 300]


def test_both_implementations_agree_on_random_traffic(redis_prefix: str) -> None:
    local, remote = LocalCounters(), RedisSync(redis_prefix)
    rnd = random.Random(12)
    now, pending = T0, list[str]()
    scopes = [["k:a", 5, 120, 1_000, 4_000], ["t:x", 8, 200, 2_000, NONE]]
    try:
        for step in range(1_500):
            now += rnd.choice([0, 7, 250, 900, 4_000, 21_000])
            day = now // 86_400_000
            if pending and rnd.random() < 0.4:
                rids = [
                    pending.pop(rnd.randrange(len(pending)))
                    for _ in range(rnd.randint(1, 3))
                    if pending
                ]
                op = [
                    rnd.choice(["s", "s", "s?"]),
                    rids,
                    [rnd.randint(0, 150) for _ in rids],
                    [rnd.randint(0, 30) for _ in rids],
                    day,
                    MONTH,
                    ["k:a", "t:x"],
                ]
            elif rnd.random() < 0.01:
                op = ["seed", "t:x", day, rnd.randint(0, 500), MONTH, rnd.randint(0, 900)]
            else:
                rid = f"r{step}"
                op = [
                    "a",
                    rid,
                    rnd.randint(0, 40),
                    rnd.randint(0, 200),
                    day,
                    MONTH,
                    TTL,
                    "k:a",
                    scopes,
                ]
                pending.append(rid)
            assert local.run([op], now) == remote.run([op], now), (step, op)
    finally:
        remote.close()

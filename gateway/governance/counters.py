"""The counters' semantics in process: governor.lua, line for line, over Python dicts.

Used when no `redis_url` is configured (one replica) and while Redis is unreachable (each
replica then limits on its own). Operations and replies are the script's own arrays (see the
comment at the top of governor.lua), so the two implementations are tested against each other
with the same inputs. Money is in integer nanodollars, time in integer milliseconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SPAN = 61  # buckets counted: the current second and the 60 before it

Op = list[Any]
Reply = list[Any]


@dataclass(slots=True)
class _Scope:
    c: int | None = None
    qn: int = 0
    tn: int = 0
    q: dict[int, int] = field(default_factory=dict)
    t: dict[int, int] = field(default_factory=dict)
    dw: int = -1
    d: int = 0
    mw: int = -1
    m: int = 0
    r: int = 0
    revoked: bool = False


def _roll(stored_window: int, stored: int, w: int) -> tuple[int, int]:
    return (w, 0) if w > stored_window else (stored_window, stored)


def _current(stored_window: int, stored: int, w: int) -> int:
    return stored if stored_window == w else 0


class LocalCounters:
    def __init__(self) -> None:
        self._scopes: dict[str, _Scope] = {}
        # rid → (expiry ms, nanodollars, scopes), oldest first: every reservation has the same
        # time to live, so they expire in the order they were made
        self._reserved: OrderedDict[str, tuple[int, int, tuple[str, ...]]] = OrderedDict()

    def run(self, ops: Sequence[Op], now_ms: int | None = None) -> list[Reply]:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        sec = now // 1000
        for _ in range(256):
            oldest = next(iter(self._reserved.items()), None)
            if oldest is None or oldest[1][0] > now:
                break
            self._release(oldest[0])
        replies: list[Reply] = []
        for op in ops:
            kind = op[0]
            if kind == "a":
                replies.append(self._admit(op, now, sec))
            elif kind in ("s", "s?"):
                replies.append(self._settle(op, sec, only_held=kind == "s?"))
            elif kind == "seed":
                self._seed(op)
                replies.append([1])
            elif kind == "x":
                self._scope(op[1], sec).revoked = True
                replies.append([1])
            else:
                replies.append([0, now, "unknown operation", 0, 0, -1])
        return replies

    def spent(self, scope: str, day: int, month: int) -> tuple[int, int]:
        """The scope's spend in that day and month (for carrying state over to Redis)."""
        st = self._scopes.get(scope)
        if st is None:
            return 0, 0
        return _current(st.dw, st.d, day), _current(st.mw, st.m, month)

    def _release(self, rid: str) -> None:
        held = self._reserved.pop(rid, None)
        if held is None:
            return
        _, amount, scopes = held
        for name in scopes:
            st = self._scopes.get(name)
            if st is not None:
                st.r = max(st.r - amount, 0)

    def _scope(self, name: str, sec: int) -> _Scope:
        st = self._scopes.get(name)
        if st is None:
            st = self._scopes[name] = _Scope()
        last = sec - SPAN
        if st.c is None:
            st.c = last
        elif last > st.c:
            for i in range(st.c + 1, min(last, st.c + SPAN) + 1):
                st.qn -= st.q.pop(i, 0)
                st.tn -= st.t.pop(i, 0)
            if last >= st.c + SPAN:
                st.qn = st.tn = 0
            st.c = last
        return st

    @staticmethod
    def _retry_ms(st: _Scope, buckets: dict[int, int], need: int, now: int, sec: int) -> int:
        assert st.c is not None
        freed = 0
        for x in range(st.c + 1, sec + 1):
            freed += buckets.get(x, 0)
            if freed >= need:
                return (x + SPAN) * 1000 - now
        return -1

    def _admit(self, op: Op, now: int, sec: int) -> Reply:
        rid, pt, amount, day, month, ttl, revocable, scopes = op[1:9]
        states = []
        for i, (name, rpm, tpm, dlim, mlim) in enumerate(scopes):
            st = self._scope(name, sec)
            states.append(st)
            if name == revocable and st.revoked:
                return [0, now, "revoked", i, 0, -1]
            if rpm >= 0 and st.qn + 1 > rpm:
                return [
                    0,
                    now,
                    "rpm",
                    i,
                    st.qn,
                    self._retry_ms(st, st.q, st.qn + 1 - rpm, now, sec),
                ]
            if tpm >= 0 and st.tn + pt > tpm:
                wait = self._retry_ms(st, st.t, st.tn + pt - tpm, now, sec) if pt <= tpm else -1
                return [0, now, "tpm", i, st.tn, wait]
            st.dw, st.d = _roll(st.dw, st.d, day)
            st.mw, st.m = _roll(st.mw, st.m, month)
            if dlim >= 0 and st.d + st.r + amount > dlim:
                return [0, now, "day", i, st.d, -1]
            if mlim >= 0 and st.m + st.r + amount > mlim:
                return [0, now, "month", i, st.m, -1]
        out = []
        for st in states:
            st.qn += 1
            st.tn += pt
            st.r += amount
            st.q[sec] = st.q.get(sec, 0) + 1
            st.t[sec] = st.t.get(sec, 0) + pt
            out.append([st.qn, st.tn, st.d, st.m, st.r])
        if amount > 0:
            self._reserved[rid] = (now + ttl, amount, tuple(s[0] for s in scopes))
        return [1, now, out]

    def _settle(self, op: Op, sec: int, only_held: bool) -> Reply:
        rids, costs, cts, day, month, scopes = op[1:7]
        cost = ct = 0
        for rid, c, t in zip(rids, costs, cts, strict=True):
            held = rid in self._reserved
            self._release(rid)
            if held or not only_held:
                cost, ct = cost + c, ct + t
        out = []
        for name in scopes:
            st = self._scope(name, sec)
            if st.dw == day:
                st.d += cost
            elif st.dw < day:
                st.dw, st.d = day, cost
            if st.mw == month:
                st.m += cost
            elif st.mw < month:
                st.mw, st.m = month, cost
            st.tn += ct
            if ct:
                st.t[sec] = st.t.get(sec, 0) + ct
            out.append([_current(st.dw, st.d, day), _current(st.mw, st.m, month)])
        return [1, out]

    def _seed(self, op: Op) -> None:
        name, day, d, month, m = op[1:6]
        st = self._scopes.setdefault(name, _Scope())
        if day > st.dw or (day == st.dw and d > st.d):
            st.dw, st.d = day, d
        if month > st.mw or (month == st.mw and m > st.m):
            st.mw, st.m = month, m

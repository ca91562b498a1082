"""Where the counters live right now — Redis, shared by every replica, or this process — and
the batching that keeps Redis at one round trip per request or fewer.

Operations queued in one turn of the event loop go to Redis as one script call (one round trip
for all of them); while a call is in flight the next batch gathers. Without `redis_url` every
operation runs on the in-process counters at once. If Redis fails (refused, timed out, any
error), the batch runs on the local counters, the gateway keeps serving on them — each replica
then enforces limits on its own: the trade-off the README documents — and a task probes Redis
every second. When it answers again, the settlements made locally meanwhile are replayed to it
and every budget counter is raised to the ledger's spend — which also rebuilds a Redis that
lost its data.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from gateway.governance.counters import LocalCounters, Op, Reply
from gateway.governance.plan import settle_op

if TYPE_CHECKING:  # redis is imported only by a gateway that has a redis_url (~10% of startup)
    from gateway.governance.redis_counters import RedisCounters

log = logging.getLogger("gateway.governance")

MAX_BATCH = 128  # operations a script call: bounds how long one call holds Redis
MAX_GROUP = 256  # requests in one settlement operation (Lua's unpack has a limit)
SETTLEMENTS_BESIDE_WAITING = 16
MAX_REPLAY = 200_000  # settlements kept for replay while Redis is away
PROBE_INTERVAL_S = 1.0

Seeds = Callable[[], Awaitable[list[Op]]]


class SharedCounters:
    def __init__(
        self,
        redis_counters: RedisCounters | None,
        seeds: Seeds,
        on_redis_state: Callable[[bool], None] = lambda up: None,
        on_call: Callable[[int], None] = lambda ops: None,
    ) -> None:
        self._redis = redis_counters
        self._failures: tuple[type[BaseException], ...] = (OSError, TimeoutError)
        if redis_counters is not None:
            from redis.exceptions import RedisError

            self._failures += (RedisError,)
        self._seeds = seeds
        self._on_state = on_redis_state
        self._on_call = on_call  # a script call with this many operations (batching, seen)
        self.local = LocalCounters()
        self.up = False
        self.down_since: float | None = None
        self._waiting: list[tuple[Op, asyncio.Future[Reply]]] = []  # admissions, revocations
        self._settling: list[Op] = []  # nobody waits on these
        self._groups: dict[
            tuple[tuple[str, ...], int, int], tuple[list[str], list[int], list[int]]
        ] = {}
        self._in_flight = 0  # script calls out (or waiting for the connection)
        connections = redis_counters.connections if redis_counters is not None else 1
        self._slots = asyncio.Semaphore(connections)
        self._sending: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._missed: list[Op] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._seen: dict[str, Op] = {}  # scope → its latest spend, as a seed op

    @property
    def mode(self) -> str:
        if self._redis is None:
            return "local"
        return "redis" if self.up else "local (redis unreachable)"

    async def start(self) -> None:
        self.local.run(await self._ledger_seeds())
        if self._redis is None:
            return
        self._tasks.append(asyncio.create_task(self._flusher(), name="governance-flusher"))
        try:
            await self._connect()
        except Exception as e:
            self._went_down(e)

    async def _connect(self) -> None:
        """Replay what was settled locally, then raise every counter to the ledger's spend
        (a seed keeps the larger amount: nothing is counted twice, and a Redis that lost its
        data is rebuilt), then share again."""
        assert self._redis is not None
        await self._redis.ping()
        await self._replay()  # settlements made locally while Redis was away
        await self._run_chunked(await self._ledger_seeds())
        await self._replay()  # and during the seeding
        self.up, self.down_since = True, None  # no await since `_missed` was seen empty
        self._on_state(True)

    async def _ledger_seeds(self) -> list[Op]:
        """The counters as the ledger has them; none while the database is away (counting
        then starts from what this replica knows)."""
        try:
            return await self._seeds()
        except Exception as e:
            log.error("cannot read spend from the ledger (%s)", type(e).__name__)
            return []

    async def _replay(self) -> None:
        assert self._redis is not None
        while self._missed:  # dropped only once sent: a failure leaves them for the next try
            chunk = self._missed[:MAX_BATCH]
            await self._redis.run(chunk)
            del self._missed[: len(chunk)]

    async def _run_chunked(self, ops: Sequence[Op]) -> None:
        assert self._redis is not None
        for i in range(0, len(ops), MAX_BATCH):
            await self._redis.run(ops[i : i + MAX_BATCH])

    # --- the request path -----------------------------------------------------------------

    async def call(self, op: Op) -> Reply:
        if not self.up:
            return self._local([op])[0]
        if self._in_flight == 0 and not self._waiting:
            # nothing going on: send it from this task (at low concurrency the hop through
            # the flusher was a task switch each way)
            self._in_flight += 1
            try:
                return (await self._execute([op]))[0]
            finally:
                self._in_flight -= 1
                if self._waiting or self._settling or self._groups:
                    self._wake.set()
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting.append((op, fut))
        self._wake.set()
        return await fut

    def settle(
        self, scopes: tuple[str, ...], day: int, month: int, rid: str, cost: int, tokens: int
    ) -> None:
        """A request ended (fire and forget). Requests of one key in one window are settled
        together: one operation, the scopes written once for all of them."""
        if not self.up:
            self._local([settle_op([rid], [cost], [tokens], day, month, list(scopes))])
            return
        group = self._groups.get((scopes, day, month))
        if group is None:
            group = self._groups[(scopes, day, month)] = ([], [], [])
        group[0].append(rid)
        group[1].append(cost)
        group[2].append(tokens)
        self._wake.set()

    def _grouped(self) -> None:
        """Settlement groups into operations (at most MAX_GROUP requests each)."""
        for (scopes, day, month), (rids, costs, tokens) in self._groups.items():
            for i in range(0, len(rids), MAX_GROUP):
                j = i + MAX_GROUP
                op = settle_op(rids[i:j], costs[i:j], tokens[i:j], day, month, list(scopes))
                self._settling.append(op)
        self._groups.clear()

    def _local(self, ops: Sequence[Op], sent: bool = False) -> list[Reply]:
        """Run on the local counters. `sent`: these went to Redis in a call that failed —
        which may have run there all the same (a timeout), so their settlements are replayed
        as "s?": applied only if their reservation is still held."""
        replies = self.local.run(ops)
        if self._redis is not None:  # to replay once Redis is back
            settles = [["s?", *op[1:]] if sent else op for op in ops if op[0] == "s"]
            room = MAX_REPLAY - len(self._missed)
            if len(settles) > room:
                log.error(
                    "more than %d settlements while Redis is away: the rest are not "
                    "replayed (the ledger still has them)",
                    MAX_REPLAY,
                )
            self._missed.extend(settles[: max(room, 0)])
        return replies

    async def _flusher(self) -> None:
        # What requests wait on goes first; settlements (the ledger writer hands them over a
        # flush interval's worth at a time) fill the rest of a call, a few at a time while
        # requests wait, so that no admission waits behind a long script call. A batch goes
        # out without waiting for the previous one's answer (up to one call per Redis
        # connection): the next loop turn's admissions do not wait for this one's round trip.
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting or self._settling or self._groups:
                await self._slots.acquire()  # what arrives meanwhile joins this batch
                self._grouped()
                waiting = self._waiting[:MAX_BATCH]
                del self._waiting[: len(waiting)]
                room = SETTLEMENTS_BESIDE_WAITING if waiting else MAX_BATCH
                settling = self._settling[:room]
                del self._settling[: len(settling)]
                task = asyncio.create_task(self._send(waiting, settling))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    async def _send(
        self, waiting: list[tuple[Op, asyncio.Future[Reply]]], settling: list[Op]
    ) -> None:
        self._in_flight += 1
        try:
            replies = await self._execute([op for op, _ in waiting] + settling)
        finally:
            self._in_flight -= 1
            self._slots.release()
        for (_, fut), reply in zip(waiting, replies, strict=False):
            if not fut.done():
                fut.set_result(reply)

    async def _execute(self, ops: list[Op]) -> list[Reply]:
        if self.up and self._redis is not None:
            try:
                replies = await self._redis.run(ops)
                self._on_call(len(ops))
            except self._failures as e:
                self._went_down(e)
            except Exception as e:  # a bug must not leave requests waiting: serve locally
                log.exception("governance script call failed")
                self._went_down(e)
            else:
                self._remember(ops, replies)
                return replies
            return self._local(ops, sent=True)
        return self._local(ops)

    # --- failing over and back ------------------------------------------------------------

    def _remember(self, ops: list[Op], replies: list[Reply]) -> None:
        """Keep each scope's latest spend from Redis: the local counters start from it."""
        for op, reply in zip(ops, replies, strict=True):
            if reply[0] != 1:
                continue
            if op[0] == "a":
                for entry, usage in zip(op[8], reply[2], strict=True):
                    self._seen[entry[0]] = ["seed", entry[0], op[4], usage[2], op[5], usage[3]]
            elif op[0] == "s":
                for scope, spent in zip(op[6], reply[1], strict=True):
                    self._seen[scope] = ["seed", scope, op[4], spent[0], op[5], spent[1]]

    def _went_down(self, error: BaseException) -> None:
        if not self.up and self.down_since is not None:
            return
        self.up, self.down_since = False, time.time()
        log.warning(
            "Redis unreachable (%s): serving on this replica's own counters — limits and "
            "budgets now hold per replica — until it answers again",
            type(error).__name__,
        )
        self.local = LocalCounters()
        self.local.run(list(self._seen.values()))
        self._on_state(False)
        self._tasks.append(asyncio.create_task(self._recover(), name="governance-redis-probe"))

    async def _recover(self) -> None:
        # the ledger's view too, for scopes this replica had not seen in Redis
        self.local.run(await self._ledger_seeds())
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            try:
                replayed = len(self._missed)
                await self._connect()
            except Exception:
                continue
            log.info(
                "Redis reachable again: shared counters resumed (%d settlements replayed)",
                replayed,
            )
            return

    async def aclose(self) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        self._grouped()
        if self.up and self._settling:  # the last settlements
            batch, self._settling = self._settling, []
            try:
                await self._run_chunked(batch)
            except Exception as e:
                log.warning("final settlements not sent to Redis (%s)", type(e).__name__)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        if self._redis is not None:
            await self._redis.aclose()

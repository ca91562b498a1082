"""The keys and teams each replica authenticates against, cached in memory.

A request's credential is hashed (HMAC, `keys.py`) and looked up in a dict: O(1), no I/O. A key
this replica has not seen yet (created on another replica, or by the CLI, a moment ago) is read
from the database by its hash, once; unknown hashes are remembered for a short while so
garbage credentials cannot turn into a query each. Every `refresh_interval_s` the replica reads
the keys and teams changed since its last read, so limits, expiries and revocations made
anywhere reach it within that interval (revocations also reach every replica at once through
the shared counters: see `Governor.revoke`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.governance import store
from gateway.governance.keys import KeyHasher, well_formed
from gateway.governance.records import ApiKey, Principal, Team

log = logging.getLogger("gateway.governance")

NEGATIVE_CACHE = 10_000  # unknown credential hashes remembered
OVERLAP = timedelta(seconds=60)  # re-read changes this far back: clock skew between writers
FULL_RELOAD_S = 300.0


class KeyDirectory:
    def __init__(self, engine: AsyncEngine, hash_key: bytes, refresh_interval_s: float) -> None:
        self._engine = engine
        self._hash = KeyHasher(hash_key)
        self._interval = refresh_interval_s
        self._by_hash: dict[str, ApiKey] = {}
        self._by_id: dict[str, ApiKey] = {}
        self._principals: dict[str, Principal] = {}  # key id → the caller it authenticates
        self._teams: dict[str, Team] = {}
        self._unknown: OrderedDict[str, float] = OrderedDict()  # hash → forget at (monotonic)
        self._fetching: dict[str, asyncio.Future[ApiKey | None]] = {}
        self._since: datetime | None = None
        self._full_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self.loaded = False

    # --- reads on the request path --------------------------------------------------------

    def key(self, key_id: str | None) -> ApiKey | None:
        return None if key_id is None else self._by_id.get(key_id)

    def team(self, name: str | None) -> Team | None:
        return None if name is None else self._teams.get(name)

    async def authenticate(self, token: str) -> Principal | None:
        """The key's principal if `token` is a usable key; None for anything else."""
        if not well_formed(token):
            return None
        h = self._hash(token)
        key = self._by_hash.get(h)
        if key is None:
            key = await self._fetch(h)
        # the dict matched the hash; compare_digest confirms it without an early exit
        if key is None or not hmac.compare_digest(key.key_hash, h):
            return None
        if key.revoked_at is not None or (
            key.expires_at is not None and key.expires_at <= datetime.now(UTC)
        ):
            return None
        principal = self._principals.get(key.id)
        if principal is None or principal.key is not key:
            principal = self._principals[key.id] = Principal(key)
        return principal

    async def _fetch(self, h: str) -> ApiKey | None:
        forget_at = self._unknown.get(h)
        if forget_at is not None:
            if time.monotonic() < forget_at:
                return None
            del self._unknown[h]
        pending = self._fetching.get(h)
        if pending is not None:  # the same new key on many connections: one query
            return await asyncio.shield(pending)
        fut: asyncio.Future[ApiKey | None] = asyncio.get_running_loop().create_future()
        self._fetching[h] = fut
        try:
            key = await store.key_by_hash(self._engine, h)
            if key is not None and key.team not in self._teams:  # made a moment ago too
                team = await store.get_team(self._engine, key.team)
                if team is not None:
                    self.put_team(team)
        except Exception as e:
            log.warning("key lookup failed (%s); the request is refused", type(e).__name__)
            key = None
        finally:
            del self._fetching[h]
        fut.set_result(key)
        if key is None:
            self._unknown[h] = time.monotonic() + self._interval
            while len(self._unknown) > NEGATIVE_CACHE:
                self._unknown.popitem(last=False)
        else:
            self.put_key(key)
        return key

    # --- writes: loads, refreshes, this replica's own admin changes ------------------------

    def put_key(self, key: ApiKey) -> None:
        old = self._by_id.get(key.id)
        if old is not None and old.key_hash != key.key_hash:
            self._by_hash.pop(old.key_hash, None)
        self._by_id[key.id] = key
        self._by_hash[key.key_hash] = key
        self._unknown.pop(key.key_hash, None)

    def put_team(self, team: Team) -> None:
        self._teams[team.name] = team

    def drop_team(self, name: str) -> None:
        self._teams.pop(name, None)

    def keys(self) -> list[ApiKey]:
        return list(self._by_id.values())

    def teams(self) -> list[Team]:
        return list(self._teams.values())

    async def refresh(self) -> tuple[int, int]:
        """Read what changed since the last read (everything, now and then); returns counts."""
        started = datetime.now(UTC)
        full = self._since is None or time.monotonic() >= self._full_at
        since = None if full else self._since
        teams = await store.teams_since(self._engine, since)
        keys = await store.keys_since(self._engine, since)
        if full:
            self._teams = {}
            self._full_at = time.monotonic() + FULL_RELOAD_S
        for t in teams:
            self.put_team(t)
        for k in keys:
            self.put_key(k)
        self._since = started - OVERLAP
        self.loaded = True
        return len(keys), len(teams)

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="key-directory")

    async def _poll(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except Exception as e:
                if not failing:
                    log.warning("reading keys and teams failed (%s); retrying", type(e).__name__)
                failing = True
            else:
                if failing:
                    log.info("reading keys and teams works again")
                failing = False

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

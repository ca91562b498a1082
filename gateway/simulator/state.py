"""The whole state of one simulator process: its profiles, upstreams, fault rules and id counter.

Created by `create_app` and held by the app object: nothing here lives at module level, so two
apps in one test process are independent.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping

from gateway.simulator.faults import FaultTable
from gateway.simulator.profiles import Profile
from gateway.simulator.quality import DEFAULT_QUALITY, Quality
from gateway.simulator.upstream import Upstream

REPLICA_SEPARATOR = "@"  # `/llama-3.1-8b-h100@b/v1/...` is a second, independent llama server
MAX_UPSTREAMS = 256


class SimState:
    def __init__(
        self,
        profiles: Mapping[str, Profile],
        default_profile: str,
        seed: int = 0,
        quality: Quality = DEFAULT_QUALITY,
    ) -> None:
        if default_profile not in profiles:
            known = ", ".join(sorted(profiles))
            raise ValueError(
                f"unknown simulator profile {default_profile!r}; known profiles: {known}"
            )
        self.profiles = dict(profiles)
        self.default_key = default_profile
        self.faults = FaultTable(seed)
        self.seed = seed  # also draws which answers agree (quality.py)
        self.quality = self._initial_quality = quality
        self.default = Upstream(default_profile, self.profiles[default_profile])
        self.upstreams: dict[str, Upstream] = {default_profile: self.default}
        self.created = int(time.time())
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex()

    def upstream(self, key: str) -> Upstream | None:
        """The upstream for a path prefix (`name` or `name@replica`), created on first use."""
        found = self.upstreams.get(key)
        if found is not None:
            return found
        profile = self.profiles.get(key.partition(REPLICA_SEPARATOR)[0])
        if profile is None or len(self.upstreams) >= MAX_UPSTREAMS:
            return None
        created = self.upstreams[key] = Upstream(key, profile)
        return created

    def resolve_key(self, name: str) -> str | None:
        """A fault rule's upstream name → its key ("" is the root, i.e. the default profile)."""
        if name in ("", "/"):
            return self.default_key
        if name == "*":
            return name
        key = name.strip("/")
        return key if self.upstream(key) is not None else None

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{self._id_prefix}{next(self._ids):08x}"

    def reset(self, seed: int = 0) -> None:
        self.faults.clear()
        self.faults.reseed(seed)
        self.seed = seed
        self.quality = self._initial_quality
        for upstream in self.upstreams.values():
            upstream.reset()

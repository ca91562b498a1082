"""A bounded memory of recently seen keys: the router's record of prompt prefixes it sent.

Least recently seen first (an insertion-ordered dict, a key moved to the end when seen again),
so eviction is from the front: past `max_entries`, and any entry older than `ttl_s` (after
which no provider's prompt cache would still hold it). Every operation is O(1) amortised.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class RecentKeys:
    def __init__(self, max_entries: int, ttl_s: float) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._seen: OrderedDict[Hashable, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def last_seen(self, key: Hashable) -> float | None:
        return self._seen.get(key)

    def touch(self, key: Hashable, now: float) -> None:
        seen = self._seen
        seen[key] = now
        seen.move_to_end(key)
        while len(seen) > self.max_entries:
            seen.popitem(last=False)
        while seen:
            oldest = next(iter(seen.values()))
            if now - oldest <= self.ttl_s:
                break
            seen.popitem(last=False)

"""Percentiles from the ledger's latency buckets (`ledger/rollup.py` BOUNDS_MS) — pure.

Within the bucket holding the wanted rank the value is interpolated geometrically (the
buckets are log-spaced), so the estimate is off by at most the bucket's width, 2^(1/4) (±9 %
around its geometric middle); below the first bound linearly from 0; past the last bound the
last bound is all that is known.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gateway.ledger.rollup import BOUNDS_MS


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The `q` quantile (0..1) of the values counted in `counts` (one per bucket), in ms."""
    n = sum(counts)
    if n == 0:
        return None
    rank = q * n
    seen = 0
    for i, c in enumerate(counts):
        if c and seen + c >= rank:
            frac = (rank - seen) / c
            if i == 0:
                return round(BOUNDS_MS[0] * frac, 1)
            if i >= len(BOUNDS_MS):
                return BOUNDS_MS[-1]
            lo, hi = BOUNDS_MS[i - 1], BOUNDS_MS[i]
            return round(lo * math.exp(frac * math.log(hi / lo)), 1)
        seen += c
    return BOUNDS_MS[-1]

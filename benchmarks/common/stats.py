"""The one percentile every benchmark program reports — pure.

NumPy's default (`method="linear"`), which vLLM's benchmark reports (`np.percentile` in
`vllm/benchmarks/serve.py` `calculate_metrics`): the value at rank q/100 × (n − 1) of the sorted
values, interpolated linearly between its two neighbours. The median is the 50th percentile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 ≤ q ≤ 100) of unsorted `values`; ValueError when there are none."""
    if not values:
        raise ValueError("the percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside 0-100")
    xs = sorted(values)
    rank = q / 100.0 * (len(xs) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    t = rank - lo
    a, b = xs[lo], xs[hi]
    # numpy's _lerp: a + (b - a)·t, computed from the upper end when t ≥ 0.5 (bit-identical)
    return b - (b - a) * (1.0 - t) if t >= 0.5 else a + (b - a) * t


def percentile_or_none(values: Sequence[float], q: float) -> float | None:
    """`percentile`, or None when there are no values (a report's empty cell)."""
    return percentile(values, q) if values else None


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)

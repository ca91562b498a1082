"""The one percentile definition: NumPy's default linear interpolation, bit for bit."""

import random

import numpy as np
import pytest

from benchmarks.common.stats import median, percentile, percentile_or_none


def test_percentile_matches_numpy() -> None:
    xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    for whole in (0, 10, 25, 50, 90, 99, 100):
        assert percentile(xs, whole) == np.percentile(xs, whole)
    rng = random.Random(7)
    for n in (1, 2, 3, 10, 101, 1000):
        ys = [rng.lognormvariate(0, 1) for _ in range(n)]
        for q in (0.1, 33.3, 50, 95, 99, 99.9):
            assert percentile(ys, q) == np.percentile(ys, q)


def test_median_is_the_50th_percentile_and_empty_inputs_are_explicit() -> None:
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert percentile_or_none([], 99) is None
    assert percentile_or_none([2.0], 99) == 2.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)

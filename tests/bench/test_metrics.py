"""vLLM's metric definitions on hand-made timings (binary fractions, so the sums are exact)."""

from array import array

import numpy as np

from benchmarks.common.result import RequestResult
from benchmarks.load.metrics import Slo, summarize


def ok(start: float, ttft: float, itl: list[float], out: int, prompt: int) -> RequestResult:
    latency = ttft + sum(itl)
    return RequestResult(
        success=True,
        ttft=ttft,
        itl=array("d", itl),
        latency=latency,
        start_time=start,
        prompt_len=prompt,
        output_tokens=out,
        usage_reported=True,
        chunks=len(itl) + 1,
    )


RESULTS = [
    ok(0.25, 0.25, [0.125] * 4, 5, 10),  # TPOT (0.75 − 0.25) / 4 = 0.125
    ok(0.5, 0.5, [0.25, 0.25], 3, 20),  # TPOT 0.5 / 2 = 0.25
    ok(1.0, 0.125, [], 1, 30),  # one token: no TPOT (0 for goodput); starts as the 1st ends
    ok(1.5, 0.125, [0.25], 2, 40),  # TPOT 0.25
    ok(1.75, 0.25, [0.0625, 0.0625], 3, 50),  # TPOT 0.0625
    RequestResult(success=False, error="HTTP 500: boom\nmore", start_time=1.9),
]


def test_counts_and_throughputs() -> None:
    s = summarize(RESULTS, duration_s=2.0)
    assert (s.completed, s.failed) == (5, 1)
    assert (s.total_input, s.total_output) == (150, 14)
    assert s.request_throughput == 2.5
    assert s.output_throughput == 7.0
    assert s.total_token_throughput == 82.0
    assert s.errors == {"HTTP 500: boom": 1}
    assert s.request_goodput is None and s.slo_attainment is None  # no SLO given


def test_ttft_tpot_itl_e2el_as_vllm_defines_them() -> None:
    s = summarize(RESULTS, duration_s=2.0)
    assert s.ttft is not None and s.tpot is not None and s.itl is not None and s.e2el
    assert (s.ttft.mean, s.ttft.median) == (250.0, 250.0)
    # TPOT excludes the first token and the one-token request: (.125, .25, .25, .0625)
    assert s.tpot.mean == 171.875
    assert s.tpot.median == 187.5
    # ITL pools every chunk gap of every request (9 gaps)
    assert s.itl.median == 125.0
    assert s.e2el.mean == (0.75 + 1.0 + 0.125 + 0.375 + 0.375) / 5 * 1000
    # std is NumPy's population std, percentiles NumPy's linear interpolation
    ttfts = [0.25, 0.5, 0.125, 0.125, 0.25]
    assert s.ttft.std == np.std(ttfts) * 1000
    assert s.ttft.p(90) == np.percentile(ttfts, 90) * 1000
    assert s.ttft.p(99) == np.percentile(ttfts, 99) * 1000
    assert s.tpot.p(99) == np.percentile([0.125, 0.25, 0.25, 0.0625], 99) * 1000


def test_goodput_is_inclusive_and_counts_one_token_requests_as_tpot_zero() -> None:
    s = summarize(RESULTS, duration_s=2.0, slo=Slo(ttft_ms=250, tpot_ms=200))
    # good: #1 (TTFT exactly 250), #3 (TPOT 0), #5; not #2 (TTFT), #4 (TPOT), not the failure
    assert s.request_goodput == 1.5
    assert s.slo_attainment == 0.5


def test_peaks_use_half_open_intervals_and_one_second_bins() -> None:
    s = summarize(RESULTS, duration_s=2.0)
    assert s.max_concurrent_requests == 2  # #1 ends at 1.0 exactly when #3 starts
    assert s.max_output_tokens_per_s == 7.0  # chunks in [0.25, 1.25) and [1.25, 2.25)


def test_missing_usage_counts_content_chunks_and_is_reported() -> None:
    r = ok(0.0, 0.5, [0.25, 0.25, 0.25], 0, 8)
    r.usage_reported = False  # 4 chunks: the role chunk, then 3 with content
    s = summarize([r], duration_s=1.0)
    assert s.total_output == 3 and s.usage_missing == 1
    assert s.tpot is not None and s.tpot.mean == 375.0  # 0.75 s / (3 − 1)


def test_non_streamed_requests_have_no_ttft_and_empty_runs_do_not_crash() -> None:
    r = RequestResult(
        success=True,
        streamed=False,
        latency=0.5,
        output_tokens=4,
        usage_reported=True,
        prompt_len=3,
    )
    s = summarize([r], duration_s=1.0)
    assert s.ttft is None and s.tpot is None and s.itl is None
    assert s.e2el is not None and s.e2el.mean == 500.0
    empty = summarize([], duration_s=1.0, slo=Slo(ttft_ms=1))
    assert empty.completed == 0 and empty.ttft is None and empty.slo_attainment == 0.0

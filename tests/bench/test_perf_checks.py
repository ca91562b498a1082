"""The performance program's verdicts (benchmarks.perf) and the instruction counter's parsing
(benchmarks.instructions), on made-up harness results: no harness runs here."""

from pathlib import Path
from typing import Any

from benchmarks.overhead.gwbench import evaluate
from benchmarks.overhead.instructions import total_instructions


def _target(rps50: float, p99_10: float, p50_1: float = 0.4) -> dict[str, Any]:
    def point(rps: float, p50: float, p99: float) -> dict[str, Any]:
        return {
            "direct": {"p50_ms": 0.07, "rps": 80_000},
            "proxy": {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors_total": 0},
        }

    stream = {
        "direct": {"ttft_p50_ms": 56.0},
        "proxy": {"ttft_p50_ms": 57.0, "usage_frac": 1.0},
    }
    return {
        "phases": {
            "nonstream_zero_delay": {
                "1": point(2000, p50_1, 3.0),
                "10": point(rps50, 2.0, p99_10),
                "50": point(rps50, 14.0, 25.0),
            },
            "stream_delayed": {"10": stream},
        },
        "peak_rss_mb": 100,
        "cold_start_median_s": 1.0,
    }


def _verdicts(results: dict[str, Any]) -> dict[str, bool]:
    return {c["target"].split(" (")[0]: c["ok"] for c in evaluate(results, "floor")}


def test_the_tail_is_judged_against_the_floors_p99_plus_3_ms() -> None:
    results = {
        "floor": _target(7000, 2.8),
        "gateway-sqlite-w1": _target(4600, 5.7),
        "old-sqlite-w1": _target(3500, 5.9),
    }
    v = _verdicts(results)
    assert v["gateway-sqlite-w1: p99 ms at c=10"] is True
    assert v["old-sqlite-w1: p99 ms at c=10"] is False  # the baseline is judged too
    assert v["gateway-sqlite-w1: req/s at c=50 / floor"] is True  # 4600 / 7000 = 0.657
    assert v["old-sqlite-w1: req/s at c=50 / floor"] is False


def test_a_target_that_did_not_start_is_a_failed_check_not_a_crash() -> None:
    results = {"floor": _target(7000, 2.8), "old-pg-w1": {"phases": {}}}
    checks = evaluate(results, "floor")
    assert checks == [
        {"target": "old-pg-w1: ran", "value": 0, "goal": "started and measured", "ok": False}
    ]


def test_the_instruction_total_is_read_once(tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.out.1"
    dump.write_text("version: 1\nevents: Ir\nsummary: 1234567\nfn=x\n1 5\ntotals: 1234567\n")
    assert total_instructions(dump) == 1234567

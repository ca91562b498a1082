"""Arrivals and measurement windows against the simulator on loopback (small and quick)."""

import asyncio
import math
import random

import aiohttp
import orjson
import pytest

from benchmarks.common.result import RequestInput
from benchmarks.load.loadgen import (
    ClientLoad,
    LoadShape,
    PointRun,
    Window,
    arrival_offsets,
    run_point,
)


def test_arrivals_follow_vllms_get_request() -> None:
    rng = random.Random(1)
    offs = arrival_offsets(100, rate=20.0, burstiness=1.0, rng=rng)
    assert len(offs) == 100 and offs == sorted(offs)
    assert offs[-1] == pytest.approx(100 / 20.0, abs=1e-12)  # rescaled to exactly n / rate
    assert arrival_offsets(3, math.inf, 1.0, rng) == [0.0, 0.0, 0.0]
    even = arrival_offsets(4, 2.0, math.inf, rng)
    assert even == pytest.approx([0.5, 1.0, 1.5, 2.0])
    gaps = [b - a for a, b in zip([0.0, *offs], offs, strict=False)]
    bursty = arrival_offsets(100, 20.0, 0.2, random.Random(1))
    bgaps = [b - a for a, b in zip([0.0, *bursty], bursty, strict=False)]
    assert max(bgaps) > max(gaps)  # burstiness < 1: longer lulls, tighter bursts
    with pytest.raises(ValueError):
        LoadShape()  # an infinite rate needs a concurrency


def _inp(url: str, stream: bool, out: int = 6) -> RequestInput:
    body: dict[str, object] = {
        "model": "m",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_completion_tokens": out,
        "ignore_eos": True,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return RequestInput(url + "/v1/chat/completions", orjson.dumps(body), 3, out, stream)


def _run(url: str, shape: LoadShape, window: Window) -> PointRun:
    async def go() -> PointRun:
        async with aiohttp.ClientSession(headers={"content-type": "application/json"}) as s:
            return await run_point(s, [_inp(url, True, out=4)], shape, window)

    return asyncio.run(go())


def test_duration_window_excludes_warmup_and_reports_client_load(sim_url: str) -> None:
    run = _run(
        sim_url + "/tiny-gpu", LoadShape(concurrency=2), Window(duration_s=0.5, warmup_s=0.2)
    )
    assert run.duration_s == 0.5 and run.warmup > 0 and len(run.results) > 10
    assert all(r.success for r in run.results)
    assert run.client.wall_s >= 0.7 and run.client.cpu_s > 0


def test_count_mode_with_a_poisson_rate_and_a_cap(sim_url: str) -> None:
    run = _run(
        sim_url,
        LoadShape(concurrency=2, rate=200.0),
        Window(duration_s=None, num_requests=20, warmup_requests=3),
    )
    assert len(run.results) == 20 and run.warmup == 3
    assert all(r.success and r.queue_time >= 0 for r in run.results)
    assert run.duration_s >= 20 / 200.0 * 0.9  # the arrivals alone take n / rate


def test_client_saturation_is_flagged() -> None:
    assert not ClientLoad(cpu_s=5.0, wall_s=10.0, loop_lag_p99_ms=3.0).saturated
    assert ClientLoad(cpu_s=9.5, wall_s=10.0).saturated  # ≥ 90 % of the event loop's core
    assert ClientLoad(cpu_s=1.0, wall_s=10.0, loop_lag_p99_ms=80.0).saturated
    assert ClientLoad().cpu_fraction == 0.0

"""CapacityMonitor against the real simulator on 127.0.0.1: two replicas of a small vLLM, one
filled with slow streams until it reports a queue (full) and drained back; replicas that are
down, or whose /metrics is not vLLM's, taken out and brought back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from gateway.config import ProviderConfig
from gateway.routing.capacity import CapacityMonitor
from gateway.routing.capacity_model import CapacitySnapshot, ReplicaState
from gateway.simulator.app import create_app
from gateway.simulator.profiles import PROFILES
from tests.support import ServerThread, free_port

# A vLLM small enough to fill: two sequences per batch, ~0.4 s per 40-token answer.
TINY = replace(
    PROFILES["llama-3.1-8b-h100"],
    name="tiny-gpu",
    ttft_base_s=0.02,
    prefill_s_per_token=0.0,
    ttft_s_per_running=0.0,
    tpot_base_s=0.01,
    decode_ceiling_tok_s=0.0,
    max_num_seqs=2,
)
PROFILES_WITH_TINY = {**PROFILES, TINY.name: TINY}
INTERVAL_S = 0.05


@pytest.fixture(scope="module")
def tiny_sim() -> Iterator[ServerThread]:
    server = ServerThread(create_app("instant", profiles=PROFILES_WITH_TINY)).start()
    yield server
    server.stop()


def _provider(*bases: str, **capacity: Any) -> ProviderConfig:
    return ProviderConfig.model_validate(
        {
            "name": "local",
            "kind": "vllm",
            "api_base": bases[0],
            "replicas": list(bases[1:]),
            "gpu": {"name": "H100", "hourly_usd": 2.49},
            "capacity": {"scrape_interval_s": INTERVAL_S, "unhealthy_after": 2, **capacity},
        }
    )


async def _until(
    m: CapacityMonitor, check: Callable[[tuple[ReplicaState, ...]], bool], timeout: float = 5.0
) -> tuple[ReplicaState, ...]:
    deadline = time.monotonic() + timeout
    while True:
        states = m.snapshot().replicas["local"]
        if check(states):
            return states
        assert time.monotonic() < deadline, f"never reached: {[s.reason for s in states]}"
        await asyncio.sleep(0.01)


async def _stream(session: aiohttp.ClientSession, base: str, max_tokens: int = 40) -> None:
    body = {
        "model": TINY.served_model,
        "stream": True,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "fill the batch"}],
    }
    async with session.post(f"{base}/chat/completions", json=body) as resp:
        assert resp.status == 200
        async for _ in resp.content.iter_any():
            pass


@pytest.fixture()
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_a_filled_replica_is_full_until_it_drains(
    tiny_sim: ServerThread, session: aiohttp.ClientSession
) -> None:
    one, two = f"{tiny_sim.url}/tiny-gpu/v1", f"{tiny_sim.url}/tiny-gpu@2/v1"
    m = CapacityMonitor([_provider(one, two)])
    await m.start()
    try:
        await _until(m, lambda s: all(r.scraped_at is not None for r in s))
        assert _picked(m.snapshot()) == one
        # 4 slow streams on replica 1: 2 run, 2 wait
        load = [asyncio.create_task(_stream(session, one)) for _ in range(4)]
        first, second = await _until(m, lambda s: s[0].waiting == 2)
        assert first.full and first.running == 2
        assert first.reason.startswith("full (waiting=2>0) running=2 waiting=2")
        assert not second.full and second.healthy
        snap = m.snapshot()
        assert snap.has_headroom("local")
        assert _picked(snap) == two
        assert snap.describe("local").startswith("replica 2/2 (1 free): running=0")
        await asyncio.gather(*load)
        first, _ = await _until(m, lambda s: not s[0].full and s[0].running == 0)
        # vLLM's histograms now tell the monitor how fast this replica answers
        assert first.predicted_ttft_s is not None and 0.0 <= first.predicted_ttft_s < 0.5
    finally:
        await m.aclose()


async def test_both_replicas_full_means_no_headroom(
    tiny_sim: ServerThread, session: aiohttp.ClientSession
) -> None:
    one, two = f"{tiny_sim.url}/tiny-gpu@3/v1", f"{tiny_sim.url}/tiny-gpu@4/v1"
    m = CapacityMonitor([_provider(one, two)])
    await m.start()
    try:
        load = [asyncio.create_task(_stream(session, base)) for base in (one, two) * 3]
        await _until(m, lambda s: all(r.full for r in s))
        assert not m.snapshot().has_headroom("local") and m.snapshot().pick("local") is None
        await asyncio.gather(*load)
        await _until(m, lambda s: not any(r.full for r in s))
        assert m.snapshot().has_headroom("local")
    finally:
        await m.aclose()


async def test_a_replica_on_a_closed_port_is_taken_out_and_comes_back(
    tiny_sim: ServerThread,
) -> None:
    port = free_port()
    live, dead = f"{tiny_sim.url}/tiny-gpu@5/v1", f"http://127.0.0.1:{port}/tiny-gpu/v1"
    m = CapacityMonitor([_provider(live, dead)])
    await m.start()
    revived: ServerThread | None = None
    try:
        _, down = await _until(m, lambda s: not s[1].healthy)
        assert down.reason.startswith("down (2 failures: cannot connect")
        assert _picked(m.snapshot()) == live
        assert m.snapshot().has_headroom("local")
        revived = ServerThread(
            create_app("instant", profiles=PROFILES_WITH_TINY), port=port
        ).start()
        _, up = await _until(m, lambda s: s[1].healthy)
        assert up.reason.startswith("running=0 waiting=0")
    finally:
        await m.aclose()
        if revived is not None:
            revived.stop()


async def test_a_replica_without_vllm_metrics_is_taken_out(tiny_sim: ServerThread) -> None:
    """The simulator's hosted-API profiles answer /metrics with a 404."""
    m = CapacityMonitor([_provider(f"{tiny_sim.url}/gpt-4o-mini/v1")])
    await m.start()
    try:
        (state,) = await _until(m, lambda s: not s[0].healthy)
        assert "/metrics answered HTTP 404" in state.reason
        assert not m.snapshot().has_headroom("local")
    finally:
        await m.aclose()


async def test_gateway_in_flight_moves_the_pick_between_scrapes(tiny_sim: ServerThread) -> None:
    """With scrapes far apart, acquires alone spread a burst over both replicas."""
    one, two = f"{tiny_sim.url}/tiny-gpu@6/v1", f"{tiny_sim.url}/tiny-gpu@7/v1"
    provider = _provider(one, two)
    provider = provider.model_copy(
        update={"capacity": provider.capacity.model_copy(update={"scrape_interval_s": 60.0})}
    )
    m = CapacityMonitor([provider])
    await m.start()
    try:
        await _until(m, lambda s: all(r.scraped_at is not None for r in s))
        picks = []
        for _ in range(4):
            base = _picked(m.snapshot())
            m.acquire("local", base)
            picks.append(base)
        assert picks == [one, two, one, two]
    finally:
        await m.aclose()


def _picked(snap: CapacitySnapshot, pool: str = "local") -> str:
    """The base URL of the replica the snapshot picks for `pool` (one must be picked)."""
    replica = snap.pick(pool)
    assert replica is not None, f"no replica of {pool} picked"
    return replica.api_base

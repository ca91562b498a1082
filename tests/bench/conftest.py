"""A simulator of its own for the benchmark tests (the instant profile, and a small vLLM one)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.simulator.app import create_app
from gateway.simulator.profiles import PROFILES, Profile
from tests.support import ServerThread

# a tiny vLLM-like upstream: 2 ms to the first token, 1 ms a token, knee at 4 running requests
TINY = Profile(
    name="tiny-gpu",
    description="test GPU",
    kind="vllm",
    served_model="tiny",
    ttft_base_s=0.002,
    tpot_base_s=0.001,
    decode_ceiling_tok_s=4000.0,
    default_output_tokens=8,
)


@pytest.fixture(scope="module")
def bench_sim() -> Iterator[ServerThread]:
    server = ServerThread(create_app("instant", profiles={**PROFILES, TINY.name: TINY})).start()
    yield server
    server.stop()


@pytest.fixture()
def sim_url(bench_sim: ServerThread) -> Iterator[str]:
    httpx.post(f"{bench_sim.url}/sim/reset")
    yield bench_sim.url
    httpx.post(f"{bench_sim.url}/sim/reset")
